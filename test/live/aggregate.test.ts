// openTracer({ aggregate: true }): the reader thread counts identical drops instead of copying
// each one. Checked against the kernel's own per-socket `drops`: the counts must add up exactly,
// each aggregate must name the socket that dropped, and far fewer events must cross into JS.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openTracer, type DropEvent, type RxTracer } from '../../src/index.js';
import { describeLive } from '../helpers/live.js';
import { eventPort, kernelLayout, portFilter } from '../helpers/kernel.js';
import { settledUdpSocketDrops, udpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink, stopAllRxflood, type Sink } from '../helpers/rxflood.js';

/** What this kernel's tracepoints can show (lport before 6.10, dport after…). */
const K = await kernelLayout();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const UDP_ONLY = { events: ['udp:udp_fail_queue_rcv_skb'], only: true, notice: () => undefined };

const settledDrops = (s: Sink): Promise<number> => settledUdpSocketDrops(s.inode);

describeLive('aggregation in the reader thread (openTracer aggregate: true)', () => {
  let a: Sink;
  let b: Sink;
  const open: RxTracer[] = [];
  beforeAll(async () => {
    a = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-agg-a' });
    b = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-agg-b' });
  });
  afterAll(async () => {
    for (const t of open) await t.close();
    await stopAllRxflood();
  });

  it('two sockets dropping at once: counts add up to each socket\'s drops, every aggregate names its socket and owner', async () => {
    const t = await openTracer({ ...UDP_ONLY, filter: portFilter(K, [a.port, b.port]), aggregate: true });
    open.push(t);
    const events: DropEvent[] = [];
    let lost = 0;
    t.on('drop', (d) => events.push(d));
    t.on('lost', (l) => (lost += l.lost));
    const before = { a: udpSocketDrops(a.inode)!.drops, b: udpSocketDrops(b.inode)!.drops };
    await Promise.all([send({ to: addrPort('127.0.0.1', a.port), count: 200_000 }), send({ to: addrPort('127.0.0.1', b.port), count: 50_000 })]);
    const kernel = { a: (await settledDrops(a)) - before.a, b: (await settledDrops(b)) - before.b };
    await sleep(200);
    await t.close();
    const sum = (s: Sink) => events.filter((e) => e.socket?.inode === s.inode).reduce((n, e) => n + (e.count ?? 0), 0);
    console.log(`[aggregate] kernel a=${kernel.a} b=${kernel.b}; ${events.length} events, counts a=${sum(a)} b=${sum(b)}, lost ${lost}; native ${JSON.stringify(t.nativeStats())}`);
    // An event on neither sink (none, ambiguous, another socket) is shown whole if the sums miss.
    const strays = events.filter((e) => e.socket?.inode !== a.inode && e.socket?.inode !== b.inode).slice(0, 5);
    const why = `events on neither sink: ${JSON.stringify(strays.map((e) => ({ match: e.match, count: e.count, fields: e.fields, socket: e.socket?.inode, candidates: (e as { candidates?: unknown }).candidates })))}`;
    expect(lost).toBe(0);
    expect(sum(a), why).toBe(kernel.a);
    expect(sum(b), why).toBe(kernel.b);
    for (const e of events) {
      expect(e.match).toBe('address');
      expect(e.count).toBeGreaterThanOrEqual(1);
      expect(e.lastMonoNs).toBeGreaterThanOrEqual(e.monoNs);
      const s = e.socket!.inode === a.inode ? a : b;
      expect(e.socket!.inode).toBe(s.inode);
      expect(eventPort(K, e.fields)).toBe(s.port);
      expect(e.socket!.owners.map((o) => o.pid)).toEqual([s.pid]);
    }
    // The point of it: a storm of 250k drops is a few hundred events, not 250k.
    expect(events.length).toBeLessThan((kernel.a + kernel.b) / 20);
    expect(t.stats().events['udp:udp_fail_queue_rcv_skb']).toBe(kernel.a + kernel.b);
    expect(t.nativeStats().aggregated).toBe(kernel.a + kernel.b);
  });

  it('without aggregate, one event per drop and no count (the NDJSON contract is unchanged)', async () => {
    const t = await openTracer({ ...UDP_ONLY, port: a.port });
    open.push(t);
    const events: DropEvent[] = [];
    t.on('drop', (d) => events.push(d));
    const before = udpSocketDrops(a.inode)!.drops;
    await send({ to: addrPort('127.0.0.1', a.port), count: 2000 });
    const kernel = (await settledDrops(a)) - before;
    await sleep(100);
    await t.close();
    expect(events.length).toBe(kernel);
    for (const e of events) expect(e.count).toBeUndefined();
    expect(t.nativeStats().aggregated).toBe(0);
  });
});
