// Property tests of plan building (src/plan.ts) over fixture tracefs trees (test/fixtures/tracefs):
// a tree whose format or id files are mutated, with random filters, ports, event lists and
// reasons, either plans or is refused with an RxtraceError carrying a code the CLI maps to a
// documented exit code (src/cli/exit-codes.ts); never another error. No perf event is opened.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../../src/cli/exit-codes.js';
import { RxtraceError } from '../../../src/errors.js';
import { buildPlan, type PlanOptions } from '../../../src/plan.js';
import { anyText, check, mutate, mutation } from './fuzz-runs.js';

const TREES = fileURLToPath(new URL('../../fixtures/tracefs/', import.meta.url));
const EVENTS = ['udp/udp_fail_queue_rcv_skb', 'sock/sock_rcvqueue_full', 'sock/sock_exceed_buf_limit', 'skb/kfree_skb'];
const DOCUMENTED = new Set<number>([EXIT.USAGE, EXIT.UNAVAILABLE, EXIT.OSERR]);
const quiet = { notice: () => undefined };

/** Plan, allowing only an RxtraceError whose code maps to a documented exit code. */
async function planOrTyped(opts: PlanOptions, label = ''): Promise<'planned' | string> {
  try {
    const plan = await buildPlan({ ...quiet, ...opts });
    expect(plan.events.length).toBeGreaterThan(0);
    for (const e of plan.events) {
      if (e.filter !== undefined) expect(typeof e.filter).toBe('string');
      // perf_event_open takes the id as attr.config, and samples carry it as a u16 common_type.
      const id = e.compiled.schema.id;
      expect(Number.isInteger(id) && id >= 0 && id <= 0xffff, `${e.compiled.event}: id ${id}${label}`).toBe(true);
    }
    return 'planned';
  } catch (e) {
    if (!(e instanceof RxtraceError)) throw e;
    expect(DOCUMENTED.has(exitCodeFor(e)), `${e.code} → exit ${exitCodeFor(e)}: ${e.message}${label}`).toBe(true);
    expect(e.message.length).toBeGreaterThan(0);
    return e.code;
  }
}

describe('plan over fixture tracefs trees (fuzz)', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'rxt-plan-fuzz-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('the fixture trees plan as documented (missing event noted, truncated format refused, pre-6.10 port field)', async () => {
    const notes: string[] = [];
    const a = await buildPlan({ tracefs: { root: join(TREES, '6.18-no-exceed') }, notice: (m) => notes.push(m) });
    expect(a.missing).toEqual(['sock:sock_exceed_buf_limit']);
    expect(notes.join('\n')).toMatch(/lacks sock:sock_exceed_buf_limit; tracing the others/);
    const b = await buildPlan({ ...quiet, tracefs: { root: join(TREES, '6.18-truncated') } }).catch((e: unknown) => e);
    expect(b).toBeInstanceOf(RxtraceError);
    expect(exitCodeFor(b)).toBe(EXIT.UNAVAILABLE);
    const c = await buildPlan({ ...quiet, tracefs: { root: join(TREES, '6.9') }, port: 5000 });
    expect(c.events.find((e) => e.compiled.event === 'udp:udp_fail_queue_rcv_skb')?.filter).toBe('lport == 5000');
  });

  const filters = fc.oneof(
    fc.constantFrom('dport == 5000', 'lport == 5000', 'rc == -12 && dport > 10', 'reason == 2', 'comm == "x"', 'dport == == 3', '', ' ', 'nosuch == 1', 'a'.repeat(5000)),
    anyText(['dport', 'lport', 'rc', ' == ', ' != ', ' && ', ' || ', '(', ')', '5000', '-12', '"', 'x', '~', '*', ';', '`']),
  );
  const options: fc.Arbitrary<PlanOptions> = fc.record(
    {
      events: fc.array(fc.constantFrom('skb:kfree_skb', 'kfree_skb', 'udp/udp_fail_queue_rcv_skb', 'sock:nosuch', 'net:netif_rx', ':', 'a:b:c', ''), { maxLength: 3 }),
      only: fc.boolean(),
      filter: filters,
      port: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constantFrom(-1, 65536, 1.5, Number.NaN)),
      reasons: fc.array(fc.constantFrom('SOCKET_RCVBUFF', 'socket_rcvbuff', 'SKB_DROP_REASON_PROTO_MEM', 'NOSUCH', '', 'NOT_SPECIFIED'), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  );

  it('random options on each tree: planned, or an RxtraceError with a documented exit code', async () => {
    const cases: [string, PlanOptions][] = [];
    check('plan: random options', fc.tuple(fc.constantFrom('6.18-no-exceed', '6.18-truncated', '6.9'), options), ([tree, opts]) => void cases.push([tree, opts]));
    for (const [tree, opts] of cases) await planOrTyped({ ...opts, tracefs: { root: join(TREES, tree) } }, ` (${tree}, ${JSON.stringify(opts).slice(0, 300)})`);
  });

  it('a tree with a mutated format or id file: planned, or an RxtraceError with a documented exit code', async () => {
    const cases: [string, string, 'format' | 'id', string][] = [];
    check(
      'plan: mutated tree',
      fc.tuple(fc.constantFrom('6.18-no-exceed', '6.9'), fc.constantFrom(...EVENTS), fc.constantFrom('format' as const, 'id' as const), fc.array(mutation(' \n\t:;[]0123456789-x_abc"'), { minLength: 1, maxLength: 4 })),
      ([tree, ev, file, ms]) => {
        let text: string;
        try {
          text = readFileSync(join(TREES, tree, 'events', ev, file), 'latin1');
        } catch {
          return; // this tree lacks that event
        }
        cases.push([tree, ev, file, ms.reduce(mutate, text)]);
      },
    );
    let n = 0;
    for (const [tree, ev, file, text] of cases) {
      const root = join(work, `t${n++}`);
      cpSync(join(TREES, tree), root, { recursive: true });
      writeFileSync(join(root, 'events', ev, file), text, 'latin1');
      const opts: PlanOptions = { tracefs: { root }, events: ev === 'skb/kfree_skb' ? ['skb:kfree_skb'] : [] };
      await planOrTyped(opts, ` (${tree}: events/${ev}/${file} = ${JSON.stringify(text.slice(0, 200))})`);
      rmSync(root, { recursive: true, force: true });
    }
  });
});
