// Pairing kfree_skb with the UDP event of the same packet, the learned rx_sk map, and which
// tables the `drops` strategy may judge a kfree_skb over: each with the layouts before and after
// 6.10 (order of the two events) and 6.11 (rx_sk).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NsRow, TableRead } from '../../../src/attribute/history.js';
import { KfreePairer, kfreeDropTables, RxSkMap, udpFiresFirst } from '../../../src/attribute/kfree.js';
import type { DropEvent, LostEvent } from '../../../src/decode/events.js';
import { parseFormat } from '../../../src/format/index.js';

let t = 0;
const udp618 = (cpu: number, rc = -12): DropEvent =>
  ({ event: 'udp:udp_fail_queue_rcv_skb', cpu, pid: 1, tid: 1, time: '', monoNs: ++t, fields: { rc, sport: 1, dport: 5000, family: 'AF_INET' } }) as DropEvent;
const udp61 = (cpu: number, rc = -12): DropEvent => ({ event: 'udp:udp_fail_queue_rcv_skb', cpu, pid: 1, tid: 1, time: '', monoNs: ++t, fields: { rc, lport: 5000 } }) as DropEvent;
const kfree = (cpu: number, reason = 'SOCKET_RCVBUFF', extra: Record<string, unknown> = {}): DropEvent =>
  ({ event: 'skb:kfree_skb', cpu, pid: 1, tid: 1, time: '', monoNs: ++t, fields: { skbaddr: '0x1', protocol: 2048, reason, ...extra } }) as DropEvent;
const lost = (cpu: number): LostEvent => ({ event: 'lost', cpu, lost: 3, time: '' });
const f = (e: DropEvent) => e.fields;

describe('KfreePairer', () => {
  it('6.10+: the udp event then its kfree_skb on the same CPU', () => {
    const u = udp618(0);
    const k = kfree(0);
    const pairs = new KfreePairer().pair([u, k], f);
    expect(pairs.get(k)).toBe(u);
  });

  it('before 6.10: the kfree_skb comes first, then the udp event', () => {
    const k = kfree(1);
    const u = udp61(1);
    expect(new KfreePairer().pair([k, u], f).get(k)).toBe(u);
    // The 6.10 order on an old layout is two different packets.
    const u2 = udp61(1);
    const k2 = kfree(1);
    expect(new KfreePairer().pair([u2, k2], f).size).toBe(0);
  });

  it('never across CPUs, a lost record, an unrelated reason or an aggregate', () => {
    expect(new KfreePairer().pair([udp618(0), kfree(1)], f).size).toBe(0);
    expect(new KfreePairer().pair([udp618(0), lost(0), kfree(0)], f).size).toBe(0);
    // The packet's own free was filtered away (--reason): the next kfree is another packet.
    expect(new KfreePairer().pair([udp618(0), kfree(0, 'NO_SOCKET')], f).size).toBe(0);
    expect(new KfreePairer().pair([udp618(0, -105), kfree(0, 'SOCKET_RCVBUFF')], f).size).toBe(0);
    expect(new KfreePairer().pair([udp618(0, -105), kfree(0, 'PROTO_MEM')], f).size).toBe(1);
    const agg = { ...udp618(0), count: 5 } as DropEvent;
    expect(new KfreePairer().pair([agg, kfree(0)], f).size).toBe(0);
  });

  it('5.15.58+: UDP frees a refused packet with plain kfree_skb (NOT_SPECIFIED): never paired, no tables for drops', () => {
    // reason 0 is NOT_SPECIFIED in that kernel's print fmt (test/fixtures/format/5.15, 5.15.89)
    const k515 = parseFormat(readFileSync(new URL('../../fixtures/format/5.15/kfree_skb.format', import.meta.url), 'utf8'), 'skb');
    const name = k515.symbols.get('reason')?.get(0);
    expect(name).toBe('NOT_SPECIFIED');
    expect(new KfreePairer().pair([kfree(1, name), udp61(1, -12)], f).size).toBe(0);
    expect(new KfreePairer().pair([kfree(1, name), udp61(1, -105)], f).size).toBe(0);
    expect(kfreeDropTables({ protocol: 2048, reason: name }, true)).toBeUndefined();
  });

  it('interleaved CPUs, and a pair that straddles two batches', () => {
    const p = new KfreePairer();
    const u0 = udp618(0);
    const u1 = udp618(1);
    const k1 = kfree(1);
    const first = p.pair([u0, u1, k1], f);
    expect(first.get(k1)).toBe(u1);
    const k0 = kfree(0);
    expect(p.pair([k0], f).get(k0)).toBe(u0);
    // One udp event pairs once: a second kfree after it is another packet.
    expect(p.pair([kfree(0)], f).size).toBe(0);
  });

  it('knows the order from the layout', () => {
    expect(udpFiresFirst({ rc: -12, dport: 1 })).toBe(true);
    expect(udpFiresFirst({ rc: -12, lport: 1 })).toBe(false);
  });
});

const row = (inode: number, table: NsRow['table'] = 'udp'): NsRow => ({
  table, inode, netns: 1, drops: 0, local: { addr: '127.0.0.1', port: 5000 }, remote: { addr: '0.0.0.0', port: 0 },
  localText: '127.0.0.1:5000', remoteText: '0.0.0.0:0', state: 7, tx_queue: 0, rx_queue: 0, uid: 0, ref: 2, pointer: '0',
});
const read = (at: number, inodes: number[]): TableRead => ({ startNs: at, endNs: at + 1, tables: new Set(['udp', 'udp6', 'raw', 'raw6', 'icmp', 'icmp6']), rows: new Map(inodes.map((i) => [i, row(i)])) });

describe('RxSkMap', () => {
  it('answers while the socket provably lives, and forgets it when it goes', () => {
    const m = new RxSkMap();
    m.learn('0xffff1', 7, 'udp', 5000, 100);
    // Learned before the event: the read after the event must still list it.
    expect(m.lookup('0xffff1', 150, read(120, [7]), read(160, [7]))?.inode).toBe(7);
    expect(m.lookup('0xffff1', 150, read(120, [7]), read(160, [8]))).toBeUndefined();
    // Gone: the address may be reused by another socket; the entry is forgotten.
    expect(m.size).toBe(0);
  });

  it('learned after the event: the read before it must list the socket', () => {
    const m = new RxSkMap();
    m.learn('0xffff2', 9, 'udp', 5000, 200);
    expect(m.lookup('0xffff2', 150, read(140, [9]), read(210, [9]))?.inode).toBe(9);
    expect(m.lookup('0xffff2', 150, read(140, []), read(210, [9]))).toBeUndefined();
  });

  it('prune drops sockets a later read no longer lists; null rx_sk is never learned', () => {
    const m = new RxSkMap();
    m.learn('0xa', 1, 'udp', 5000, 10);
    m.learn('0xb', 2, 'udp', 5000, 10);
    m.learn('0x0', 3, 'udp', 5000, 10);
    expect(m.size).toBe(2);
    m.prune(read(20, [2]));
    expect(m.lookup('0xa', 30, read(25, [1]), read(35, [1]))).toBeUndefined();
    expect(m.size).toBe(1);
  });

  it('a storm on one socket does not change the version per event', () => {
    const m = new RxSkMap();
    m.learn('0xa', 1, 'udp', 5000, 10);
    const v = m.version;
    for (let i = 11; i < 100; i++) m.learn('0xa', 1, 'udp', 5000, i);
    expect(m.version).toBe(v);
  });
});

describe('kfreeDropTables', () => {
  it('only SOCKET_RCVBUFF of an IP packet, by family', () => {
    expect(kfreeDropTables({ reason: 'SOCKET_RCVBUFF', protocol: 2048 })).toEqual(['udp', 'udp6', 'raw', 'icmp']);
    expect(kfreeDropTables({ reason: 'SOCKET_RCVBUFF', protocol: 34525 })).toEqual(['udp6', 'raw6', 'icmp6']);
    // TCP frees with PROTO_MEM too, and its sockets have no drops column in /proc.
    expect(kfreeDropTables({ reason: 'PROTO_MEM', protocol: 2048 })).toBeUndefined();
    // unix sockets: no IP protocol.
    expect(kfreeDropTables({ reason: 'SOCKET_RCVBUFF', protocol: 0 })).toBeUndefined();
  });

  it('TCP reasons when TCP sockets are read with their drops (sock_diag): TCP tables, or every table for the shared ones', () => {
    expect(kfreeDropTables({ reason: 'TCP_ZEROWINDOW', protocol: 2048 }, true)).toEqual(['tcp', 'tcp6']);
    expect(kfreeDropTables({ reason: 'TCP_OFO_DROP', protocol: 34525 }, true)).toEqual(['tcp6']);
    expect(kfreeDropTables({ reason: 'PROTO_MEM', protocol: 2048 }, true)).toEqual(['udp', 'udp6', 'raw', 'icmp', 'tcp', 'tcp6']);
    expect(kfreeDropTables({ reason: 'SOCKET_BACKLOG', protocol: 34525 }, true)).toEqual(['udp6', 'raw6', 'icmp6', 'tcp6']);
    // SOCKET_RCVBUFF is not TCP's: unchanged.
    expect(kfreeDropTables({ reason: 'SOCKET_RCVBUFF', protocol: 2048 }, true)).toEqual(['udp', 'udp6', 'raw', 'icmp']);
    // From /proc/net/tcp (no drops column) none of them can be judged by drops.
    for (const reason of ['TCP_ZEROWINDOW', 'PROTO_MEM', 'SOCKET_BACKLOG']) expect(kfreeDropTables({ reason, protocol: 2048 }, false)).toBeUndefined();
    // Reasons others use too (SOCKET_FILTER, NO_SOCKET): never.
    expect(kfreeDropTables({ reason: 'SOCKET_FILTER', protocol: 2048 }, true)).toBeUndefined();
  });
});
