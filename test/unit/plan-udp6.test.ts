// IPv6 UDP drops before 6.5 (issue 12): the plan adds skb:kfree_skb filtered in the kernel to
// IPv6 socket-reason drops, with this kernel's reason numbers, and says so once; not on 6.5+,
// not with --only, not when the user traces kfree_skb already. Fixture trees: 6.9 layouts
// (lport) with 6.1's kfree_skb (reason numbering of 6.1, no rx_sk).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFormat } from '../../src/format/parse.js';
import { buildPlan, portScopedTables } from '../../src/plan.js';
import { udp6EventFires, udp6KfreeFilter } from '../../src/plan-udp6.js';

const FIX = fileURLToPath(new URL('../fixtures/', import.meta.url));
const kfree61 = readFileSync(join(FIX, 'format/6.1/kfree_skb.format'), 'utf8');

describe('IPv6 UDP drops before 6.5', () => {
  let tree61: string;
  beforeAll(() => {
    tree61 = mkdtempSync(join(tmpdir(), 'rxt-udp6-'));
    cpSync(join(FIX, 'tracefs/6.9/events'), join(tree61, 'events'), { recursive: true });
    mkdirSync(join(tree61, 'events/skb/kfree_skb'), { recursive: true });
    writeFileSync(join(tree61, 'events/skb/kfree_skb/format'), kfree61);
    writeFileSync(join(tree61, 'events/skb/kfree_skb/id'), '1499\n');
  });
  afterAll(() => rmSync(tree61, { recursive: true, force: true }));

  it('6.1: kfree_skb is added, filtered to IPv6 and 6.1 numbers of SOCKET_RCVBUFF (15) and PROTO_MEM (16); one notice, kept for after start-up', async () => {
    const notes: string[] = [];
    const plan = await buildPlan({ tracefs: { root: tree61 }, kernelRelease: '6.1.0-26-amd64', notice: (m) => notes.push(m) });
    const k = plan.events.find((e) => e.compiled.event === 'skb:kfree_skb');
    expect(k?.filter).toBe('protocol == 34525 && (reason == 15 || reason == 16)');
    expect(plan.udp6Fallback).toBe(true);
    // Said by openTracer/openCounters once tracing runs, so that a start-up error stays one line.
    expect(notes.filter((n) => /IPv6/.test(n))).toEqual([]);
    expect(plan.startNotice).toMatch(/no udp:udp_fail_queue_rcv_skb for IPv6 UDP drops \(before 6\.5\)/);
  });

  it('--port on 6.1: the udp event is filtered by lport in the kernel, kfree_skb by its socket in user space', async () => {
    const plan = await buildPlan({ tracefs: { root: tree61 }, kernelRelease: '6.1.0', port: 5000, notice: () => undefined });
    const k = plan.events.find((e) => e.compiled.event === 'skb:kfree_skb')!;
    expect(k.portInUserSpace).toBe(true);
    expect(plan.events.find((e) => e.compiled.event === 'udp:udp_fail_queue_rcv_skb')?.filter).toBe('lport == 5000');
  });

  it('--port: the start-up read is scoped to the port only where no kfree_skb needs the table whole (udp6 for the fallback, both for the user\'s kfree_skb)', async () => {
    const q = { tracefs: { root: tree61 }, port: 5000, notice: () => undefined };
    expect(portScopedTables(await buildPlan({ ...q, kernelRelease: '6.1.0' }))).toEqual(['udp']);
    expect(portScopedTables(await buildPlan({ ...q, kernelRelease: '6.5.0' }))).toEqual(['udp', 'udp6']);
    expect(portScopedTables(await buildPlan({ ...q, kernelRelease: '6.1.0', reasons: ['SOCKET_RCVBUFF'] }))).toEqual([]);
    expect(portScopedTables(await buildPlan({ ...q, port: undefined, kernelRelease: '6.1.0' }))).toEqual([]);
  });

  it('not on 6.5+ (6.5–6.9 still has the lport layout), not with --only, not over the user\'s own kfree_skb', async () => {
    const n: string[] = [];
    const p65 = await buildPlan({ tracefs: { root: tree61 }, kernelRelease: '6.5.0', notice: (m) => n.push(m) });
    expect(p65.events.map((e) => e.compiled.event)).not.toContain('skb:kfree_skb');
    expect(p65.udp6Fallback).toBeUndefined();
    const only = await buildPlan({ tracefs: { root: tree61 }, kernelRelease: '6.1.0', only: true, events: ['udp:udp_fail_queue_rcv_skb'], notice: (m) => n.push(m) });
    expect(only.events.map((e) => e.compiled.event)).toEqual(['udp:udp_fail_queue_rcv_skb']);
    const own = await buildPlan({ tracefs: { root: tree61 }, kernelRelease: '6.1.0', reasons: ['NO_SOCKET'], notice: (m) => n.push(m) });
    expect(own.events.find((e) => e.compiled.event === 'skb:kfree_skb')?.filter).toBe('reason == 2');
    expect(n.filter((x) => /IPv6/.test(x))).toEqual([]);
    expect([p65.startNotice, only.startNotice, own.startNotice]).toEqual([undefined, undefined, undefined]);
  });

  it('udp6EventFires: the 6.10 layout settles it whatever the release says; else the release', () => {
    const udp618 = parseFormat(readFileSync(join(FIX, 'format/6.18/udp_fail_queue_rcv_skb.format'), 'utf8'), 'udp');
    const udp69 = parseFormat(readFileSync(join(FIX, 'tracefs/6.9/events/udp/udp_fail_queue_rcv_skb/format'), 'utf8'), 'udp');
    expect(udp6EventFires(udp618, '6.1.0')).toBe(true);
    expect(udp6EventFires(udp69, '6.1.0')).toBe(false);
    expect(udp6EventFires(udp69, '6.4.16')).toBe(false);
    expect(udp6EventFires(udp69, '6.5.0')).toBe(true);
    expect(udp6EventFires(udp69, '5.15.0')).toBe(false);
    expect(udp6EventFires(udp69, 'weird')).toBe(true);
  });

  it('udp6KfreeFilter: no reasons (before 5.17) → nothing to filter on', () => {
    const k516 = parseFormat(readFileSync(join(FIX, 'format/5.16/kfree_skb.format'), 'utf8'), 'skb');
    expect(udp6KfreeFilter(k516)).toBeUndefined();
    const k618 = parseFormat(readFileSync(join(FIX, 'format/6.18/kfree_skb.format'), 'utf8'), 'skb');
    expect(udp6KfreeFilter(k618)).toMatch(/^protocol == 34525 && \(reason == \d+ \|\| reason == \d+\)$/);
  });
});

describe('doctor: udp6 drop event', () => {
  it('ok on 6.5+, warn with the kfree_skb filter before, warn without reasons', async () => {
    const { udp6Check } = await import('../../src/doctor/udp6.js');
    const udp69 = parseFormat(readFileSync(join(FIX, 'tracefs/6.9/events/udp/udp_fail_queue_rcv_skb/format'), 'utf8'), 'udp');
    const k61 = parseFormat(kfree61, 'skb');
    const k516 = parseFormat(readFileSync(join(FIX, 'format/5.16/kfree_skb.format'), 'utf8'), 'skb');
    expect(udp6Check(udp69, k61, '6.6.1').status).toBe('ok');
    const c = udp6Check(udp69, k61, '6.1.0');
    expect(c.status).toBe('warn');
    expect(c.data).toMatchObject({ udp6Event: false, kfreeFilter: 'protocol == 34525 && (reason == 15 || reason == 16)' });
    expect(udp6Check(udp69, k516, '5.16.0').hint).toMatch(/counters/);
    expect(udp6Check(udp69, k516, '5.16.0').detail).toMatch(/has no drop reasons/);
    // 5.15.58+: a backported reason table with 12 names, neither of the two (fixture 5.15/, 5.15.89)
    const k515 = parseFormat(readFileSync(join(FIX, 'format/5.15/kfree_skb.format'), 'utf8'), 'skb');
    const c515 = udp6Check(udp69, k515, '5.15.89');
    expect(c515).toMatchObject({ status: 'warn', data: { udp6Event: false } });
    expect(c515.detail).toMatch(/names neither SOCKET_RCVBUFF nor PROTO_MEM/);
    expect(udp6Check(udp69, null, '5.15.89').detail).toMatch(/no skb:kfree_skb/);
  });

  it('5.15.58+ (reasons, but not these): no kfree_skb added, and the notice says why', async () => {
    const t = mkdtempSync(join(tmpdir(), 'rxt-udp6-515-'));
    try {
      cpSync(join(FIX, 'tracefs/6.9/events'), join(t, 'events'), { recursive: true });
      mkdirSync(join(t, 'events/skb/kfree_skb'), { recursive: true });
      writeFileSync(join(t, 'events/skb/kfree_skb/format'), readFileSync(join(FIX, 'format/5.15/kfree_skb.format')));
      writeFileSync(join(t, 'events/skb/kfree_skb/id'), '1413\n');
      const notes: string[] = [];
      const plan = await buildPlan({ tracefs: { root: t }, kernelRelease: '5.15.89', notice: (m) => notes.push(m) });
      expect(plan.events.map((e) => e.compiled.event)).not.toContain('skb:kfree_skb');
      expect(plan.udp6Fallback).toBeUndefined();
      expect([...notes, plan.startNotice ?? ''].join('\n')).toMatch(/names neither SOCKET_RCVBUFF nor PROTO_MEM among its drop reasons: IPv6 UDP drops are seen only in the counters/);
    } finally {
      rmSync(t, { recursive: true, force: true });
    }
  });
});

describe('IPv6 kfree_skb drops on 6.1: by whose drops rose among IPv6 sockets', () => {
  it('one udp6 socket rose: it; two: ambiguous with both; an IPv4 socket never a candidate', async () => {
    const { byDrops } = await import('../../src/attribute/strategies.js');
    const { kfreeDropTables } = await import('../../src/attribute/kfree.js');
    const row = (inode: number, table: 'udp' | 'udp6', drops: number) => ({
      table, inode, netns: 1, drops, local: { addr: table === 'udp6' ? '::1' : '127.0.0.1', port: 5000 + inode }, remote: { addr: '::', port: 0 },
      localText: '', remoteText: '', state: 7, tx_queue: 0, rx_queue: 0, uid: 0, ref: 2, pointer: '0',
    });
    const read = (t: number, rows: ReturnType<typeof row>[]) => ({ startNs: t, endNs: t + 1, tables: new Set(['udp', 'udp6', 'raw', 'raw6', 'icmp', 'icmp6'] as const), rows: new Map(rows.map((r) => [r.inode, r])) });
    const tables = kfreeDropTables({ protocol: 34525, reason: 'SOCKET_RCVBUFF' })!;
    const one = byDrops(tables, read(0, [row(1, 'udp6', 0), row(2, 'udp6', 5), row(3, 'udp', 0)]), read(10, [row(1, 'udp6', 3), row(2, 'udp6', 5), row(3, 'udp', 9)]));
    expect(one).toMatchObject({ match: 'drops', row: { inode: 1 } });
    const two = byDrops(tables, read(0, [row(1, 'udp6', 0), row(2, 'udp6', 5)]), read(10, [row(1, 'udp6', 3), row(2, 'udp6', 6)]));
    expect(two).toEqual({ match: 'ambiguous', candidates: [1, 2] });
    // protocol memory: TCP frees with it too, and its sockets are not in these tables
    expect(kfreeDropTables({ protocol: 34525, reason: 'PROTO_MEM' })).toBeUndefined();
  });
});
