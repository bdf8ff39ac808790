// Proves that each drop maker really makes drops on this kernel, judged only by the kernel's own
// counters (test/helpers/procnet-read.ts), never by the product. Other live tests rely on these.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, afterEach, expect, it } from 'vitest';
import { describeLive } from '../helpers/live.js';
import { leftoverNetns, setupMulticastLo, withNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { icmpSocketDrops, pollUntil, snmp6Counter, snmpCounter, udpSocketDrops } from '../helpers/procnet-read.js';
import {
  addrPort,
  pingSend,
  runningRxflood,
  rxfloodPath,
  send,
  startPingSink,
  startSink,
  stopAllRxflood,
  type Sink,
} from '../helpers/rxflood.js';
import { readSysctl, withSysctl } from '../helpers/sysctl.js';

const N = 20_000;

/** drops of a sink once the counter has settled at ≥ 90 % of `expected` (or after 3 s) */
async function settledDrops(sink: Sink, expected: number): Promise<number> {
  const pid = sink.netns ? sink.pid : undefined;
  const row = await pollUntil(() => udpSocketDrops(sink.inode, pid), (r) => !!r && r.drops >= expected * 0.9);
  expect(row, `socket inode ${sink.inode} in /proc/net/udp*`).toBeDefined();
  return row!.drops;
}

function expectAbout(drops: number, n: number) {
  expect(drops).toBeGreaterThanOrEqual(n * 0.9);
  expect(drops).toBeLessThanOrEqual(n);
}

/** ping_group_range "0 0" inside ns, so root (gid 0) may open ping sockets there */
const withPing = <T>(ns: string, fn: () => Promise<T>) =>
  withSysctl('net/ipv4/ping_group_range', '0 0', fn, { netns: ns });

describeLive('drop makers (rxflood + ground-truth readers)', () => {
  afterEach(async () => {
    await stopAllRxflood();
  });

  afterAll(() => {
    expect(runningRxflood()).toEqual([]);
    expect(leftoverNetns()).toEqual([]);
  });

  it('UDP flood to a 1-byte-rcvbuf 127.0.0.1 sink drops ≈ N−1', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const before = snmpCounter('Udp', 'RcvbufErrors');
    const res = await send({ to: addrPort('127.0.0.1', sink.port), count: N });
    expect(res.sent).toBe(N);
    expect(res.rate).toBeGreaterThan(0);
    const drops = await settledDrops(sink, N);
    expectAbout(drops, N);
    // the global counter moved at least as much (other traffic may add to it, never subtract)
    expect(snmpCounter('Udp', 'RcvbufErrors') - before).toBeGreaterThanOrEqual(drops);
    await sink.stop();
    expect(udpSocketDrops(sink.inode)).toBeUndefined();
  });

  it('same for [::1]', async () => {
    const port = await freePort('udp6');
    const sink = await startSink({ bind: addrPort('::1', port), rcvbuf: 1 });
    expect(sink.port).toBe(port);
    const before = snmp6Counter('Udp6RcvbufErrors');
    await send({ to: addrPort('::1', port), count: N });
    expectAbout(await settledDrops(sink, N), N);
    expect(snmp6Counter('Udp6RcvbufErrors') - before).toBeGreaterThanOrEqual(N * 0.9);
  });

  it('dual-stack [::] v6only=0 socket drops IPv4 datagrams and sits in udp6', async () => {
    const sink = await startSink({ bind: '[::]:0', rcvbuf: 1, v6only: false });
    await send({ to: addrPort('127.0.0.1', sink.port), count: N });
    expectAbout(await settledDrops(sink, N), N);
    expect(udpSocketDrops(sink.inode)!.table).toBe('udp6');
  });

  it('SO_REUSEPORT: two sinks on one port, one sender: the drops land on exactly one', async () => {
    const a = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, reuseport: true });
    const b = await startSink({ bind: addrPort('127.0.0.1', a.port), rcvbuf: 1, reuseport: true });
    expect(b.port).toBe(a.port);
    await send({ to: addrPort('127.0.0.1', a.port), count: N });
    await pollUntil(
      () => udpSocketDrops(a.inode)!.drops + udpSocketDrops(b.inode)!.drops,
      (d) => d >= N * 0.9,
    );
    const drops = [udpSocketDrops(a.inode)!.drops, udpSocketDrops(b.inode)!.drops].sort((x, y) => x - y);
    expect(drops[0]).toBe(0);
    expectAbout(drops[1], N);
  });

  it('multicast in a netns: of two members of 239.1.1.1, only the one that never reads drops', async () => {
    await withNetns('mcast', async (ns) => {
      await setupMulticastLo(ns);
      const port = await freePort();
      const common = { bind: addrPort('0.0.0.0', port), reuseaddr: true, join: '239.1.1.1@127.0.0.1', netns: ns };
      const idle = await startSink({ ...common, rcvbuf: 1, comm: 'mc-idle' });
      const reader = await startSink({ ...common, rcvbuf: 8 << 20, drain: true, comm: 'mc-reader' });
      try {
        const n = 2000;
        const res = await send({ to: addrPort('239.1.1.1', port), count: n, mcastIf: '127.0.0.1', netns: ns });
        expect(res.sent).toBe(n);
        expectAbout(await settledDrops(idle, n), n);
        expect(udpSocketDrops(reader.inode, reader.pid)!.drops).toBe(0);
        // the draining member emptied its queue
        const rq = await pollUntil(() => udpSocketDrops(reader.inode, reader.pid)!.rx_queue, (q) => q === 0);
        expect(rq).toBe(0);
        // invisible from the root netns
        expect(udpSocketDrops(idle.inode)).toBeUndefined();
      } finally {
        await idle.stop();
        await reader.stop();
      }
    });
  });

  it('ping sink: echo requests from its own unread socket are answered and dropped (IPv4 and IPv6)', async () => {
    await withNetns('ping-self', (ns) =>
      withPing(ns, async () => {
        for (const bind of ['127.0.0.1', '::1']) {
          const n = 1000;
          const sink = await startPingSink({ bind, send: n, netns: ns });
          try {
            expect(sink.initial!.sent).toBe(n);
            const row = await pollUntil(() => icmpSocketDrops(sink.inode, sink.pid), (r) => !!r && r.drops >= n * 0.9);
            expect(row!.table).toBe(bind === '::1' ? 'icmp6' : 'icmp');
            expect(row!.localPort).toBe(sink.ident);
            expectAbout(row!.drops, n);
            // and again on demand, through stdin
            const more = await sink.sendEchoes(n);
            expect(more.sent).toBe(n);
            const row2 = await pollUntil(() => icmpSocketDrops(sink.inode, sink.pid)!, (r) => r.drops >= row!.drops + n * 0.9);
            expectAbout(row2.drops - row!.drops, n);
          } finally {
            await sink.stop();
          }
        }
      }),
    );
  });

  it('ping sink: echo replies aimed at its ident from another process (ping-send --id) are dropped', async () => {
    await withNetns('ping-id', (ns) =>
      withPing(ns, async () => {
        for (const [bind, to] of [['127.0.0.1', '127.0.0.1'], ['::', '::1']]) {
          const sink = await startPingSink({ bind, netns: ns });
          try {
            const n = 2000;
            const res = await pingSend({ to, count: n, id: sink.ident, netns: ns });
            expect(res.sent).toBe(n);
            const row = await pollUntil(() => icmpSocketDrops(sink.inode, sink.pid)!, (r) => r.drops >= n * 0.9);
            expectAbout(row.drops, n);
          } finally {
            await sink.stop();
          }
        }
      }),
    );
  });

  it('ping sink: a clear EACCES (exit 3) when ping_group_range excludes us, and the sysctl is restored', async () => {
    await withNetns('ping-eacces', async (ns) => {
      const orig = await readSysctl('net/ipv4/ping_group_range', { netns: ns });
      await expect(startPingSink({ netns: ns })).rejects.toThrow(/code 3.*EACCES.*ping_group_range/s);
      await expect(withPing(ns, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      expect(await readSysctl('net/ipv4/ping_group_range', { netns: ns })).toBe(orig);
    });
  });

  it('--comm names the process, in the root netns and inside a netns', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', comm: 'rxt-feed' });
    expect(readFileSync(`/proc/${sink.pid}/comm`, 'utf8').trim()).toBe('rxt-feed');
    // and it owns the socket whose inode READY reported
    const fds = readdirSync(`/proc/${sink.pid}/fd`).map((fd) => readlinkSync(`/proc/${sink.pid}/fd/${fd}`));
    expect(fds).toContain(`socket:[${sink.inode}]`);
    await withNetns('comm', (ns) =>
      withPing(ns, async () => {
        const s2 = await startSink({ bind: '127.0.0.1:0', comm: 'rxt-in-ns', netns: ns });
        const p = await startPingSink({ comm: 'rxt-pinger', netns: ns });
        try {
          expect(readFileSync(`/proc/${s2.pid}/comm`, 'utf8').trim()).toBe('rxt-in-ns');
          expect(readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim()).toBe('rxt-pinger');
        } finally {
          await s2.stop();
          await p.stop();
        }
      }),
    );
  });

  it('a sink exits by itself when its stdin closes; stop() is idempotent', async () => {
    const child = spawn(rxfloodPath(), ['sink', '--bind', '127.0.0.1:0'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const [first] = (await once(child.stdout!, 'data')) as [Buffer];
    expect(first.toString()).toMatch(/^READY \d+ \d+\n$/);
    const exited = once(child, 'exit');
    child.stdin!.end();
    expect(await exited).toEqual([0, null]);

    const sink = await startSink({ bind: '127.0.0.1:0' });
    expect(runningRxflood()).toContain(sink.pid);
    await sink.stop();
    await sink.stop();
    expect(runningRxflood()).not.toContain(sink.pid);
  });
});
