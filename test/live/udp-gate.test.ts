// Issue 11, live: a namespace's UDP tables are asked again only when its UDP error counters
// moved (procnet/udp-gate.ts). Four namespaces hold a socket on the same 127.0.0.1:P, one of
// them drops: every event still lands on that one, and the three quiet namespaces are asked
// once, at start-up, however many reads the storm causes. stats/top/serve's SnapshotReader: a
// read after the drops asks only the namespace that dropped, and its row carries the kernel's count.
import { readlinkSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import type { DropEvent } from '../../src/decode/events.js';
import { SnapshotReader } from '../../src/counters/snapshot.js';
import { openTracer } from '../../src/tracer.js';
import { describeLive } from '../helpers/live.js';
import { withNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { sinkUdpDrops, settledSinkUdpDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink, stopAllRxflood, type Sink } from '../helpers/rxflood.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const netnsOf = (pid: number): number => Number(/net:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`))![1]);

afterEach(async () => {
  await stopAllRxflood();
});

/** Four namespaces, each with a 1-byte-rcvbuf sink on 127.0.0.1:port; fn gets them, the first one drops. */
async function fourNamespaces(tag: string, fn: (sinks: Sink[], port: number) => Promise<void>): Promise<void> {
  const port = await freePort();
  const names = ['a', 'b', 'c', 'd'];
  const nest = async (i: number, sinks: Sink[]): Promise<void> => {
    if (i === names.length) return fn(sinks, port);
    await withNetns(`${tag}-${names[i]}`, async (ns) => {
      const s = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, netns: ns, comm: `rxt-gate-${names[i]}` });
      try {
        await nest(i + 1, [...sinks, s]);
      } finally {
        await s.stop();
      }
    });
  };
  await nest(0, []);
}

describeLive('UDP gate: namespaces that did not drop are not asked again', () => {
  it('trace: every drop on the one dropping socket of four on the same address; quiet namespaces asked only at start-up', async () => {
    await fourNamespaces('gate-tr', async (sinks, port) => {
      const [a, ...quiet] = sinks;
      const tracer = await openTracer({ port, events: ['udp:udp_fail_queue_rcv_skb'], notice: () => undefined });
      const events: DropEvent[] = [];
      tracer.on('drop', (e) => events.push(e));
      try {
        const before = sinkUdpDrops(a);
        for (let b = 0; b < 4; b++) {
          await send({ to: addrPort('127.0.0.1', port), count: 500, netns: a.netns });
          await sleep(250);
        }
        const drops = (await settledSinkUdpDrops(a, before + 1)) - before;
        const deadline = Date.now() + 10_000;
        while (events.length < drops && Date.now() < deadline) await sleep(50);
        await tracer.close();
        expect(drops).toBeGreaterThan(1500);
        for (const q of quiet) expect(sinkUdpDrops(q)).toBe(0);
        expect(tracer.stats().lost).toBe(0);
        expect(events.length).toBe(drops);
        const wrong = events.filter((e) => e.socket?.inode !== a.inode || e.socket.netns !== netnsOf(a.pid) || !e.socket.owners.some((o) => o.pid === a.pid));
        expect({ wrong: wrong.length, sample: wrong[0]?.socket }).toEqual({ wrong: 0, sample: undefined });
        const gate = tracer.stats().attribution?.udpGate;
        expect(gate).toBeDefined();
        // udp and udp6 once each at start-up, never again: their counters never moved.
        for (const q of quiet) expect({ netns: q.netns, asked: gate!.askedByNetns[netnsOf(q.pid)] }).toEqual({ netns: q.netns, asked: 2 });
        // The dropping namespace was asked after its drops (at least once more than at start-up).
        expect(gate!.askedByNetns[netnsOf(a.pid)]).toBeGreaterThan(2);
        expect(gate!.carried).toBeGreaterThanOrEqual(2 * quiet.length);
      } finally {
        await tracer.close();
      }
    });
  });

  it("stats/top's SnapshotReader: a read after drops asks only the namespace that dropped, and its row holds the kernel's count", async () => {
    await fourNamespaces('gate-snap', async (sinks, port) => {
      const [a, ...quiet] = sinks;
      const reader = new SnapshotReader();
      const first = await reader.read();
      expect(first.sockets?.get(a.inode)?.drops).toBe(0);
      const asked0 = { ...reader.gateStats!.askedByNetns };
      for (const s of sinks) expect(asked0[netnsOf(s.pid)]).toBe(2);

      // Nothing dropped: the next read asks none of the four again, and still lists their sockets.
      const tcpAsked0 = reader.tcpGateStats!.asked;
      const second = await reader.read();
      // Nor their TCP tables: no TCP segment reached those namespaces (TcpGate, Tcp InSegs).
      expect(reader.tcpGateStats!.carried).toBeGreaterThanOrEqual(quiet.length + 1);
      expect(reader.tcpGateStats!.asked - tcpAsked0).toBeLessThanOrEqual(1); // at most our own namespace
      for (const s of sinks) {
        expect(reader.gateStats!.askedByNetns[netnsOf(s.pid)]).toBe(2);
        expect(second.sockets?.get(s.inode)?.drops).toBe(0);
      }

      await send({ to: addrPort('127.0.0.1', port), count: 1000, netns: a.netns });
      const drops = await settledSinkUdpDrops(a, 1);
      expect(drops).toBeGreaterThan(500);
      const third = await reader.read();
      expect(reader.gateStats!.askedByNetns[netnsOf(a.pid)]).toBe(4);
      for (const q of quiet) {
        expect(reader.gateStats!.askedByNetns[netnsOf(q.pid)]).toBe(2);
        expect(third.sockets?.get(q.inode)?.drops).toBe(0);
      }
      expect(third.sockets?.get(a.inode)?.drops).toBe(drops);
      expect(third.sockets?.get(a.inode)?.owners.map((o) => o.pid)).toContain(a.pid);
    });
  });
});
