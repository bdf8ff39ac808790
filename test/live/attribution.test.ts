// Issue 3, live: every drop lands on the socket, owner and netns that really dropped it.
// Each case starts its own sinks on its own ports, opens the library tracer with a kernel filter
// on those ports (or scopes the events by inode / rx_sk where the event has no port), floods,
// closes, and compares what the tracer said with the kernel's own per-socket `drops` counters
// (test/helpers/procnet-read.ts, independent of src/procnet). Other engineers' live tests may
// run concurrently and make drops elsewhere: nothing here counts events outside its own scope.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ProcAttributor } from '../../src/attribute/index.js';
import { openTracer, type TracerOptions, type TracerStats } from '../../src/tracer.js';
import type { DropEvent } from '../../src/decode/events.js';
import { TIME_SCALE } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { eventPort, expectUdpFields, itOnKernel, kernelLayout, portFilter as kernelPortFilter } from '../helpers/kernel.js';
import { leftoverNetns, setupMulticastLo, withNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { icmpSocketDrops, pollUntil, udpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, runningRxflood, rxfloodPath, send, startPingSink, startSink, stopAllRxflood, type PingSink, type Sink } from '../helpers/rxflood.js';
import { readSysctl, withSysctl } from '../helpers/sysctl.js';

/** What this kernel's tracepoints can show (lport before 6.10, dport after…). */
const K = await kernelLayout();

const N = 3000;
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'rxtrace.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** inode of a process's network namespace, from readlink /proc/PID/ns/net */
function netnsOf(pid: number | 'self'): number {
  const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
  if (!m) throw new Error(`no netns link for ${pid}`);
  return Number(m[1]);
}

type AnySink = Pick<Sink, 'pid' | 'inode' | 'netns'>;

/** the sink's `drops` column right now (0 if it is gone) */
function udpDrops(s: AnySink): number {
  return udpSocketDrops(s.inode, s.netns ? s.pid : undefined)?.drops ?? 0;
}
function icmpDrops(s: AnySink): number {
  return icmpSocketDrops(s.inode, s.netns ? s.pid : undefined)?.drops ?? 0;
}

/** Wait until a counter stops moving (two equal reads 60 ms apart, at most 3 s). */
async function settled(read: () => number): Promise<number> {
  let last = read();
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    await sleep(60);
    const v = read();
    if (v === last) return v;
    last = v;
  }
  return last;
}

/** The `pointer` column of a UDP socket (real sk address when kptr_restrict=1 and root). */
function udpPointer(inode: number): string | undefined {
  for (const table of ['udp', 'udp6']) {
    for (const line of readFileSync(`/proc/net/${table}`, 'utf8').split('\n').slice(1)) {
      const t = line.trim().split(/\s+/);
      if (Number(t[9]) === inode) return normPtr(t[11]);
    }
  }
  return undefined;
}
function normPtr(p: unknown): string {
  const s = String(p).toLowerCase().replace(/^0x/, '').replace(/^0+/, '');
  return s === '' ? '0' : s;
}

interface Traced {
  events: DropEvent[];
  lost: number;
  errors: Error[];
  stats: TracerStats;
}

/** Open the library tracer, run body (flood + settle; it sees the events so far), close (final drain), return what came out. */
async function traced(opts: TracerOptions, body: (events: DropEvent[]) => Promise<void>): Promise<Traced> {
  const tracer = await openTracer({ notice: () => undefined, ...opts });
  const events: DropEvent[] = [];
  const errors: Error[] = [];
  let lost = 0;
  tracer.on('drop', (e) => events.push(e));
  tracer.on('lost', (l) => (lost += l.lost));
  tracer.on('error', (e) => errors.push(e));
  try {
    await body(events);
  } finally {
    await tracer.close();
  }
  return { events, lost, errors, stats: tracer.stats() };
}

/** "match/inode[/stale]" → count: the whole attribution outcome in one comparable object. */
function hist(events: DropEvent[]): Record<string, number> {
  const h: Record<string, number> = {};
  for (const e of events) {
    const k = `${e.match}/${e.socket ? e.socket.inode : 'null'}${e.socket?.stale ? '/stale' : ''}`;
    h[k] = (h[k] ?? 0) + 1;
  }
  return h;
}

/** Every event's socket lists this owner (pid, and comm when given). Shows a sample on failure. */
function expectOwner(events: DropEvent[], pid: number, comm?: string): void {
  const bad = events.filter((e) => !e.socket?.owners.some((o) => o.pid === pid && (comm === undefined || o.comm === comm)));
  expect(
    bad.length,
    `events without owner ${pid}${comm ? `/${comm}` : ''}: ${bad.length}/${events.length}, e.g. ${JSON.stringify(bad[0]?.socket)}`,
  ).toBe(0);
}

const byPort = (events: DropEvent[], port: number) => events.filter((e) => eventPort(K, e.fields) === port);
const portFilter = (ports: number[]) => kernelPortFilter(K, ports);
const log = (what: string, v: unknown) => console.log(`[attribution] ${what}: ${JSON.stringify(v)}`);

describeLive('attribution: every drop on the right socket, owner and netns', () => {
  let kptrAtStart = '';
  beforeAll(async () => {
    kptrAtStart = await readSysctl('kernel/kptr_restrict');
  });

  afterEach(async () => {
    await stopAllRxflood();
  });

  afterAll(async () => {
    expect(runningRxflood()).toEqual([]);
    expect(leftoverNetns()).toEqual([]);
    expect(await readSysctl('kernel/kptr_restrict')).toBe(kptrAtStart);
  });

  it('IPv4 127.0.0.1, IPv6 [::1] and wildcard 0.0.0.0 / [::] binds: each drop on its own socket; a quiet socket gets none', async () => {
    const p = await Promise.all([freePort(), freePort('udp6'), freePort(), freePort('udp6'), freePort()]);
    const v4 = await startSink({ bind: addrPort('127.0.0.1', p[0]), rcvbuf: 1 });
    const v6 = await startSink({ bind: addrPort('::1', p[1]), rcvbuf: 1 });
    const w4 = await startSink({ bind: addrPort('0.0.0.0', p[2]), rcvbuf: 1 });
    const w6 = await startSink({ bind: addrPort('::', p[3]), rcvbuf: 1, v6only: true });
    const quiet = await startSink({ bind: addrPort('127.0.0.1', p[4]), rcvbuf: 1 });
    const cases = [
      { sink: v4, to: addrPort('127.0.0.1', p[0]), family: 'AF_INET', daddr: `127.0.0.1:${p[0]}`, table: 'udp', local: `127.0.0.1:${p[0]}` },
      { sink: v6, to: addrPort('::1', p[1]), family: 'AF_INET6', daddr: `[::1]:${p[1]}`, table: 'udp6', local: `[::1]:${p[1]}` },
      { sink: w4, to: addrPort('127.0.0.1', p[2]), family: 'AF_INET', daddr: `127.0.0.1:${p[2]}`, table: 'udp', local: `0.0.0.0:${p[2]}` },
      { sink: w6, to: addrPort('::1', p[3]), family: 'AF_INET6', daddr: `[::1]:${p[3]}`, table: 'udp6', local: `[::]:${p[3]}` },
    ];
    const all = [...cases.map((c) => c.sink), quiet];
    const before = all.map(udpDrops);
    let after: number[] = [];
    const run = await traced({ filter: portFilter(p), resolve: true }, async () => {
      await Promise.all(cases.map((c) => send({ to: c.to, count: N })));
      after = [];
      for (const s of all) after.push(await settled(() => udpDrops(s)));
    });
    expect(run.lost).toBe(0);
    expect(run.errors).toEqual([]);
    const counts: Record<string, unknown> = {};
    // IPv6 drops fire the udp event only since 6.5: before, the kernel says nothing of them
    const fires = (c: (typeof cases)[number]) => c.family === 'AF_INET' || K.udp6Event;
    cases.forEach((c, i) => {
      const delta = after[i] - before[i];
      expect(delta, `${c.local} dropped`).toBeGreaterThan(N * 0.9);
      const evs = byPort(run.events, c.sink.port);
      if (!fires(c)) {
        expect(evs, `${c.local}: ${K.need.udp6Event.why}`).toHaveLength(0);
        counts[c.local] = { events: 0, drops: delta, why: K.need.udp6Event.why };
        return;
      }
      expect(hist(evs), c.local).toEqual({ [`address/${c.sink.inode}`]: delta });
      expectOwner(evs, c.sink.pid, 'rxflood');
      for (const e of evs.slice(0, 50)) {
        expectUdpFields(K, e.fields, { port: c.sink.port, family: c.family as 'AF_INET' | 'AF_INET6', daddr: c.daddr });
        expect(e.socket).toMatchObject({ table: c.table, local: c.local, netns: netnsOf('self') });
      }
      counts[c.local] = { events: evs.length, drops: delta };
    });
    // the quiet socket neither dropped nor got an event, and nothing fell outside the four sockets
    expect(after[4] - before[4]).toBe(0);
    expect(run.events.filter((e) => e.socket?.inode === quiet.inode)).toHaveLength(0);
    expect(run.events.length).toBe(after.slice(0, 4).reduce((a, d, i) => a + (fires(cases[i]) ? d - before[i] : 0), 0));
    log('v4/v6/wildcards', counts);
  });

  it('one port, three sockets dropping at once (127.0.0.1, 0.0.0.0 and [::1]): the daddr and family decide, not the drops', async () => {
    // Fails on the current product: strategies.ts rowAccepts() lets 0.0.0.0:P match a datagram
    // for 127.0.0.1 even while 127.0.0.1:P is bound in the same netns, so both drop counters rose
    // and every 127.0.0.1 drop comes out `ambiguous` (honest, but the kernel's choice is certain).
    const port = await freePort();
    const spec = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, reuseaddr: true, comm: 'rxt-spec' });
    const wild = await startSink({ bind: addrPort('0.0.0.0', port), rcvbuf: 1, reuseaddr: true, comm: 'rxt-wild' });
    const six = await startSink({ bind: addrPort('::1', port), rcvbuf: 1, comm: 'rxt-six' });
    const sinks = [spec, wild, six];
    const before = sinks.map(udpDrops);
    let after: number[] = [];
    const run = await traced({ port, resolve: true }, async () => {
      // 127.0.0.2 is local on lo but not bound by `spec`: only the wildcard socket takes it
      await Promise.all([
        send({ to: addrPort('127.0.0.1', port), count: N }),
        send({ to: addrPort('127.0.0.2', port), count: N }),
        send({ to: addrPort('::1', port), count: N }),
      ]);
      after = [];
      for (const s of sinks) after.push(await settled(() => udpDrops(s)));
    });
    expect(run.lost).toBe(0);
    const d = sinks.map((_, i) => after[i] - before[i]);
    for (const x of d) expect(x).toBeGreaterThan(N * 0.9);
    if (!K.udp.addresses) {
      // Before 6.10 the event has only lport: 127.0.0.1:P and 0.0.0.0:P (and [::1]:P) are told
      // apart only by whose drops rose, and all rose at once, so each event may be `ambiguous`.
      // Never wrong: [::1] fires no udp event before 6.5, so no udp event may name it; no socket
      // is named for more events than it dropped; ambiguous events list only the sockets on P.
      const udpEvents = run.events.filter((e) => e.event === 'udp:udp_fail_queue_rcv_skb');
      const named = hist(udpEvents.filter((e) => e.match !== 'ambiguous'));
      const v4 = K.udp6Event ? d[0] + d[1] + d[2] : d[0] + d[1];
      expect(udpEvents.length).toBe(v4);
      if (!K.udp6Event) expect(udpEvents.some((e) => e.socket?.inode === six.inode), K.need.udp6Event.why).toBe(false);
      for (const [i, s] of sinks.entries()) {
        const n = Object.entries(named).filter(([k]) => k.endsWith(`/${s.inode}`)).reduce((a, [, v]) => a + v, 0);
        expect(n, `events naming inode ${s.inode}`).toBeLessThanOrEqual(d[i]);
      }
      for (const e of udpEvents.filter((x) => x.match === 'ambiguous')) {
        expect(e.candidates!.length).toBeGreaterThanOrEqual(2);
        expect(sinks.map((x) => x.inode)).toEqual(expect.arrayContaining(e.candidates!));
      }
      // Before 6.5 the [::1] drops come as skb:kfree_skb (IPv6, SOCKET_RCVBUFF), which --port
      // keeps only on a socket of P: one per drop of [::1]:P, judged among the IPv6 sockets by
      // whose drops rose (the two IPv4 sockets that also dropped are no candidates).
      const kfree = run.events.filter((e) => e.event === 'skb:kfree_skb');
      log('one port, three sockets (lport only)', { spec: d[0], wild: d[1], six: d[2], udp: hist(udpEvents), kfree: hist(kfree), filtered: run.stats.filtered, why: K.need.udpAddresses.why });
      if (K.udp6Event) expect(kfree).toEqual([]);
      else {
        // Every kept one is on [::1]:P by `drops`; one that `drops` could not name alone (ambiguous:
        // on a slow host a window's reads may not separate the drops, drops-cap.ts) is on no
        // socket of P, so --port filters it, and says so in the count of the filtered. Nothing
        // else: together they are the socket's drops, and nearly all are named (2,988 of 2,996
        // in the worst 6.1 run under TCG; all of them in the others).
        expect(Object.keys(hist(kfree)), K.need.udp6Event.why).toEqual([`drops/${six.inode}`]);
        expect(kfree.length + run.stats.filtered).toBe(d[2]);
        expect(kfree.length).toBeGreaterThanOrEqual(Math.floor(0.98 * d[2]));
        for (const e of kfree) expect(e.fields).toMatchObject({ protocol: 34525, reason: 'SOCKET_RCVBUFF' });
      }
      return;
    }
    const byDaddr = (a: string) => run.events.filter((e) => e.fields.daddr === a);
    // never a wrong socket: the kernel's lookup decides by daddr (an exact bind beats the wildcard)
    const truth: Record<string, number> = { [`127.0.0.1:${port}`]: spec.inode, [`127.0.0.2:${port}`]: wild.inode, [`[::1]:${port}`]: six.inode };
    const wrong = run.events.filter((e) =>
      e.match === 'ambiguous' ? !(e.candidates ?? []).includes(truth[String(e.fields.daddr)]) : e.match !== 'address' || e.socket?.inode !== truth[String(e.fields.daddr)],
    );
    expect(wrong.length, `wrongly attributed: ${JSON.stringify(wrong[0])}`).toBe(0);
    log('one port, three sockets', { spec: d[0], wild: d[1], six: d[2], events: hist(run.events) });
    // and certain: within one netns a unicast datagram for 127.0.0.1 cannot reach 0.0.0.0:P
    // while 127.0.0.1:P is bound, so the wildcard is no candidate (no need to narrow by drops)
    expect(hist(byDaddr(`127.0.0.1:${port}`))).toEqual({ [`address/${spec.inode}`]: d[0] });
    expect(hist(byDaddr(`127.0.0.2:${port}`))).toEqual({ [`address/${wild.inode}`]: d[1] });
    expect(hist(byDaddr(`[::1]:${port}`))).toEqual({ [`address/${six.inode}`]: d[2] });
    expect(run.events.length).toBe(d[0] + d[1] + d[2]);
    expectOwner(byDaddr(`127.0.0.1:${port}`), spec.pid, 'rxt-spec');
    expectOwner(byDaddr(`127.0.0.2:${port}`), wild.pid, 'rxt-wild');
    expectOwner(byDaddr(`[::1]:${port}`), six.pid, 'rxt-six');
  });

  it('dual-stack [::] (v6only 0) receiving IPv4: family AF_INET6 with an IPv4 daddr, socket in udp6', async () => {
    const port = await freePort();
    const ds = await startSink({ bind: addrPort('::', port), rcvbuf: 1, v6only: false });
    const before = udpDrops(ds);
    let after = 0;
    const run = await traced({ port, resolve: true }, async () => {
      await send({ to: addrPort('127.0.0.1', port), count: N });
      after = await settled(() => udpDrops(ds));
    });
    expect(run.lost).toBe(0);
    const delta = after - before;
    expect(delta).toBeGreaterThan(N * 0.9);
    expect(hist(run.events)).toEqual({ [`address/${ds.inode}`]: delta });
    expectOwner(run.events, ds.pid, 'rxflood');
    for (const e of run.events) expectUdpFields(K, e.fields, { port, family: 'AF_INET6', daddr: `127.0.0.1:${port}` });
    expect(run.events[0].socket).toMatchObject({ table: 'udp6', local: `[::]:${port}` });
    log('dual-stack', { events: run.events.length, drops: delta });
  });

  it('SO_REUSEPORT group: the drops land on the member whose counter rose, never on the other', async () => {
    const a = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, reuseport: true });
    const b = await startSink({ bind: addrPort('127.0.0.1', a.port), rcvbuf: 1, reuseport: true });
    expect(b.port).toBe(a.port);
    const before = [udpDrops(a), udpDrops(b)];
    let after: number[] = [];
    const run = await traced({ port: a.port, resolve: true }, async () => {
      await send({ to: addrPort('127.0.0.1', a.port), count: N }); // one source 4-tuple: one member
      after = [await settled(() => udpDrops(a)), await settled(() => udpDrops(b))];
    });
    expect(run.lost).toBe(0);
    const d = [after[0] - before[0], after[1] - before[1]];
    const [hot, cold, dHot, dCold] = d[0] > 0 ? [a, b, d[0], d[1]] : [b, a, d[1], d[0]];
    expect(dCold).toBe(0);
    expect(dHot).toBeGreaterThan(N * 0.9);
    expect(hist(run.events)).toEqual({ [`address/${hot.inode}`]: dHot });
    expectOwner(run.events, hot.pid, 'rxflood');
    expect(run.events.some((e) => e.socket?.owners.some((o) => o.pid === cold.pid))).toBe(false);
    log('reuseport', { hot: hot.inode, events: run.events.length, drops: dHot, coldDrops: dCold });
  });

  it('SO_REUSEPORT, both members dropping at once: never a wrong member (each event is its member or ambiguous)', async () => {
    const a = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, reuseport: true });
    const b = await startSink({ bind: addrPort('127.0.0.1', a.port), rcvbuf: 1, reuseport: true });
    // find two source ports that the group's hash sends to different members
    const owner = new Map<number, Sink>();
    const seen = new Set<Sink>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const sp = await freePort();
      const b0 = [udpDrops(a), udpDrops(b)];
      await send({ to: addrPort('127.0.0.1', a.port), count: 5, from: addrPort('127.0.0.1', sp) });
      const [da, db] = [(await settled(() => udpDrops(a))) - b0[0], (await settled(() => udpDrops(b))) - b0[1]];
      const m = da > 0 && db === 0 ? a : db > 0 && da === 0 ? b : undefined;
      if (m && !seen.has(m)) {
        seen.add(m);
        owner.set(sp, m);
      }
    }
    expect(seen.size, 'two source ports hashed to different members').toBe(2);
    const before = [udpDrops(a), udpDrops(b)];
    let after: number[] = [];
    const run = await traced({ port: a.port, resolve: true }, async () => {
      await Promise.all([...owner.keys()].map((sp) => send({ to: addrPort('127.0.0.1', a.port), count: N, from: addrPort('127.0.0.1', sp) })));
      after = [await settled(() => udpDrops(a)), await settled(() => udpDrops(b))];
    });
    expect(run.lost).toBe(0);
    expect(run.events.length).toBe(after[0] - before[0] + after[1] - before[1]);
    if (!K.udp.addresses) {
      // Before 6.10 no saddr says which sender (so which member) an event is: both members'
      // drops rose at once, so never a wrong member means no member named for more events than
      // it dropped, and nothing outside the group.
      const d = [after[0] - before[0], after[1] - before[1]];
      for (const [i, m] of [a, b].entries()) {
        expect(run.events.filter((e) => e.match !== 'ambiguous' && e.socket?.inode === m.inode).length).toBeLessThanOrEqual(d[i]);
      }
      expect(run.events.every((e) => (e.match === 'ambiguous' ? e.candidates!.every((c) => c === a.inode || c === b.inode) : e.socket?.inode === a.inode || e.socket?.inode === b.inode))).toBe(true);
      log('reuseport, both dropping (lport only)', { hist: hist(run.events), drops: d, why: K.need.udpAddresses.why });
      return;
    }
    const wrong = run.events.filter((e) => {
      const truth = owner.get(Number(String(e.fields.saddr).split(':').pop()))!;
      if (e.match === 'ambiguous') return !(e.candidates ?? []).includes(truth.inode);
      return e.match !== 'address' || e.socket?.inode !== truth.inode;
    });
    expect(wrong.length, `wrongly attributed: ${JSON.stringify(wrong[0])}`).toBe(0);
    log('reuseport, both dropping', hist(run.events));
  });

  it("the source article's case: two multicast members on one port in a netns, only the slow one drops; every event names it, its pid and its netns", async () => {
    await withNetns('attr-mcast', async (ns) => {
      await setupMulticastLo(ns);
      const port = await freePort();
      const common = { bind: addrPort('0.0.0.0', port), reuseaddr: true, join: '239.7.7.7@127.0.0.1', netns: ns };
      const slow = await startSink({ ...common, rcvbuf: 1, comm: 'mc-slow' });
      const fast = await startSink({ ...common, rcvbuf: 8 << 20, drain: true, comm: 'mc-fast' });
      try {
        const nsInode = netnsOf(slow.pid);
        expect(nsInode).not.toBe(netnsOf('self'));
        const before = [udpDrops(slow), udpDrops(fast)];
        let after: number[] = [];
        const run = await traced({ filter: kernelPortFilter(K, port), resolve: true }, async () => {
          const res = await send({ to: addrPort('239.7.7.7', port), count: 2000, mcastIf: '127.0.0.1', netns: ns });
          expect(res.sent).toBe(2000);
          after = [await settled(() => udpDrops(slow)), await settled(() => udpDrops(fast))];
        });
        expect(run.lost).toBe(0);
        const delta = after[0] - before[0];
        expect(delta).toBeGreaterThan(1800);
        expect(after[1] - before[1]).toBe(0);
        expect(hist(run.events)).toEqual({ [`address/${slow.inode}`]: delta });
        expectOwner(run.events, slow.pid, 'mc-slow');
        expect(run.events.some((e) => e.socket?.owners.some((o) => o.pid === fast.pid))).toBe(false);
        for (const e of run.events) {
          expect(e.socket!.netns).toBe(nsInode);
          expectUdpFields(K, e.fields, { port, daddr: `239.7.7.7:${port}` });
        }
        expect(run.events[0].socket).toMatchObject({ table: 'udp', local: `0.0.0.0:${port}` });
        log('multicast', { events: run.events.length, drops: delta, netns: nsInode });
      } finally {
        await slow.stop();
        await fast.stop();
      }
    });
  });

  it('the same address and port in two netns, only one dropping: events land on that one, with its netns', async () => {
    await withNetns('attr-a', (nsA) =>
      withNetns('attr-b', async (nsB) => {
        const port = await freePort();
        const a = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, netns: nsA, comm: 'ns-a' });
        const b = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, netns: nsB, comm: 'ns-b' });
        try {
          const [netA, netB] = [netnsOf(a.pid), netnsOf(b.pid)];
          expect(netA).not.toBe(netB);
          const before = [udpDrops(a), udpDrops(b)];
          let after: number[] = [];
          const run = await traced({ port, resolve: true }, async () => {
            await send({ to: addrPort('127.0.0.1', port), count: N, netns: nsA });
            after = [await settled(() => udpDrops(a)), await settled(() => udpDrops(b))];
          });
          expect(run.lost).toBe(0);
          const delta = after[0] - before[0];
          expect(delta).toBeGreaterThan(N * 0.9);
          expect(after[1] - before[1]).toBe(0);
          expect(hist(run.events)).toEqual({ [`address/${a.inode}`]: delta });
          expectOwner(run.events, a.pid, 'ns-a');
          expect(new Set(run.events.map((e) => e.socket!.netns))).toEqual(new Set([netA]));

          // and the other way round, in the same namespaces: now only b drops
          const before2 = [udpDrops(a), udpDrops(b)];
          let after2: number[] = [];
          const run2 = await traced({ port, resolve: true }, async () => {
            await send({ to: addrPort('127.0.0.1', port), count: N, netns: nsB });
            after2 = [await settled(() => udpDrops(a)), await settled(() => udpDrops(b))];
          });
          const delta2 = after2[1] - before2[1];
          expect(after2[0] - before2[0]).toBe(0);
          expect(hist(run2.events)).toEqual({ [`address/${b.inode}`]: delta2 });
          expectOwner(run2.events, b.pid, 'ns-b');
          expect(new Set(run2.events.map((e) => e.socket!.netns))).toEqual(new Set([netB]));
          log('two netns', { a: { events: run.events.length, drops: delta }, b: { events: run2.events.length, drops: delta2 } });
        } finally {
          await a.stop();
          await b.stop();
        }
      }),
    );
  });

  it('a socket owned by a child process with its own name (--comm): owners has its pid and comm', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-attr-feed' });
    expect(readFileSync(`/proc/${sink.pid}/comm`, 'utf8').trim()).toBe('rxt-attr-feed');
    const before = udpDrops(sink);
    let after = 0;
    const run = await traced({ port: sink.port, resolve: true }, async () => {
      await send({ to: addrPort('127.0.0.1', sink.port), count: N });
      after = await settled(() => udpDrops(sink));
    });
    expect(run.lost).toBe(0);
    expect(hist(run.events)).toEqual({ [`address/${sink.inode}`]: after - before });
    expectOwner(run.events, sink.pid, 'rxt-attr-feed');
    expect(run.events[0].socket!.owners).toEqual([expect.objectContaining({ pid: sink.pid, comm: 'rxt-attr-feed' })]);
    log('comm', { events: run.events.length, drops: after - before, owners: run.events[0].socket!.owners });
  });

  it('a socket that appears just after the owner scan and drops at once still gets its owner (pid and comm)', async () => {
    // The attributor rescans owners for an unknown socket at most every 100 ms after the last
    // scan; a socket born inside that window must still get its owner (it is alive and holds the
    // fd). The window is a race on a busy machine, so try a few times: with a correct product
    // every attempt passes. Fails on the current product (proc-attributor.ts: owners are
    // rescanned only if the last scan is > 100 ms old; otherwise the events go out with
    // owners: [] and are never revisited, and `--pid` then drops them silently).
    const attempts: unknown[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      // pre-spawned shells that exec the sink / the sender only when told
      const exec = (args: string) => spawn('sh', ['-c', `read _ && exec "$0" ${args}`, rxfloodPath()], { stdio: ['pipe', 'pipe', 'inherit'] });
      const child = exec(`sink --bind 127.0.0.1:${port} --rcvbuf 1 --comm rxt-quick`);
      const sender = exec(`send --to 127.0.0.1:${port} -n 1000`);
      const exited = once(child, 'exit');
      const sent = once(sender, 'exit');
      let inode = 0;
      try {
        let drops = 0;
        const run = await traced(
          {
            port,
            resolve: true,
            flushMs: 5,
            // the product's own attributor; the socket is created right after its first owner scan
            attributor: async () => {
              // The bounded wait for a full owner scan (1 s) scales with emulation, as the scan does.
              const a = await ProcAttributor.create({ maxOwnerWaitMs: 1000 * TIME_SCALE });
              const ready = once(child.stdout!, 'data');
              child.stdin!.write('go\n');
              const [line] = (await ready) as [Buffer];
              inode = Number(/^READY \d+ (\d+)/.exec(line.toString())![1]);
              return a;
            },
          },
          async () => {
            sender.stdin!.end('go\n');
            expect(await sent).toEqual([0, null]);
            drops = await settled(() => udpSocketDrops(inode)?.drops ?? 0);
          },
        );
        expect(run.lost).toBe(0);
        expect(drops).toBeGreaterThan(900);
        expect(hist(run.events)).toEqual({ [`address/${inode}`]: drops });
        attempts.push({ events: run.events.length, drops, withoutOwners: run.events.filter((e) => e.socket?.owners.length === 0).length });
        log('quick socket', attempts);
        expectOwner(run.events, child.pid!, 'rxt-quick');
      } finally {
        sender.kill('SIGTERM');
        child.stdin!.end();
        child.kill('SIGTERM');
        await exited;
      }
    }
  });

  it('pid filter keeps only drops on sockets owned by that pid (two sinks dropping)', async () => {
    const mine = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-pid-keep' });
    const other = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-pid-other' });
    const before = [udpDrops(mine), udpDrops(other)];
    let after: number[] = [];
    const run = await traced({ filter: portFilter([mine.port, other.port]), pid: mine.pid }, async () => {
      await Promise.all([send({ to: addrPort('127.0.0.1', mine.port), count: N }), send({ to: addrPort('127.0.0.1', other.port), count: N })]);
      after = [await settled(() => udpDrops(mine)), await settled(() => udpDrops(other))];
    });
    expect(run.lost).toBe(0);
    const [dMine, dOther] = [after[0] - before[0], after[1] - before[1]];
    expect(dOther).toBeGreaterThan(N * 0.9);
    expect(hist(run.events)).toEqual({ [`address/${mine.inode}`]: dMine });
    expectOwner(run.events, mine.pid, 'rxt-pid-keep');
    // the other sink's drops were decoded, then filtered out in user space
    expect(run.stats.filtered).toBe(dOther);
    log('pid filter', { kept: run.events.length, dropsMine: dMine, filtered: run.stats.filtered, dropsOther: dOther });
  });

  it('resolve: false (--no-resolve): events carry no match/socket keys', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const before = udpDrops(sink);
    let after = 0;
    const run = await traced({ port: sink.port, resolve: false }, async () => {
      await send({ to: addrPort('127.0.0.1', sink.port), count: N });
      after = await settled(() => udpDrops(sink));
    });
    expect(run.lost).toBe(0);
    expect(run.events.length).toBe(after - before);
    for (const e of run.events) {
      expect(Object.keys(e)).not.toContain('match');
      expect(Object.keys(e)).not.toContain('socket');
      expect(Object.keys(e)).not.toContain('candidates');
      expect(JSON.parse(JSON.stringify(e))).not.toHaveProperty('match');
    }
    log('no-resolve', { events: run.events.length, drops: after - before });
  });

  it('the CLI: `trace --no-resolve` prints no match/socket keys; `trace --pid P` prints only drops on P\'s socket', async () => {
    const a = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-cli-a' });
    const b = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-cli-b' });
    /** run `rxtrace trace ARGS -c 40 --format ndjson`, flooding in bursts until it exits */
    const cli = async (args: string[], targets: number[]) => {
      const proc = spawn(process.execPath, [CLI, 'trace', ...args, '-c', '40', '--format', 'ndjson'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exit = once(proc, 'exit');
      let done = false;
      void exit.then(() => (done = true));
      // Start-up included: under emulation (TIME_SCALE) node alone takes several seconds to load.
      const deadline = Date.now() + 20_000 * TIME_SCALE;
      try {
        while (!done && Date.now() < deadline) {
          await Promise.all(targets.map((port) => send({ to: addrPort('127.0.0.1', port), count: 20 })));
          await sleep(100);
        }
      } finally {
        if (!done) proc.kill('SIGTERM');
      }
      const [code] = await exit;
      expect(code, err).toBe(0);
      return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const plain = await cli(['-p', String(a.port), '--no-resolve'], [a.port]);
    expect(plain.length).toBe(40);
    for (const l of plain) {
      expect(l).not.toHaveProperty('match');
      expect(l).not.toHaveProperty('socket');
      expect(eventPort(K, l.fields as Record<string, unknown>)).toBe(a.port);
    }
    const onlyA = await cli(['--filter', portFilter([a.port, b.port]), '--pid', String(a.pid)], [a.port, b.port]);
    expect(onlyA.length).toBe(40);
    for (const l of onlyA) {
      expect(l).toMatchObject({ match: 'address', socket: { inode: a.inode } });
      expect((l.socket as { owners: unknown[] }).owners).toContainEqual(expect.objectContaining({ pid: a.pid, comm: 'rxt-cli-a' }));
    }
    expect(udpDrops(b)).toBeGreaterThan(0); // b did drop meanwhile: it was filtered, not quiet
    log('cli', { noResolve: plain.length, pidOnly: onlyA.length, bDrops: udpDrops(b) });
  });

  it("a socket closed between the drop and the lookup: no crash; 'none' or its last known record marked stale", async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const before = udpDrops(sink);
    let delta = 0;
    let successor: Sink | undefined;
    // a long flush: the batch reaches the attributor only after the socket is gone, and after a
    // new socket (never dropping) took its address and port
    const run = await traced({ port: sink.port, resolve: true, flushMs: 1500 }, async () => {
      await send({ to: addrPort('127.0.0.1', sink.port), count: 300 });
      delta = (await settled(() => udpDrops(sink))) - before;
      await sink.stop();
      expect(udpSocketDrops(sink.inode)).toBeUndefined();
      successor = await startSink({ bind: addrPort('127.0.0.1', sink.port), rcvbuf: 1, comm: 'rxt-successor' });
      await sleep(1800);
    });
    expect(run.errors).toEqual([]);
    expect(delta).toBeGreaterThan(250);
    expect(udpDrops(successor!)).toBe(0);
    expect(run.events.length).toBe(delta);
    const h = hist(run.events);
    for (const k of Object.keys(h)) expect([`address/${sink.inode}/stale`, 'none/null']).toContain(k);
    for (const e of run.events) if (e.socket) expect(e.socket).toMatchObject({ stale: true, inode: sink.inode });
    log('closed socket', h);
  });

  it('a socket in a netns created after the tracer opened is found on the miss (no guess, right netns)', async () => {
    // Fails on the current product: the miss triggers an owner rescan and a re-read that does see
    // the new netns, but the retry judges each event with ReadHistory.window(), whose `after` is
    // the FIRST read after the event, the one taken before the rescan: the socket is never a
    // candidate, and the whole first batch comes out `none`.
    const port = await freePort();
    const tracer = await openTracer({ port, resolve: true, notice: () => undefined });
    const events: DropEvent[] = [];
    tracer.on('drop', (e) => events.push(e));
    let d = 0;
    let netns = 0;
    let pid = 0;
    let inode = 0;
    try {
      // past the attributor's 250 ms rate limit on miss-triggered rescans: the rescan does happen
      await sleep(300);
      await withNetns('attr-late', async (ns) => {
        const sink = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, netns: ns, comm: 'rxt-late-ns' });
        try {
          [netns, pid, inode] = [netnsOf(sink.pid), sink.pid, sink.inode];
          await send({ to: addrPort('127.0.0.1', port), count: N, netns: ns });
          d = await settled(() => udpDrops(sink));
          await sleep(200); // the batch is attributed while the namespace still exists
        } finally {
          await sink.stop();
        }
      });
    } finally {
      await tracer.close();
    }
    expect(d).toBeGreaterThan(N * 0.9);
    expect(hist(events)).toEqual({ [`address/${inode}`]: d });
    expectOwner(events, pid, 'rxt-late-ns');
    expect(new Set(events.map((e) => e.socket!.netns))).toEqual(new Set([netns]));
    log('late netns', hist(events));
  });

  it("sock_rcvqueue_full (ICMP ping socket in a netns): the socket whose drops rose, match 'drops'", async () => {
    // sock_rcvqueue_full has no address: the only evidence is whose `drops` rose in the event's
    // window. Another test's ping socket dropping at the same moment (live tests of other files
    // may run concurrently) makes our events honestly `ambiguous` with that foreign socket among
    // the candidates: then the attempt is repeated. Ambiguity among our own two sockets, or any
    // event naming a wrong socket, fails at once.
    await withNetns('attr-ping', (ns) =>
      withSysctl(
        'net/ipv4/ping_group_range',
        '0 0',
        async () => {
          const attempts: unknown[] = [];
          for (let attempt = 1; ; attempt++) {
            const ping = await startPingSink({ bind: '127.0.0.1', netns: ns, comm: 'rxt-pinger' });
            let late: PingSink | undefined;
            try {
              const nsInode = netnsOf(ping.pid);
              const before = icmpDrops(ping);
              const after = [0, 0];
              const run = await traced({ events: ['sock:sock_rcvqueue_full'], only: true, resolve: true }, async (events) => {
                await ping.sendEchoes(1000);
                after[0] = await settled(() => icmpDrops(ping));
                // the first flood is attributed (a table read follows it) before the second starts
                await pollUntil(() => events.filter((e) => e.socket?.inode === ping.inode || e.candidates?.includes(ping.inode)).length, (n) => n >= after[0] - before, 5000);
                // a second ping socket, opened after the tracer, dropping later
                late = await startPingSink({ bind: '::1', netns: ns, comm: 'rxt-pinger6' });
                await late.sendEchoes(1000);
                after[1] = await settled(() => icmpDrops(late!));
              });
              const mine = new Set([ping.inode, late!.inode]);
              const ours = (inode: number) => run.events.filter((e) => e.socket?.inode === inode || (e.candidates ?? []).includes(inode));
              const foreign = [...ours(ping.inode), ...ours(late!.inode)].filter((e) => e.match === 'ambiguous' && e.candidates!.some((c) => !mine.has(c)));
              attempts.push({ attempt, foreignAmbiguous: foreign.length, sample: foreign[0]?.candidates });
              if (foreign.length > 0 && attempt < 3) {
                log('rcvqueue_full: another socket dropped in the same windows, again', attempts);
                continue;
              }
              expect(run.lost).toBe(0);
              const d = [after[0] - before, after[1]];
              expect(d[0]).toBeGreaterThan(900);
              expect(d[1]).toBeGreaterThan(900);
              expect(hist(ours(ping.inode))).toEqual({ [`drops/${ping.inode}`]: d[0] });
              expect(hist(ours(late!.inode))).toEqual({ [`drops/${late!.inode}`]: d[1] });
              expectOwner(ours(ping.inode), ping.pid, 'rxt-pinger');
              expectOwner(ours(late!.inode), late!.pid, 'rxt-pinger6');
              expect(ours(ping.inode)[0].socket).toMatchObject({ table: 'icmp', netns: nsInode });
              expect(ours(late!.inode)[0].socket).toMatchObject({ table: 'icmp6', netns: nsInode });
              log('rcvqueue_full', {
                attempts,
                total: run.events.length,
                icmp: { events: ours(ping.inode).length, drops: d[0] },
                icmp6: { events: ours(late!.inode).length, drops: d[1] },
                other: hist(run.events.filter((e) => e.socket?.inode !== ping.inode && e.socket?.inode !== late!.inode)),
              });
              return;
            } finally {
              await ping.stop();
              await late?.stop();
            }
          }
        },
        { netns: ns },
      ),
    );
  });

  it("sock_exceed_buf_limit: match 'global' with udp_mem and sockstat (udp_mem squeezed, then restored)", async () => {
    const orig = await readSysctl('net/ipv4/udp_mem');
    const sinks: Sink[] = [];
    for (let i = 0; i < 6; i++) sinks.push(await startSink({ bind: '127.0.0.1:0', rcvbuf: 4 << 20 }));
    // the tracer opens first: udp_mem is squeezed (system-wide) only while the flood runs, and
    // until the first UDP events have come out. The figures are read when a batch is attributed
    // (at most every 100 ms), so events that come out after the restore rightly show the restored
    // udp_mem: the test checks the ones emitted while squeezed (under TCG that can be a while).
    let whileSqueezed = 0;
    const run = await traced({ events: ['sock:sock_exceed_buf_limit'], only: true, resolve: true }, (events) =>
      withSysctl('net/ipv4/udp_mem', '2 2 2', async () => {
        await Promise.all(sinks.map((s) => send({ to: addrPort('127.0.0.1', s.port), count: 2500, size: 1400 })));
        await pollUntil(() => events.filter((e) => e.fields.name === 'UDP').length, (n) => n > 0, 10_000 * TIME_SCALE, 50);
        whileSqueezed = events.length;
      }),
    );
    expect(await readSysctl('net/ipv4/udp_mem')).toBe(orig);
    const udp = run.events.filter((e) => e.fields.name === 'UDP');
    expect(udp.length).toBeGreaterThan(0);
    expect(hist(udp)).toEqual({ 'global/null': udp.length });
    const squeezed = run.events.slice(0, whileSqueezed).filter((e) => e.fields.name === 'UDP');
    expect(squeezed.length).toBeGreaterThan(0);
    for (const e of squeezed.slice(0, 100)) {
      expect(e.socket).toBeNull();
      expect(e.global).toMatchObject({ udp_mem: [2, 2, 2], proto: 'UDP' });
      const ss = (e.global as { sockstat: { UDP: Record<string, number> | null } }).sockstat.UDP;
      expect(ss).toMatchObject({ inuse: expect.any(Number), mem: expect.any(Number) });
    }
    // nothing traced here ever claims a socket
    expect(run.events.every((e) => e.match === 'global' && e.socket === null)).toBe(true);
    log('exceed_buf_limit', { udpEvents: udp.length, all: run.events.length, sockstat: (udp[0].global as { sockstat: unknown }).sockstat });
  });

  itOnKernel("skb:kfree_skb rx_sk: with kptr_restrict=1 SOCKET_RCVBUFF drops match 'pointer' on the right inode; with 0 'drops'/'learned' on it or ambiguous", K.need.rxSk, async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-kfree' });
    let ptr: string | undefined;
    // scoped in the kernel to this socket's rx_sk (read below, while pointers are real), so that
    // concurrent floods elsewhere neither fill the rings nor mix in
    const opts = (): TracerOptions => ({ events: ['skb:kfree_skb'], only: true, reasons: ['SOCKET_RCVBUFF'], filter: `rx_sk == 0x${ptr}`, resolve: true });
    const flood = async () => {
      await send({ to: addrPort('127.0.0.1', sink.port), count: N });
      return settled(() => udpDrops(sink));
    };
    // kptr_restrict=1: the pointer column is the real sk address, equal to rx_sk
    let d1 = 0;
    let run1: Traced | undefined;
    await withSysctl('kernel/kptr_restrict', '1', async () => {
      ptr = udpPointer(sink.inode);
      expect(ptr).toMatch(/^ffff[0-9a-f]{12}$/);
      const before = udpDrops(sink);
      run1 = await traced(opts(), async () => {
        d1 = (await flood()) - before;
      });
    });
    expect(await readSysctl('kernel/kptr_restrict')).toBe(kptrAtStart);
    expect(ptr).toMatch(/^ffff[0-9a-f]{12}$/);
    const mine1 = run1!.events;
    expect(mine1.every((e) => normPtr(e.fields.rx_sk) === ptr)).toBe(true);
    expect(run1!.lost).toBe(0);
    expect(d1).toBeGreaterThan(N * 0.9);
    expect(hist(mine1)).toEqual({ [`pointer/${sink.inode}`]: d1 });
    expectOwner(mine1, sink.pid, 'rxt-kfree');
    expect(mine1.every((e) => e.fields.reason === 'SOCKET_RCVBUFF')).toBe(true);

    // kptr_restrict=0 (the default here): pointers are hashed, so never `pointer`
    const before2 = udpDrops(sink);
    let d2 = 0;
    let run2: Traced | undefined;
    await withSysctl('kernel/kptr_restrict', '0', async () => {
      run2 = await traced(opts(), async () => {
        d2 = (await flood()) - before2;
      });
      expect(await readSysctl('kernel/kptr_restrict')).toBe('0'); // the product did not touch it
    });
    const mine2 = run2!.events.filter((e) => normPtr(e.fields.rx_sk) === ptr);
    expect(run2!.lost).toBe(0);
    expect(mine2.length).toBe(d2);
    expect(d2).toBeGreaterThan(N * 0.9);
    // Hashed pointers: no `pointer` match. Without udp events there is no pair either; the drops
    // strategy (only our socket's counter rose) and then the rx_sk it learned name our socket, or
    // it says ambiguous (others' floods at the same time), never another socket.
    for (const e of run2!.events) {
      if (e.match === 'ambiguous') expect(e.candidates).toContain(sink.inode);
      else {
        expect(['drops', 'learned']).toContain(e.match);
        expect(e.socket?.inode).toBe(sink.inode);
      }
    }
    log('kfree_skb', { kptr1: { events: mine1.length, drops: d1, all: run1!.events.length }, kptr0: { events: mine2.length, drops: d2, all: run2!.events.length } });
  });

});
