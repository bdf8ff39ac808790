// Property: whatever the socket tables look like, attribution names the socket that really
// dropped, or says ambiguous (with it among the candidates), or none — never another socket.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NsRow, TableRead } from '../../../src/attribute/history.js';
import { byAddress, byDrops, RCVQUEUE_TABLES, udpKey } from '../../../src/attribute/strategies.js';
import { kfreeNeed, judgeKfree } from '../../../src/attribute/kfree-judge.js';
import { RxSkMap } from '../../../src/attribute/kfree.js';
import type { DropEvent } from '../../../src/decode/events.js';

// At least 300 runs: fewer would make the coverage floor below a matter of luck.
const runs = Math.max(300, Number(process.env.FC_RUNS ?? 300));
const ADDRS = ['127.0.0.1', '0.0.0.0', '127.0.0.2', '::', '::1', '::ffff:127.0.0.1'];

const sockFields = {
  v6: fc.boolean(),
  addr: fc.constantFrom(...ADDRS),
  port: fc.integer({ min: 5000, max: 5003 }),
  drops: fc.integer({ min: 0, max: 5 }),
  rise: fc.integer({ min: 0, max: 2 }),
  netns: fc.constantFrom(1, 2),
  inBefore: fc.boolean(),
  inAfter: fc.boolean(),
};
const sockArb = fc.record(sockFields);

function toRow(s: { v6: boolean; addr: string; port: number; drops: number; netns: number }, inode: number, table?: NsRow['table']): NsRow {
  const v6 = s.v6 || s.addr.includes(':');
  const addr = v6 ? (s.addr.includes(':') ? s.addr : `::ffff:${s.addr}`) : s.addr;
  return {
    table: table ?? (v6 ? 'udp6' : 'udp'), inode, netns: s.netns, drops: s.drops,
    local: { addr, port: s.port }, remote: { addr: v6 ? '::' : '0.0.0.0', port: 0 },
    localText: v6 ? `[${addr}]:${s.port}` : `${addr}:${s.port}`, remoteText: '',
    state: 7, tx_queue: 0, rx_queue: 0, uid: 0, ref: 2, pointer: '0',
  };
}
/** How often each verdict came up: a strategy that always answered `none` would pass the safety checks, so the test asserts coverage too. */
type Tally = { named: number; ambiguous: number; none: number };
const tally = (): Tally => ({ named: 0, ambiguous: 0, none: 0 });
const read = (t: number, rows: NsRow[]): TableRead => ({ startNs: t, endNs: t + 1, tables: new Set(['udp', 'udp6', 'raw', 'raw6', 'icmp', 'icmp6', 'tcp', 'tcp6']), rows: new Map(rows.map((r) => [r.inode, r])) });

type Sock = { drops: number; rise: number; inBefore: boolean; inAfter: boolean };
/**
 * The socket tables read before and after a drop (socket i is inode 100 + i): the dropper is in
 * `before` when `dropperBefore` says so and other sockets come and go freely; drops rise by each
 * socket's own `rise`, the dropper's by `dropperRise`.
 */
function readsAround<S extends Sock>(
  socks: S[],
  dropper: number,
  row: (s: S, inode: number, drops: number) => NsRow,
  dropperBefore: (s: S) => boolean,
  dropperRise: (s: S) => number,
): { before: NsRow[]; after: NsRow[] } {
  const before: NsRow[] = [];
  const after: NsRow[] = [];
  socks.forEach((s, i) => {
    const isDropper = i === dropper;
    if (isDropper ? dropperBefore(s) : s.inBefore) before.push(row(s, 100 + i, s.drops));
    if (s.inAfter) after.push(row(s, 100 + i, s.drops + (isDropper ? dropperRise(s) : s.rise)));
  });
  return { before, after };
}

type Verdict = { row: NsRow } | { match: string; candidates?: number[] };
/**
 * Runs `judge` over `arb` (fc.pre in it skips a case): each case gives a verdict and the inode
 * that really dropped. A named socket must be the dropper, an ambiguous verdict must list it;
 * then the verdicts must cover both that name something.
 */
function neverWrong<T>(arb: fc.Arbitrary<T>, judge: (c: T) => { v: Verdict; dropper: number }): void {
  const seen = tally();
  fc.assert(
    fc.property(arb, (c) => {
      const { v, dropper } = judge(c);
      if ('row' in v) {
        expect(v.row.inode).toBe(dropper);
        seen.named++;
      } else if (v.match === 'ambiguous') {
        expect(v.candidates).toContain(dropper);
        seen.ambiguous++;
      } else seen.none++;
    }),
    { numRuns: runs },
  );
  expectCoverage(seen);
}

describe('attribution never names the wrong socket', () => {
  it('address strategy', () => {
    neverWrong(fc.tuple(fc.array(sockArb, { minLength: 1, maxLength: 8 }), fc.nat(), fc.integer({ min: 1, max: 3 })), ([socks, pick, trueRise]) => {
      const dropper = pick % socks.length;
      // The dropper existed at the event: at least in one read. Others come and go freely.
      const { before, after } = readsAround(socks, dropper, (s, inode, drops) => toRow({ ...s, drops }, inode), (s) => s.inBefore || !s.inAfter, () => trueRise);
      const d = toRow(socks[dropper], 100 + dropper);
      // The packet's destination: the dropper's address. A wildcard dropper got a packet for an
      // address no exact bind on that port had (else the kernel's lookup would have chosen that one).
      const family = d.table === 'udp6' ? 'AF_INET6' : 'AF_INET';
      // (An exact bind that was not there for the whole window may have been absent at the drop.)
      const inBoth = new Set(before.filter((b) => after.some((a) => a.inode === b.inode)).map((r) => r.inode));
      const wildDsts = [family === 'AF_INET' ? '127.0.0.9' : '::9'];
      for (const r of [...before, ...after]) {
        if (!inBoth.has(r.inode) && r.netns === d.netns && r.local.port === d.local.port && r.table === d.table && !['0.0.0.0', '::'].includes(r.local.addr)) wildDsts.push(r.local.addr);
      }
      const heldAll = new Set([...before, ...after].filter((r) => inBoth.has(r.inode) && r.netns === d.netns && r.local.port === d.local.port).map((r) => r.local.addr));
      const usable = wildDsts.filter((a) => !heldAll.has(a));
      const dst = d.local.addr === '0.0.0.0' || d.local.addr === '::' ? usable[pick % usable.length] : d.local.addr;
      const daddr = dst.includes(':') ? `[${dst}]:${d.local.port}` : `${dst}:${d.local.port}`;
      const key = udpKey({ dport: d.local.port, family, saddr: '127.0.0.9:1', daddr })!;
      return { v: byAddress(key, read(0, before), read(10, after)), dropper: d.inode };
    });
  });

  it('drops strategy', () => {
    neverWrong(fc.tuple(fc.array(sockArb, { minLength: 1, maxLength: 8 }), fc.nat()), ([socks, pick]) => {
      const dropper = pick % socks.length;
      const { before, after } = readsAround(socks, dropper, (s, inode, drops) => toRow({ ...s, drops }, inode, 'icmp'), () => true, () => 1);
      return { v: byDrops(RCVQUEUE_TABLES, read(0, before), read(10, after)), dropper: 100 + dropper };
    });
  });

  // The TCP path (issue 13): a kfree_skb with a reason TCP uses has no address, so the candidates
  // are every socket of the tables that reason can come from (TCP's for TCP_*, every table for
  // PROTO_MEM and SOCKET_BACKLOG), and whose drops rose decides. Other sockets' drops rise freely
  // (a listener's on listen overflows, which fire no event), sockets come and go. The rx_sk
  // learned from an exact answer then names the next drop of that address: still the dropper.
  it('kfree_skb on TCP sockets: drops, and the rx_sk it learns', () => {
    const tcpSockArb = fc.record({ ...sockFields, table: fc.constantFrom('udp', 'udp6', 'tcp', 'tcp6', 'tcp', 'tcp6') as fc.Arbitrary<NsRow['table']>, listen: fc.boolean() });
    const reasons = fc.constantFrom('PROTO_MEM', 'SOCKET_BACKLOG', 'TCP_ZEROWINDOW', 'TCP_OFO_DROP', 'TCP_OFOMERGE', 'TCP_OFO_QUEUE_PRUNE');
    neverWrong(fc.tuple(fc.array(tcpSockArb, { minLength: 1, maxLength: 8 }), fc.nat(), reasons, fc.boolean()), ([socks, pick, reason, v4]) => {
      // The dropper is a socket the reason can come from: TCP's own reasons only from TCP sockets.
      const eligible = socks.map((s, i) => i).filter((i) => !reason.startsWith('TCP_') || socks[i].table.startsWith('tcp'));
      fc.pre(eligible.length > 0);
      const dropper = eligible[pick % eligible.length];
      const dt = socks[dropper].table;
      // An IPv4 packet reaches udp/tcp and dual-stack *6 sockets; an IPv6 one only the *6 tables.
      const protocol = dt === 'udp' || dt === 'tcp' || v4 ? 2048 : 34525;
      const row = (s: (typeof socks)[number], inode: number, drops: number): NsRow => ({ ...toRow({ ...s, drops }, inode, s.table), state: s.table.startsWith('tcp') ? (s.listen ? 10 : 1) : 7 });
      const { before, after } = readsAround(socks, dropper, row, (s) => s.inBefore || !s.inAfter, (s) => 1 + s.rise);
      const fields = { reason, protocol, rx_sk: `0xffff${(1000 + dropper).toString(16)}` };
      const learned = new RxSkMap();
      const ev = { event: 'skb:kfree_skb', cpu: 0, monoNs: 5, fields } as unknown as DropEvent;
      const judge = (tcpDrops: boolean, e: DropEvent, b: TableRead, a: TableRead) => judgeKfree(learned, false, e, { kind: 'kfree', ...kfreeNeed(fields, false, tcpDrops) }, b, a);
      // From /proc/net/tcp (no drops column) nothing a TCP socket may have dropped is judged by drops.
      expect(judge(false, ev, read(0, before), read(10, after)).match).toBe('none');
      const v = judge(true, ev, read(0, before), read(10, after));
      // Learned from a named verdict: the next drop of that rx_sk, the socket still listed by a later read.
      if ('row' in v && socks[dropper].inAfter) {
        const w = judge(true, { ...ev, monoNs: 15 } as DropEvent, read(10, after), read(20, after));
        if ('row' in w) expect(w.row.inode).toBe(100 + dropper);
      }
      return { v, dropper: 100 + dropper };
    });
  });
});

/**
 * The generated cases must reach both verdicts that name something. Measured over 300 runs: the
 * address strategy names the dropper in ~85 % and the drops strategy in ~8 % (other sockets' drops
 * rise too); the floor of 2 % keeps a chance failure below one in 10^5.
 */
function expectCoverage(seen: Tally): void {
  const total = seen.named + seen.ambiguous + seen.none;
  expect(seen.named, JSON.stringify(seen)).toBeGreaterThanOrEqual(total / 50);
  expect(seen.ambiguous, JSON.stringify(seen)).toBeGreaterThan(0);
}
