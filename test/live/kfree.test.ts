// Issue 13 §1, live: with kernel.kptr_restrict left at its default (0, pointers hashed), every
// skb:kfree_skb drop of a UDP socket still lands on that socket: `paired` with the udp event of
// the same packet on the same CPU, and `--port` keeps them. The kernel's own per-socket `drops`
// counter is the reference. Other engineers' floods may run at the same time: --port scopes the
// output to our sink, and nothing outside it is counted.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { assertBuilt, startCli, stopAllCli } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { udpSocketDrops, settledSinkUdpDrops as settledUdpDrops, sinkUdpDrops as udpDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink, stopAllRxflood, type Sink } from '../helpers/rxflood.js';
import { readSysctl, withSysctl } from '../helpers/sysctl.js';
import { kernelLayout } from '../helpers/kernel.js';
import { openTracer } from '../../src/tracer.js';
import type { DropEvent } from '../../src/decode/events.js';
import { parseFormat } from '../../src/format/parse.js';
import { withTracefs } from '../../src/tracefs/locate.js';

const N = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Json = Record<string, any>;


describeLive('kfree_skb on its socket without real pointers', () => {
  let kptrAtStart = '';
  let udpFields: string[] = [];
  let kfreeFields: string[] = [];
  beforeAll(async () => {
    assertBuilt();
    kptrAtStart = await readSysctl('kernel/kptr_restrict');
    // The layout, through the product's own parser: it says which event of a pair comes first.
    [udpFields, kfreeFields] = await withTracefs({ notice: () => {} }, (root) =>
      ['udp/udp_fail_queue_rcv_skb', 'skb/kfree_skb'].map((e) => parseFormat(readFileSync(`${root}/events/${e}/format`, 'utf8'), e.split('/')[0]).fields.map((f) => f.name)),
    );
  });
  afterEach(async () => {
    await stopAllCli();
    await stopAllRxflood();
  });
  afterAll(async () => {
    expect(await readSysctl('kernel/kptr_restrict')).toBe(kptrAtStart);
  });

  for (const host of ['127.0.0.1', '::1']) {
    it(`-e skb:kfree_skb --reason SOCKET_RCVBUFF --port P (${host}), kptr_restrict as found: every kfree event of our socket is kept, on our socket`, async () => {
      if (kptrAtStart !== '0') console.warn(`[kfree] kernel.kptr_restrict is ${kptrAtStart}, not the default 0: pointers may be real here`);
      const sink = await startSink({ bind: addrPort(host, 0), rcvbuf: 1, comm: 'rxt-kfree' });
      const cli = startCli(['trace', '-e', 'skb:kfree_skb', '--reason', 'SOCKET_RCVBUFF', '--port', String(sink.port), '--ring-pages', '1024']);
      await cli.waitForPerfFds(1);
      await sleep(300);
      const before = udpDrops(sink);
      await send({ to: addrPort(host, sink.port), count: N });
      const delta = (await settledUdpDrops(sink, before + N * 0.9)) - before;
      await sleep(500);
      cli.signal('SIGINT');
      const r = await cli.exited;
      expect(r.code, r.stderr).toBe(0);
      const recs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
      expect(recs.filter((e) => e.event === 'lost')).toEqual([]);
      const kfree = recs.filter((e) => e.event === 'skb:kfree_skb');
      const udp = recs.filter((e) => e.event === 'udp:udp_fail_queue_rcv_skb');
      const hist: Record<string, number> = {};
      for (const e of kfree) hist[`${e.match}/${e.socket?.inode ?? null}`] = (hist[`${e.match}/${e.socket?.inode ?? null}`] ?? 0) + 1;
      console.log(`[kfree] ${host} port ${sink.port}: drops Δ ${delta}, udp events ${udp.length}, kfree events ${kfree.length} ${JSON.stringify(hist)}`);
      expect(delta).toBeGreaterThan(N * 0.9);
      // Never a wrong socket: whatever --port kept is ours.
      for (const e of kfree) {
        expect(e.socket?.inode).toBe(sink.inode);
        expect(e.fields.reason).toBe('SOCKET_RCVBUFF');
        expect(e.socket.owners).toContainEqual(expect.objectContaining({ pid: sink.pid, comm: 'rxt-kfree' }));
      }
      const k = await kernelLayout();
      const udpFirst = udpFields.includes('dport'); // 6.10+: the udp event fires before the free
      if (host === '::1' && !k.udp6Event) {
        // k.need.udp6Event.why: no udp event to pair with; only whose drops rose names the socket.
        expect(udp, k.need.udp6Event.why).toEqual([]);
        expect(kfree.length).toBe(delta);
        expect(new Set(kfree.map((e) => e.match))).toEqual(new Set(['drops']));
      } else expect(udp.length).toBe(delta);
      if (udp.length === delta && udpFirst) {
        // 6.10+: the udp event, then its kfree_skb right after it on the same CPU: all paired.
        expect(kfree.length).toBe(delta);
        expect(hist).toEqual({ [`paired/${sink.inode}`]: delta });
      } else if (udp.length === delta) {
        // Before 6.10 the kfree_skb comes first; one that ends a batch meets its udp event only in
        // the next, after it went out: those few fall back to `drops`. Never another socket.
        expect(kfree.length).toBe(delta);
        expect(hist[`paired/${sink.inode}`]).toBeGreaterThanOrEqual(delta * 0.9);
      }
    });
  }

  it('udp_mem squeeze: PROTO_MEM kfree_skb drops (no udp event on 6.11+) land on our socket through the rx_sk its paired drops taught', async () => {
    // A receiver we can drain and grow: SOCKET_RCVBUFF drops first (paired: rx_sk learned), then
    // it empties its queue and takes a 4 MB buffer, and under udp_mem "2 2 2" it drops for
    // protocol memory. Before 6.11 there is no rx_sk; the udp event fires for PROTO_MEM there
    // (measured on 6.1), so those are paired instead.
    const py = spawn('python3', ['-u', '-c', `
import socket, os, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 1)  # SO_RCVBUFFORCE: the minimum
s.bind(('127.0.0.1', 0))
print('READY', s.getsockname()[1], os.fstat(s.fileno()).st_ino, flush=True)
for line in sys.stdin:
    if line.strip() == 'drain':
        s.setblocking(False)
        try:
            while True: s.recv(65536)
        except BlockingIOError: pass
        s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)
        print('DRAINED', flush=True)
`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: py.stdout! })[Symbol.asyncIterator]();
    const next = async (prefix: string) => {
      for (;;) {
        const r = await lines.next();
        if (r.done) throw new Error(`receiver exited before ${prefix}`);
        if (r.value.startsWith(prefix)) return r.value.split(' ');
      }
    };
    try {
      const [, portText, inodeText] = await next('READY');
      const port = Number(portText);
      const inode = Number(inodeText);
      const drops = () => udpSocketDrops(inode)?.drops ?? 0;
      const tracer = await openTracer({ events: ['skb:kfree_skb'], reasons: ['SOCKET_RCVBUFF', 'PROTO_MEM'], port, notice: () => undefined });
      const events: DropEvent[] = [];
      let lost = 0;
      tracer.on('drop', (e) => events.push(e));
      tracer.on('lost', (l) => (lost += l.lost));
      const d0 = drops();
      let d1 = 0;
      let d2 = 0;
      const origUdpMem = await readSysctl('net/ipv4/udp_mem');
      try {
        await send({ to: addrPort('127.0.0.1', port), count: 500 });
        await sleep(300);
        d1 = drops();
        py.stdin!.write('drain\n');
        await next('DRAINED');
        await withSysctl('net/ipv4/udp_mem', '2 2 2', async () => {
          await send({ to: addrPort('127.0.0.1', port), count: 3000, size: 1400 });
          await sleep(300);
        });
        d2 = drops();
        await sleep(300);
      } finally {
        await tracer.close();
      }
      expect(await readSysctl('net/ipv4/udp_mem')).toBe(origUdpMem);
      const kfree = events.filter((e) => e.event === 'skb:kfree_skb');
      const udp = events.filter((e) => e.event === 'udp:udp_fail_queue_rcv_skb');
      const h: Record<string, number> = {};
      for (const e of kfree) h[`${e.fields.reason}/${e.match}/${e.socket?.inode ?? null}`] = (h[`${e.fields.reason}/${e.match}/${e.socket?.inode ?? null}`] ?? 0) + 1;
      console.log(`[kfree] udp_mem squeeze port ${port}: drops rcvbuf phase ${d1 - d0}, udp_mem phase ${d2 - d1}, udp events ${udp.length}, kfree ${JSON.stringify(h)}, lost ${lost}`);
      expect(lost).toBe(0);
      expect(d1 - d0).toBeGreaterThan(400);
      expect(d2 - d1, 'the squeeze made protocol-memory drops').toBeGreaterThan(100);
      // --port kept only events on our socket; none on another.
      for (const e of kfree) expect(e.socket?.inode).toBe(inode);
      const protoMem = kfree.filter((e) => e.fields.reason === 'PROTO_MEM');
      if (kfreeFields.includes('rx_sk')) {
        // 6.11+: every drop of ours is there, PROTO_MEM ones through the learned rx_sk.
        expect(kfree.length).toBe(d2 - d0);
        expect(protoMem.length).toBeGreaterThan(100);
        expect(new Set(protoMem.map((e) => e.match))).toEqual(new Set(['learned']));
      } else {
        // Before 6.11 the layout has no rx_sk: only pairs (or drops) can name the socket.
        expect(kfree.every((e) => e.match === 'paired' || e.match === 'drops')).toBe(true);
        expect(kfree.length).toBeGreaterThanOrEqual(Math.floor(udp.length * 0.9));
      }
    } finally {
      py.stdin!.end();
      py.kill();
    }
  });

  it('IPv6 [::1] drops with the default events: the udp event on 6.5+; before 6.5 kfree_skb filtered to IPv6, said once, each drop on our socket', async () => {
    const k = await kernelLayout();
    const sink = await startSink({ bind: addrPort('::1', 0), rcvbuf: 1, comm: 'rxt-udp6' });
    const cli = startCli(['trace', '--port', String(sink.port), '--ring-pages', '1024']);
    await cli.waitForPerfFds(1);
    await sleep(300);
    const before = udpDrops(sink);
    await send({ to: addrPort('::1', sink.port), count: N });
    const delta = (await settledUdpDrops(sink, before + N * 0.9)) - before;
    await sleep(500);
    cli.signal('SIGINT');
    const r = await cli.exited;
    expect(r.code, r.stderr).toBe(0);
    const recs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
    const udp = recs.filter((e) => e.event === 'udp:udp_fail_queue_rcv_skb');
    const kfree = recs.filter((e) => e.event === 'skb:kfree_skb');
    const notices = r.stderr.split('\n').filter((l) => /for IPv6 UDP drops/.test(l));
    console.log(`[kfree] IPv6 default events on Linux ${k.release} (udp6 event: ${k.udp6Event}): drops Δ ${delta}, udp events ${udp.length}, kfree ${kfree.length}, notices ${notices.length}`);
    expect(delta).toBeGreaterThan(N * 0.9);
    expect(recs.filter((e) => e.event === 'lost')).toEqual([]);
    if (k.udp6Event) {
      expect(udp.length).toBe(delta);
      expect(udp.every((e) => e.socket?.inode === sink.inode)).toBe(true);
      expect(kfree).toEqual([]);
      expect(notices).toEqual([]);
    } else {
      // k.need.udp6Event.why: the kernel fires nothing for IPv6 UDP drops; kfree_skb stands in.
      expect(udp, k.need.udp6Event.why).toEqual([]);
      expect(notices).toHaveLength(1);
      expect(kfree.length).toBe(delta);
      for (const e of kfree) {
        expect(e.fields.protocol).toBe(34525);
        expect(e.fields.reason).toBe('SOCKET_RCVBUFF');
        expect(e.match).toBe('drops');
        expect(e.socket.inode).toBe(sink.inode);
        expect(e.socket.owners).toContainEqual(expect.objectContaining({ pid: sink.pid, comm: 'rxt-udp6' }));
      }
    }
  });
});
