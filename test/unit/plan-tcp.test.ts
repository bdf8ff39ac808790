// `--proto tcp` (plan-tcp.ts): kfree_skb filtered in the kernel to the TCP receive reasons this
// kernel's `print fmt` names, with its own numbers, plus sock_exceed_buf_limit; on 6.1 (no
// TCP_LISTEN_OVERFLOW) and 6.18 alike; an explicit --reason wins; no reasons → a clear error.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFormat } from '../../src/format/parse.js';
import { RxtraceError } from '../../src/errors.js';
import { buildPlan } from '../../src/plan.js';
import { tcpReasons } from '../../src/plan-tcp.js';

const FIX = fileURLToPath(new URL('../fixtures/', import.meta.url));

describe('--proto tcp', () => {
  const trees: Record<string, string> = {};
  beforeAll(() => {
    for (const [name, kfree] of [['6.1', 'format/6.1/kfree_skb.format'], ['5.16', 'format/5.16/kfree_skb.format'], ['5.15', 'format/5.15/kfree_skb.format'], ['6.18', 'format/6.18/kfree_skb.format']]) {
      const t = mkdtempSync(join(tmpdir(), 'rxt-tcp-'));
      cpSync(join(FIX, 'tracefs/6.9/events'), join(t, 'events'), { recursive: true });
      mkdirSync(join(t, 'events/skb/kfree_skb'), { recursive: true });
      writeFileSync(join(t, 'events/skb/kfree_skb/format'), readFileSync(join(FIX, kfree)));
      writeFileSync(join(t, 'events/skb/kfree_skb/id'), '1499\n');
      trees[name] = t;
    }
  });
  afterAll(() => Object.values(trees).forEach((t) => rmSync(t, { recursive: true, force: true })));

  it('6.1: kfree_skb with 6.1 numbers of the TCP receive reasons it has, and sock_exceed_buf_limit; no UDP events', async () => {
    const plan = await buildPlan({ tracefs: { root: trees['6.1'] }, proto: 'tcp', kernelRelease: '6.1.0', notice: () => undefined });
    expect(plan.events.map((e) => e.compiled.event)).toEqual(['skb:kfree_skb', 'sock:sock_exceed_buf_limit']);
    // 6.1: SOCKET_BACKLOG 20, TCP_ZEROWINDOW 22, TCP_OFO_QUEUE_PRUNE 35, TCP_OFO_DROP 36, TCP_OFOMERGE 25, PROTO_MEM 16, SOCKET_RCVBUFF 15; no TCP_LISTEN_OVERFLOW
    expect(plan.events[0].filter).toBe('reason == 20 || reason == 22 || reason == 35 || reason == 36 || reason == 25 || reason == 16 || reason == 15');
    expect(plan.udp6Fallback).toBeUndefined();
  });

  it('tcpReasons follows print fmt: 6.18 has them under other numbers', () => {
    const k618 = parseFormat(readFileSync(join(FIX, 'format/6.18/kfree_skb.format'), 'utf8'), 'skb');
    expect(tcpReasons(k618)).toEqual(expect.arrayContaining(['SOCKET_BACKLOG', 'TCP_ZEROWINDOW', 'TCP_OFO_DROP', 'PROTO_MEM', 'SOCKET_RCVBUFF']));
  });

  it('--reason given: the user\'s reasons, not the TCP set', async () => {
    const plan = await buildPlan({ tracefs: { root: trees['6.1'] }, proto: 'tcp', reasons: ['TCP_ZEROWINDOW'], notice: () => undefined });
    expect(plan.events.find((e) => e.compiled.event === 'skb:kfree_skb')?.filter).toBe('reason == 22');
  });

  it('before 5.17 (no reasons): EBADREASON naming the counters to use instead', async () => {
    const e = await buildPlan({ tracefs: { root: trees['5.16'] }, proto: 'tcp', notice: () => undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RxtraceError);
    expect((e as RxtraceError).code).toBe('EBADREASON');
    expect((e as RxtraceError).hint).toMatch(/rxtrace stats/);
    expect((e as RxtraceError).message).toMatch(/reasons arrived in 5\.17/);
  });

  it('5.15.58+ (a backported early reason set, no TCP one): EBADREASON that says so, not "before 5.17"', async () => {
    const e = await buildPlan({ tracefs: { root: trees['5.15'] }, proto: 'tcp', notice: () => undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RxtraceError);
    expect((e as RxtraceError).code).toBe('EBADREASON');
    expect((e as RxtraceError).message).toMatch(/names none of the TCP receive reasons/);
    expect((e as RxtraceError).message).not.toMatch(/5\.17/);
  });
});
