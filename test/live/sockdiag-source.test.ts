// Issue 11, live: the sock_diag source against the kernel's own /proc tables. A sink's drops,
// inode, uid and queue come out the same as /proc/net/udp says; a socket in another netns is
// reached through setns() on a native thread; the per-netns netlink sockets close on forget/close.
import { readlinkSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { AF_INET, AF_INET6, IPPROTO_RAW, IPPROTO_TCP, IPPROTO_UDP } from '../../src/sockdiag/encode.js';
import { SockDiagSource } from '../../src/sockdiag/source.js';
import { describeLive } from '../helpers/live.js';
import { withNetns } from '../helpers/netns.js';
import { settledUdpSocketDrops, udpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';
import { createServer } from 'node:net';
import { readSockets } from '../../src/sockets.js';
import { socketSourceCheck } from '../../src/doctor/socket-source.js';
import { createSocket } from 'node:dgram';

const netnsOf = (pid: number | 'self'): number => Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`))![1]);
const self = () => ({ inode: netnsOf('self'), pids: [], self: true });

afterEach(async () => {
  await stopAllRxflood();
});

describeLive('sock_diag source', () => {
  it('finds one UDP socket by local port, with the drops /proc/net/udp shows', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const src = SockDiagSource.open();
    try {
      await send({ to: addrPort('127.0.0.1', sink.port), count: 500 });
      const procDrops = await settledUdpSocketDrops(sink.inode);
      expect(procDrops).toBeGreaterThan(100);
      const [v4, v6] = await src.query(self(), [
        { family: AF_INET, protocol: IPPROTO_UDP, localPorts: [sink.port] },
        { family: AF_INET6, protocol: IPPROTO_UDP, localPorts: [sink.port] },
      ]);
      expect(v6).toEqual([]);
      expect(v4).toHaveLength(1);
      const row = udpSocketDrops(sink.inode)!;
      expect(v4[0]).toMatchObject({ inode: sink.inode, local: { addr: '127.0.0.1', port: sink.port }, uid: process.getuid!(), rqueue: row.rx_queue });
      expect(v4[0].mem?.drops).toBe(procDrops);
      expect(src.stats.fullDumps).toBe(0);
    } finally {
      src.close();
      await sink.stop();
    }
  });

  it('reaches a socket in another netns, and closes that netns socket on forget', async () => {
    const src = SockDiagSource.open();
    try {
      await withNetns('diag-src', async (ns) => {
        const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, netns: ns });
        try {
          const inode = netnsOf(sink.pid);
          expect(inode).not.toBe(netnsOf('self'));
          const [inNs] = await src.query({ inode, pids: [sink.pid] }, [{ family: AF_INET, protocol: IPPROTO_UDP, localPorts: [sink.port] }]);
          expect(inNs.map((s) => s.inode)).toEqual([sink.inode]);
          const [here] = await src.query(self(), [{ family: AF_INET, protocol: IPPROTO_UDP, localPorts: [sink.port] }]);
          expect(here.map((s) => s.inode)).not.toContain(sink.inode);
          expect(src.openCount()).toBe(2);
          src.forget(inode);
          expect(src.openCount()).toBe(1);
        } finally {
          await sink.stop();
        }
      });
      // No pid of the namespace left: a typed error, not an empty list.
      await expect(src.query({ inode: 1, pids: [2147483646] }, [{ family: AF_INET, protocol: IPPROTO_UDP }])).rejects.toMatchObject({ code: 'ESRCH' });
    } finally {
      src.close();
    }
    expect(src.openCount()).toBe(0);
  });

  it('lists raw sockets and a TCP listener (accept queue in rqueue, backlog in wqueue)', async () => {
    const src = SockDiagSource.open();
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', 7, r));
    const port = (srv.address() as { port: number }).port;
    try {
      const [tcp, raw] = await src.query(self(), [
        { family: AF_INET, protocol: IPPROTO_TCP, states: 1 << 10, localPorts: [port] },
        { family: AF_INET, protocol: IPPROTO_RAW },
      ]);
      expect(tcp).toHaveLength(1);
      expect(tcp[0]).toMatchObject({ state: 10, rqueue: 0, wqueue: 7, local: { addr: '127.0.0.1', port } });
      expect(Array.isArray(raw)).toBe(true);
    } finally {
      srv.close();
      src.close();
    }
  });

  it('readSockets(): sock_diag and /proc list the same sink (inode, address, drops, owner); withOwners false skips owners', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rx-diag-sock' });
    try {
      await send({ to: addrPort('127.0.0.1', sink.port), count: 300 });
      const drops = await settledUdpSocketDrops(sink.inode);
      const viaDiag = (await readSockets({ tables: ['udp'], source: 'sock_diag' })).find((r) => r.inode === sink.inode);
      const viaProc = (await readSockets({ tables: ['udp'], source: 'proc' })).find((r) => r.inode === sink.inode);
      const bare = (await readSockets({ tables: ['udp'], withOwners: false })).find((r) => r.inode === sink.inode);
      expect(viaDiag).toMatchObject({ local: `127.0.0.1:${sink.port}`, drops, owners: [{ pid: sink.pid, comm: 'rx-diag-sock' }] });
      expect(viaProc).toMatchObject({ local: viaDiag!.local, remote: viaDiag!.remote, drops, netns: viaDiag!.netns, uid: viaDiag!.uid, owners: viaDiag!.owners });
      expect(bare).toMatchObject({ local: viaDiag!.local, drops, owners: [] });
    } finally {
      await sink.stop();
    }
  });

  it('doctor names the source of each table, and RXTRACE_SOCKET_SOURCE=proc moves every table to /proc', async () => {
    const auto = await socketSourceCheck();
    expect(auto).toMatchObject({ status: 'ok', data: { tables: { udp: 'sock_diag', udp6: 'sock_diag', raw: 'sock_diag', icmp: 'proc', icmp6: 'proc' } } });
    process.env.RXTRACE_SOCKET_SOURCE = 'proc';
    try {
      const forced = await socketSourceCheck();
      expect(forced).toMatchObject({ status: 'ok', data: { tables: { udp: 'proc', udp6: 'proc', raw: 'proc', raw6: 'proc' } } });
      expect(forced.detail).toMatch(/RXTRACE_SOCKET_SOURCE=proc/);
      process.env.RXTRACE_SOCKET_SOURCE = 'nonsense';
      expect(await socketSourceCheck()).toMatchObject({ status: 'fail', code: 'EUSAGE' });
    } finally {
      delete process.env.RXTRACE_SOCKET_SOURCE;
    }
  });

  it('queries at once: on one namespace they take turns and each gets its own reply; on three namespaces they overlap; forget and close wait for them', async () => {
    const src = SockDiagSource.open();
    try {
      await withNetns('diag-par-a', (a) =>
        withNetns('diag-par-b', async (b) => {
          const sinks = [await startSink({ bind: '127.0.0.1:0', netns: a }), await startSink({ bind: '127.0.0.1:0', netns: b }), await startSink({ bind: '127.0.0.1:0' })];
          try {
            const refs = [
              { inode: netnsOf(sinks[0].pid), pids: [sinks[0].pid] },
              { inode: netnsOf(sinks[1].pid), pids: [sinks[1].pid] },
              self(),
            ];
            // 3 namespaces × 4 queries each, all in flight together; every reply is its own socket's.
            const jobs = refs.flatMap((ref, i) =>
              [0, 1, 2, 3].map(async () => {
                const [l] = await src.query(ref, [{ family: AF_INET, protocol: IPPROTO_UDP, localPorts: [sinks[i].port] }]);
                return l.map((x) => x.inode);
              }),
            );
            const got = await Promise.all(jobs);
            got.forEach((inodes, j) => expect(inodes).toEqual([sinks[Math.floor(j / 4)].inode]));
            expect(src.openCount()).toBe(3);
            // forget() while a query on that namespace runs: the query settles (a reply or EBADF), nothing hangs.
            const inFlight = src.query(refs[0], [{ family: AF_INET, protocol: IPPROTO_UDP }]).then(
              (r) => r[0].length,
              (e: { code?: string }) => e.code,
            );
            src.forget(refs[0].inode);
            const settled = await inFlight;
            expect(typeof settled === 'number' || settled === 'EBADF').toBe(true);
            expect(src.openCount()).toBeLessThanOrEqual(3);
          } finally {
            for (const k of sinks) await k.stop();
          }
        }),
      );
    } finally {
      src.close();
    }
    expect(src.openCount()).toBe(0);
  });

  it('a closed source rejects with EBADF and holds no fd', async () => {
    const src = SockDiagSource.open();
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    await src.query(self(), [{ family: AF_INET, protocol: IPPROTO_UDP, localPorts: [s.address().port] }]);
    src.close();
    s.close();
    await expect(src.query(self(), [{ family: AF_INET, protocol: IPPROTO_UDP }])).rejects.toMatchObject({ code: 'EBADF' });
  });
});
