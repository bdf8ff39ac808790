// Properties of kfree_skb attribution (kfree.ts): pairing never joins two different packets, and
// the learned rx_sk map never names a socket other than the one an address belonged to at the
// drop, even when the kernel reuses the address of a closed socket. Coverage is asserted too: a
// model that answers nothing would pass "never wrong", so the cases that must be matched are.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NsRow, TableRead } from '../../../src/attribute/history.js';
import { KfreePairer, RxSkMap } from '../../../src/attribute/kfree.js';
import type { DropEvent, LostEvent } from '../../../src/decode/events.js';

const runs = Number(process.env.FC_RUNS ?? 300);

const packetArb = fc.record({
  cpu: fc.integer({ min: 0, max: 2 }),
  rc: fc.constantFrom(-12, -105),
  /** the udp event passed its kernel filter (--port) */
  udpTraced: fc.boolean(),
  /** other kfree_skb drops on this CPU right after (NO_SOCKET, a raw socket's SOCKET_RCVBUFF…) */
  noise: fc.array(fc.constantFrom('NO_SOCKET', 'SOCKET_RCVBUFF', 'PROTO_MEM', 'QUEUE_PURGE'), { maxLength: 2 }),
  /** records lost right after this packet's events on its CPU */
  lostAfter: fc.boolean(),
});

describe('KfreePairer never pairs two packets', () => {
  for (const udpFirst of [true, false]) {
    it(`${udpFirst ? '6.10+ (udp event first)' : 'before 6.10 (kfree_skb first)'}`, () => {
      fc.assert(
        fc.property(
          fc.array(packetArb, { minLength: 1, maxLength: 40 }),
          fc.subarray(['SOCKET_RCVBUFF', 'PROTO_MEM', 'NO_SOCKET', 'QUEUE_PURGE']),
          fc.array(fc.integer({ min: 1, max: 10 }), { maxLength: 6 }),
          fc.boolean(),
          (packets, allowed, cuts, anyLost) => {
            // Per-CPU rings, each packet's events contiguous on its CPU (one softirq).
            const rings = new Map<number, (DropEvent | LostEvent)[]>();
            const packetOf = new Map<DropEvent, number>();
            let t = 0;
            const reasonOk = (r: string) => allowed.includes(r);
            packets.forEach((p, id) => {
              const ring = rings.get(p.cpu) ?? rings.set(p.cpu, []).get(p.cpu)!;
              const reason = p.rc === -12 ? 'SOCKET_RCVBUFF' : 'PROTO_MEM';
              const udp = { event: 'udp:udp_fail_queue_rcv_skb', cpu: p.cpu, monoNs: ++t, fields: udpFirst ? { rc: p.rc, dport: 1 } : { rc: p.rc, lport: 1 } } as unknown as DropEvent;
              const kf = { event: 'skb:kfree_skb', cpu: p.cpu, monoNs: ++t, fields: { reason, protocol: 2048 } } as unknown as DropEvent;
              packetOf.set(udp, id);
              packetOf.set(kf, id);
              const pair = udpFirst ? [udp, kf] : [kf, udp];
              for (const e of pair) if ((e === udp ? p.udpTraced : reasonOk(reason))) ring.push(e);
              for (const r of p.noise) {
                if (!reasonOk(r)) continue;
                const n = { event: 'skb:kfree_skb', cpu: p.cpu, monoNs: ++t, fields: { reason: r, protocol: 2048 } } as unknown as DropEvent;
                packetOf.set(n, -1 - id); // a packet of its own
                ring.push(n);
              }
              if (p.lostAfter && anyLost) ring.push({ event: 'lost', cpu: p.cpu, lost: 1, time: '' });
            });
            // Batches: the rings drained in turn, cut at arbitrary points.
            const all = [...rings.values()].flat();
            const pairer = new KfreePairer();
            const pairs = new Map<DropEvent, DropEvent>();
            let at = 0;
            for (const c of [...cuts, all.length]) {
              const batch = all.slice(at, at + c);
              at += batch.length;
              for (const [k, u] of pairer.pair(batch, (e) => e.fields)) pairs.set(k, u);
              if (at >= all.length) break;
            }
            if (at < all.length) for (const [k, u] of pairer.pair(all.slice(at), (e) => e.fields)) pairs.set(k, u);
            for (const [k, u] of pairs) expect(packetOf.get(k)).toBe(packetOf.get(u));
            // Coverage: a packet whose two events were both traced is paired, unless a lost record
            // on its CPU came between them (it cannot: they are adjacent) — so always.
            packets.forEach((p, id) => {
              const reason = p.rc === -12 ? 'SOCKET_RCVBUFF' : 'PROTO_MEM';
              if (!p.udpTraced || !reasonOk(reason)) return;
              const kf = [...packetOf].find(([e, i]) => i === id && e.event === 'skb:kfree_skb')![0];
              expect(pairs.has(kf), `packet ${id} paired`).toBe(true);
            });
          },
        ),
        { numRuns: runs },
      );
    });
  }
});

const row = (inode: number): NsRow => ({
  table: 'udp', inode, netns: 1, drops: 0, local: { addr: '127.0.0.1', port: 1 }, remote: { addr: '0.0.0.0', port: 0 },
  localText: '', remoteText: '', state: 7, tx_queue: 0, rx_queue: 0, uid: 0, ref: 2, pointer: '0',
});

describe('RxSkMap never names a socket that did not own the address at the drop', () => {
  it('with address reuse after close', () => {
    fc.assert(
      fc.property(
        // socket lifetimes on a timeline 0..100; addresses are handed out from a pool of 2 and reused
        fc.array(fc.record({ open: fc.integer({ min: 0, max: 90 }), len: fc.integer({ min: 1, max: 60 }) }), { minLength: 1, maxLength: 8 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.record({ t: fc.integer({ min: 0, max: 100 }), s: fc.nat() }), { maxLength: 10 }),
        fc.array(fc.record({ t: fc.integer({ min: 0, max: 100 }), s: fc.nat() }), { maxLength: 10 }),
        (lifes, readTimes, learns, queries) => {
          const socks: { inode: number; open: number; close: number; addr?: string }[] = [];
          const pool = ['0xa', '0xb'];
          // Hand out addresses in order of opening, reusing one once its socket closed.
          [...lifes].map((l, i) => ({ inode: 100 + i, open: l.open, close: l.open + l.len })).sort((a, b) => a.open - b.open).forEach((s) => {
            const busy = new Set(socks.filter((o) => o.addr && o.open <= s.open && s.open < o.close).map((o) => o.addr));
            const addr = pool.find((a) => !busy.has(a));
            socks.push({ ...s, addr });
          });
          const alive = (t: number) => socks.filter((s) => s.open <= t && t < s.close);
          const reads: TableRead[] = [...readTimes].sort((a, b) => a - b).map((t) => ({ startNs: t + 0.1, endNs: t + 0.2, tables: new Set(['udp']), rows: new Map(alive(t + 0.1).map((s) => [s.inode, row(s.inode)])) }));
          const m = new RxSkMap();
          /** What the model last taught per address: the socket and when. */
          const taught = new Map<string, { inode: number; at: number }>();
          // Time-ordered like the attributor: a learn or a query is handled once the read after it exists.
          const ops: { at: number; run: () => void }[] = [];
          for (const r of reads) ops.push({ at: r.startNs, run: () => m.prune(r) });
          for (const l of learns) {
            const c = alive(l.t + 0.5).filter((s) => s.addr);
            if (c.length === 0) continue;
            const s = c[l.s % c.length];
            const after = reads.find((r) => r.startNs >= l.t + 0.5);
            if (!after) continue;
            ops.push({
              at: after.startNs + 0.01,
              run: () => {
                m.learn(s.addr!, s.inode, 'udp', 1, l.t + 0.5);
                const cur = taught.get(s.addr!);
                taught.set(s.addr!, { inode: s.inode, at: cur?.inode === s.inode ? Math.min(cur.at, l.t + 0.5) : l.t + 0.5 });
              },
            });
          }
          for (const q of queries) {
            const t = q.t + 0.5;
            const c = alive(t).filter((s) => s.addr);
            if (c.length === 0) continue;
            const s = c[q.s % c.length];
            const before = [...reads].reverse().find((r) => r.endNs <= t);
            const after = reads.find((r) => r.startNs >= t);
            if (!after) continue;
            ops.push({
              at: after.startNs + 0.02,
              run: () => {
                const hit = m.lookup(s.addr!, t, before, after);
                if (hit) expect(hit.inode).toBe(s.inode);
                // Coverage: taught this very socket, alive in the reads around the drop → found.
                const k = taught.get(s.addr!);
                if (k?.inode === s.inode && after.rows.has(s.inode) && (k.at <= t || before?.rows.has(s.inode))) {
                  expect(hit?.inode, `socket ${s.inode} taught at ${k.at}, drop at ${t}`).toBe(s.inode);
                }
              },
            });
          }
          ops.sort((a, b) => a.at - b.at).forEach((o) => o.run());
        },
      ),
      { numRuns: runs },
    );
  });

  it('coverage: a socket learned and alive across the window is found', () => {
    const m = new RxSkMap();
    const r = (t: number, inodes: number[]): TableRead => ({ startNs: t, endNs: t + 1, tables: new Set(['udp']), rows: new Map(inodes.map((i) => [i, row(i)])) });
    m.learn('0xa', 1, 'udp', 1, 5);
    m.prune(r(10, [1]));
    expect(m.lookup('0xa', 15, r(10, [1]), r(20, [1]))?.inode).toBe(1);
    expect(m.lookup('0xa', 3, r(0, [1]), r(10, [1]))?.inode).toBe(1);
  });
});
