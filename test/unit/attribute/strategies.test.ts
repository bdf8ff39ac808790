import { describe, expect, it } from 'vitest';
import type { NsRow, TableRead } from '../../../src/attribute/history.js';
import { ReadHistory } from '../../../src/attribute/history.js';
import { byAddress, byDrops, byPointer, RCVQUEUE_TABLES, udpKey } from '../../../src/attribute/strategies.js';
import type { SocketTable } from '../../../src/procnet/sockets.js';

let nextInode = 1000;
function row(table: SocketTable, local: string, port: number, drops: number | undefined, extra: Partial<NsRow> = {}): NsRow {
  const inode = extra.inode ?? nextInode++;
  const v6 = table.endsWith('6');
  return {
    table, inode, netns: 4026531840, drops,
    local: { addr: local, port }, remote: { addr: v6 ? '::' : '0.0.0.0', port: 0 },
    localText: v6 ? `[${local}]:${port}` : `${local}:${port}`, remoteText: v6 ? '[::]:0' : '0.0.0.0:0',
    state: 7, tx_queue: 0, rx_queue: 0, uid: 0, ref: 2, pointer: '0000000000000000',
    ...extra,
  };
}
function read(startNs: number, rows: NsRow[], tables: SocketTable[] = ['udp', 'udp6', 'raw', 'raw6', 'icmp', 'icmp6']): TableRead {
  return { startNs, endNs: startNs + 10, tables: new Set(tables), rows: new Map(rows.map((r) => [r.inode, r])) };
}
const bump = (r: NsRow, by: number): NsRow => ({ ...r, drops: (r.drops ?? 0) + by });
const v4 = (dport: number, daddr = '127.0.0.1') => udpKey({ rc: -12, sport: 40000, dport, family: 'AF_INET', saddr: `127.0.0.1:40000`, daddr: `${daddr}:${dport}` })!;

describe('address strategy', () => {
  it('one socket on the address: match address', () => {
    const a = row('udp', '127.0.0.1', 5000, 0);
    const other = row('udp', '127.0.0.1', 5001, 0);
    const v = byAddress(v4(5000), read(0, [a, other]), read(100, [bump(a, 3), other]));
    expect(v).toMatchObject({ match: 'address', row: { inode: a.inode }, stale: false });
  });

  it('a wildcard bind matches any destination address', () => {
    const a = row('udp', '0.0.0.0', 5000, 0);
    expect(byAddress(v4(5000, '10.0.0.7'), read(0, [a]), read(100, [bump(a, 1)]))).toMatchObject({ match: 'address', row: { inode: a.inode } });
  });

  it('an IPv4 drop (family AF_INET) never lands on an IPv6 socket of the same port', () => {
    const a6 = row('udp6', '::', 5000, 0);
    expect(byAddress(v4(5000), read(0, [a6]), read(100, [bump(a6, 1)])).match).toBe('none');
  });

  it('dual-stack: family AF_INET6 with an IPv4 daddr matches [::]:port and [::ffff:a.b.c.d]:port in udp6', () => {
    const key = udpKey({ dport: 5353, family: 'AF_INET6', saddr: '127.0.0.1:1', daddr: '127.0.0.1:5353' })!;
    const wild = row('udp6', '::', 5353, 0);
    expect(byAddress(key, read(0, [wild]), read(100, [bump(wild, 2)]))).toMatchObject({ match: 'address', row: { inode: wild.inode } });
    const mapped = row('udp6', '::ffff:127.0.0.1', 5353, 0);
    expect(byAddress(key, read(0, [mapped]), read(100, [bump(mapped, 2)]))).toMatchObject({ match: 'address', row: { inode: mapped.inode } });
  });

  it('SO_REUSEPORT group: only the member whose drops rose', () => {
    const m1 = row('udp', '127.0.0.1', 6000, 5);
    const m2 = row('udp', '127.0.0.1', 6000, 9);
    const v = byAddress(v4(6000), read(0, [m1, m2]), read(100, [m1, bump(m2, 4)]));
    expect(v).toMatchObject({ match: 'address', row: { inode: m2.inode } });
  });

  it('both members rose: ambiguous with both candidates, never a guess', () => {
    const m1 = row('udp', '0.0.0.0', 6001, 0);
    const m2 = row('udp', '0.0.0.0', 6001, 0);
    const v = byAddress(v4(6001), read(0, [m1, m2]), read(100, [bump(m1, 1), bump(m2, 1)]));
    expect(v).toEqual({ match: 'ambiguous', candidates: [m1.inode, m2.inode].sort((a, b) => a - b) });
  });

  it('the same port in two namespaces, one dropping: that one, with its netns', () => {
    const a = row('udp', '127.0.0.1', 7000, 0, { netns: 1 });
    const b = row('udp', '127.0.0.1', 7000, 0, { netns: 2 });
    const v = byAddress(v4(7000), read(0, [a, b]), read(100, [a, bump(b, 10)]));
    expect(v).toMatchObject({ match: 'address', row: { inode: b.inode, netns: 2 } });
  });

  it('the only socket on the address did not drop: none (an unseen socket dropped), not a wrong answer', () => {
    const a = row('udp', '127.0.0.1', 7001, 4);
    expect(byAddress(v4(7001), read(0, [a]), read(100, [a])).match).toBe('none');
  });

  it('a socket closed between the drop and the next read: its last known record, marked stale', () => {
    const a = row('udp', '127.0.0.1', 7002, 1);
    const b = row('udp', '127.0.0.1', 7002, 0);
    const v = byAddress(v4(7002), read(0, [a, b]), read(100, [b]));
    expect(v).toMatchObject({ match: 'address', row: { inode: a.inode }, stale: true });
  });

  it('a socket created after the previous read counts its drops from zero', () => {
    const old = row('udp', '127.0.0.1', 7003, 0);
    const fresh = row('udp', '127.0.0.1', 7003, 3);
    expect(byAddress(v4(7003), read(0, [old]), read(100, [old, fresh]))).toMatchObject({ match: 'address', row: { inode: fresh.inode } });
  });

  it('a connected socket whose peer is someone else is not a candidate', () => {
    const connected = row('udp', '127.0.0.1', 7004, 0, { remote: { addr: '127.0.0.9', port: 53 }, remoteText: '127.0.0.9:53' });
    const open = row('udp', '127.0.0.1', 7004, 0);
    expect(byAddress(v4(7004), read(0, [connected, open]), read(100, [bump(connected, 1), bump(open, 1)]))).toMatchObject({ match: 'address', row: { inode: open.inode } });
  });

  it('before 6.10 (lport only): port alone, across udp and udp6; shared port with both rising is ambiguous', () => {
    const key = udpKey({ rc: -12, lport: 8000 })!;
    expect(key.tables).toEqual(['udp', 'udp6']);
    const a = row('udp', '127.0.0.1', 8000, 0);
    const b = row('udp6', '::1', 8000, 0);
    expect(byAddress(key, read(0, [a, b]), read(100, [bump(a, 1), b]))).toMatchObject({ match: 'address', row: { inode: a.inode } });
    expect(byAddress(key, read(0, [a, b]), read(100, [bump(a, 1), bump(b, 1)])).match).toBe('ambiguous');
  });
});

describe('drops strategy (sock_rcvqueue_full: no address)', () => {
  it('the one ping socket whose drops rose', () => {
    const p1 = row('icmp', '0.0.0.0', 11, 0);
    const p2 = row('icmp', '0.0.0.0', 12, 0);
    const udp = row('udp', '127.0.0.1', 9000, 0);
    expect(byDrops(RCVQUEUE_TABLES, read(0, [p1, p2, udp]), read(100, [p1, bump(p2, 7), bump(udp, 9)]))).toMatchObject({ match: 'drops', row: { inode: p2.inode } });
  });
  it('nobody rose: none; two rose: ambiguous', () => {
    const p1 = row('icmp6', '::', 13, 0);
    const p2 = row('icmp', '0.0.0.0', 14, 0);
    expect(byDrops(RCVQUEUE_TABLES, read(0, [p1, p2]), read(100, [p1, p2])).match).toBe('none');
    expect(byDrops(RCVQUEUE_TABLES, read(0, [p1, p2]), read(100, [bump(p1, 1), bump(p2, 1)])).match).toBe('ambiguous');
  });
  it('without a read before the event nothing is certain', () => {
    const p1 = row('icmp', '0.0.0.0', 15, 3);
    expect(byDrops(RCVQUEUE_TABLES, undefined, read(100, [p1])).match).toBe('ambiguous');
  });
});

describe('pointer strategy (kfree_skb rx_sk)', () => {
  it('rx_sk equals the pointer column: that socket', () => {
    const a = row('udp', '127.0.0.1', 9100, 0, { pointer: 'ffff888012345678' });
    const b = row('udp', '127.0.0.1', 9101, 0, { pointer: 'ffff888087654321' });
    expect(byPointer('0xffff888012345678', read(0, [a, b]), read(100, [a, b]))).toMatchObject({ match: 'pointer', row: { inode: a.inode } });
    expect(byPointer('0xffff888000000000', read(0, [a, b]), read(100, [a, b])).match).toBe('none');
  });
  it('an address reused by a new socket between the reads: ambiguous', () => {
    const a = row('udp', '127.0.0.1', 9102, 0, { pointer: 'ffff888012340000' });
    const b = row('udp', '127.0.0.1', 9103, 0, { pointer: 'ffff888012340000' });
    expect(byPointer('0xffff888012340000', read(0, [a]), read(100, [b])).match).toBe('ambiguous');
  });
});

describe('read history windows', () => {
  it('brackets an event between the last read before it and the first read after it', () => {
    const h = new ReadHistory(4);
    const r1 = read(0, []);
    const r2 = read(100, [], ['udp', 'udp6']);
    const r3 = read(200, [], ['icmp']);
    const r4 = read(300, []);
    [r1, r2, r3, r4].forEach((r) => h.add(r));
    expect(h.window(150, ['udp'])).toMatchObject({ before: r2, after: r4 });
    expect(h.window(150, ['icmp'])).toMatchObject({ before: r1, after: r3 });
    expect(h.window(400, ['udp']).after).toBeUndefined();
    expect(h.coveredUntil(['icmp', 'udp'])).toBe(300);
  });
});

describe('unicast ranking (the kernel prefers exact binds and connected sockets within a namespace)', () => {
  it('127.0.0.1:P beats 0.0.0.0:P for a packet to 127.0.0.1 even when both drop', () => {
    const exact = row('udp', '127.0.0.1', 9200, 0);
    const wild = row('udp', '0.0.0.0', 9200, 0);
    expect(byAddress(v4(9200), read(0, [exact, wild]), read(100, [bump(exact, 1), bump(wild, 1)]))).toMatchObject({ match: 'address', row: { inode: exact.inode } });
    // A packet to another local address can only be the wildcard's.
    expect(byAddress(v4(9200, '127.0.0.2'), read(0, [exact, wild]), read(100, [bump(exact, 1), bump(wild, 1)]))).toMatchObject({ match: 'address', row: { inode: wild.inode } });
  });
  it('the ranking is per namespace: a wildcard in another netns stays a candidate', () => {
    const exact = row('udp', '127.0.0.1', 9201, 0, { netns: 1 });
    const wild = row('udp', '0.0.0.0', 9201, 0, { netns: 2 });
    expect(byAddress(v4(9201), read(0, [exact, wild]), read(100, [bump(exact, 1), bump(wild, 1)])).match).toBe('ambiguous');
  });
  it('multicast goes to every member: no ranking', () => {
    const group = row('udp', '239.1.1.1', 9202, 0);
    const wild = row('udp', '0.0.0.0', 9202, 0);
    expect(byAddress(v4(9202, '239.1.1.1'), read(0, [group, wild]), read(100, [bump(group, 1), bump(wild, 1)])).match).toBe('ambiguous');
    expect(byAddress(v4(9202, '239.1.1.1'), read(0, [group, wild]), read(100, [group, bump(wild, 1)]))).toMatchObject({ match: 'address', row: { inode: wild.inode } });
  });
});
