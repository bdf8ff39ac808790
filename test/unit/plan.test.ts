// buildPlan (src/plan.ts) over fixture tracefs trees: a kernel without any of the default
// tracepoints is "tracing unavailable" (exit 69), not a usage error, and no "tracing the others"
// notice comes before it (B5). No perf event is opened.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.js';
import { RxtraceError } from '../../src/errors.js';
import { buildPlan, DEFAULT_EVENTS } from '../../src/plan.js';

const TREES = fileURLToPath(new URL('../fixtures/tracefs/', import.meta.url));

describe('buildPlan: default tracepoints missing', () => {
  let onlyKfree: string;
  beforeAll(() => {
    // A kernel that has skb:kfree_skb and none of the three defaults.
    onlyKfree = mkdtempSync(join(tmpdir(), 'rxt-plan-'));
    cpSync(join(TREES, '6.18-no-exceed', 'events', 'skb'), join(onlyKfree, 'events', 'skb'), { recursive: true });
  });
  afterAll(() => rmSync(onlyKfree, { recursive: true, force: true }));

  it('none of the defaults and no event named: ENOTRACEPOINT (exit 69) naming each, without the "tracing the others" notice', async () => {
    const notes: string[] = [];
    const e = await buildPlan({ tracefs: { root: onlyKfree }, notice: (m) => notes.push(m) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RxtraceError);
    const err = e as RxtraceError;
    expect(err.code).toBe('ENOTRACEPOINT');
    expect(exitCodeFor(err)).toBe(EXIT.UNAVAILABLE);
    for (const name of DEFAULT_EVENTS) expect(err.message).toContain(name);
    expect(err.hint).toMatch(/-e/);
    expect(notes).toEqual([]);
  });

  it('none of the defaults, but --reason adds skb:kfree_skb, which exists: planned, and the notice is true', async () => {
    const notes: string[] = [];
    const plan = await buildPlan({ tracefs: { root: onlyKfree }, reasons: ['SOCKET_RCVBUFF'], notice: (m) => notes.push(m) });
    expect(plan.events.map((e) => e.compiled.event)).toEqual(['skb:kfree_skb']);
    expect(plan.missing).toEqual(DEFAULT_EVENTS);
    expect(notes.join('\n')).toMatch(/tracing the others/);
  });

  it('a default named with -e that this kernel lacks is still a usage error (exit 2)', async () => {
    const e = await buildPlan({ tracefs: { root: onlyKfree }, events: ['udp:udp_fail_queue_rcv_skb'], only: true, notice: () => undefined }).catch((x: unknown) => x);
    expect((e as RxtraceError).code).toBe('EUNKNOWNEVENT');
    expect(exitCodeFor(e)).toBe(EXIT.USAGE);
  });
});
