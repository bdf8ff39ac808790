// Issues 11 and 12, live: attribution with many idle sockets on the host (every drop on the right
// socket, and no whole-table read per event: the reads are counted), and a slowed-down rxtrace
// (pinned to one CPU with busy siblings) that still names the owner of a socket born mid-trace.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import type { DropEvent } from '../../src/decode/events.js';
import { openTracer } from '../../src/tracer.js';
import { startCli, stopAllCli, TIME_SCALE } from '../helpers/cli.js';
import { holdIdleSockets } from '../helpers/idle-sockets.js';
import { describeLive } from '../helpers/live.js';
import { freePort } from '../helpers/ports.js';
import { settledUdpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  await stopAllRxflood();
  await stopAllCli();
});

describeLive('attribution at scale (sock_diag)', () => {
  it('9,000 idle UDP sockets: every drop on the storm socket, and whole udp tables read once (at start) however many events', async () => {
    const idle = await holdIdleSockets(9000, { perProcess: 3000 });
    const port = await freePort();
    const sink = await startSink({ bind: `127.0.0.1:${port}`, rcvbuf: 1, comm: 'rxt-scale' });
    // No --port: the start-up read lists every UDP socket (whole), later reads only port P.
    const tracer = await openTracer({ events: ['udp:udp_fail_queue_rcv_skb'], notice: () => undefined });
    const events: DropEvent[] = [];
    tracer.on('drop', (e) => {
      if (e.socket?.inode === sink.inode || e.fields.dport === port || e.fields.lport === port) events.push(e);
    });
    try {
      const before = await settledUdpSocketDrops(sink.inode);
      for (let burst = 0; burst < 5; burst++) {
        await send({ to: addrPort('127.0.0.1', port), count: 800 });
        await sleep(100);
      }
      const drops = (await settledUdpSocketDrops(sink.inode)) - before;
      const deadline = Date.now() + 5000;
      while (events.length < drops && Date.now() < deadline) await sleep(50);
      await tracer.close();
      const s = tracer.stats();
      expect(drops).toBeGreaterThan(3000);
      expect(s.lost).toBe(0);
      expect(events.length).toBe(drops);
      const wrong = events.filter((e) => e.match !== 'address' || e.socket?.inode !== sink.inode || !e.socket.owners.some((o) => o.pid === sink.pid));
      expect(wrong.slice(0, 3)).toEqual([]);
      expect(s.attribution?.source.udp).toBe('sock_diag');
      // One whole read of each UDP table (the pinned start-up read); every later read is per port.
      expect(s.attribution?.wholeReads.udp).toBe(1);
      expect(s.attribution?.wholeReads.udp6).toBe(1);
    } finally {
      await tracer.close();
      await sink.stop();
      await idle.stop();
    }
  });

  it('issue 12: rxtrace pinned to one busy CPU still gives every drop of a socket born mid-trace its owner', async () => {
    const port = await freePort();
    const hogs: ChildProcess[] = [0, 1].map(() => spawn('taskset', ['-c', '0', 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' }));
    try {
      // The duration runs from when tracing starts; under emulation (TIME_SCALE) the socket, the
      // flood and the settling inside it take several times longer, as does the start-up.
      const cli = startCli(['trace', '--port', String(port), '--duration', String(8 * TIME_SCALE), '--format', 'ndjson']);
      // All of rxtrace's threads (JS, libuv pool, the reader) on CPU 0, beside two busy loops.
      execFileSync('taskset', ['-a', '-p', '-c', '0', String(cli.pid)], { stdio: 'ignore' });
      await cli.waitForPerfFds(1, 30_000 * TIME_SCALE, 300);
      const sink = await startSink({ bind: `127.0.0.1:${port}`, rcvbuf: 1, comm: 'rxt-slowown' });
      await send({ to: addrPort('127.0.0.1', port), count: 2000 });
      const drops = await settledUdpSocketDrops(sink.inode);
      const res = await cli.exited;
      await sink.stop();
      const evs = res.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as DropEvent & { event: string });
      const ours = evs.filter((e) => e.event === 'udp:udp_fail_queue_rcv_skb');
      expect(drops).toBeGreaterThan(1000);
      expect(ours.length).toBe(drops);
      const ownerless = ours.filter((e) => !e.socket?.owners.some((o) => o.pid === sink.pid && o.comm === 'rxt-slowown'));
      expect({ ownerless: ownerless.length, sample: ownerless[0] }).toEqual({ ownerless: 0, sample: undefined });
      expect(ours.every((e) => e.match === 'address' && e.socket?.inode === sink.inode)).toBe(true);
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
    }
  });
});
