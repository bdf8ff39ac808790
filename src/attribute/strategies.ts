// The attribution strategies of DESIGN.md, as pure functions over table reads. They never
// guess: one certain socket, or `ambiguous` with the candidates, or `none`.
import { normalizeIp, parseSockaddr } from '../procnet/addr.js';
import type { SocketTable } from '../procnet/sockets.js';
import type { NsRow, TableRead } from './history.js';

export type Verdict =
  | { match: 'pointer' | 'address' | 'drops' | 'paired' | 'learned'; row: NsRow; stale: boolean }
  | { match: 'ambiguous'; candidates: number[] }
  | { match: 'none' };

export const UDP_TABLES: readonly SocketTable[] = ['udp', 'udp6'];
// Constant arrays: ReadHistory caches windows per `tables` array.
const UDP4_TABLES: readonly SocketTable[] = ['udp'];
const UDP6_TABLES: readonly SocketTable[] = ['udp6'];
/** Where sock_rcvqueue_full fires for IP sockets: ping sockets (and raw before 6.9). */
export const RCVQUEUE_TABLES: readonly SocketTable[] = ['icmp', 'icmp6', 'raw', 'raw6'];
export const ALL_TABLES: readonly SocketTable[] = ['udp', 'udp6', 'raw', 'raw6', 'icmp', 'icmp6'];
/** ALL_TABLES and TCP's: what a kfree_skb with a reason TCP may use needs read (kfree.ts). */
export const ALL_WITH_TCP: readonly SocketTable[] = [...ALL_TABLES, 'tcp', 'tcp6'];

const WILDCARD = new Set(['0.0.0.0', '::']);

/** What a UDP drop event says about the receiving socket. */
export interface UdpKey {
  tables: readonly SocketTable[];
  port: number;
  /** Destination IP of the packet (the socket's local address or a wildcard), when known. */
  daddr?: string;
  /** Source of the packet, to rule out sockets connected to someone else. */
  saddr?: { addr: string; port: number };
}

/** Build the key from decoded fields: 6.10+ (dport, daddr, family) or older (lport). */
export function udpKey(fields: Record<string, unknown>): UdpKey | undefined {
  const port = typeof fields.dport === 'number' ? fields.dport : typeof fields.lport === 'number' ? fields.lport : undefined;
  if (port === undefined) return undefined;
  const fam = fields.family;
  const tables = fam === 'AF_INET' || fam === 2 ? UDP4_TABLES : fam === 'AF_INET6' || fam === 10 ? UDP6_TABLES : UDP_TABLES;
  const key: UdpKey = { tables, port };
  if (typeof fields.daddr === 'string') {
    try {
      key.daddr = parseSockaddr(fields.daddr).addr;
    } catch {
      /* an unfilled sockaddr: match on the port alone */
    }
  }
  if (typeof fields.saddr === 'string') {
    try {
      const s = parseSockaddr(fields.saddr);
      key.saddr = { addr: s.addr, port: s.port };
    } catch {
      /* ignore */
    }
  }
  return key;
}

/** The IPv4 inside an IPv4-mapped IPv6 address, or the address itself. */
function unmapped(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** Could this socket have received a packet for `key`? (local port/address, and connect()ed peer) */
export function rowAccepts(row: NsRow, key: UdpKey): boolean {
  if (!key.tables.includes(row.table) || row.local.port !== key.port) return false;
  if (key.daddr !== undefined) {
    const local = unmapped(row.local.addr);
    if (!WILDCARD.has(row.local.addr) && local !== unmapped(key.daddr)) return false;
  }
  if (key.saddr && row.remote.port !== 0) {
    const remote = unmapped(row.remote.addr);
    if (!WILDCARD.has(row.remote.addr) && (remote !== unmapped(key.saddr.addr) || row.remote.port !== key.saddr.port)) return false;
  }
  return true;
}

/**
 * Narrow candidates by whose `drops` rose between `before` and `after` (the reads that bracket
 * the event). A socket absent from `before` did not exist then: it counts from 0.
 */
export function narrowByDrops(
  candidates: number[],
  before: TableRead | undefined,
  after: TableRead | undefined,
  /** Address-scoped candidates only: the one socket that closed before the after-read is it. */
  closedMayBeTheOne = false,
): Verdict {
  if (candidates.length === 0) return { match: 'none' };
  const sorted = [...candidates].sort((x, y) => x - y);
  // Without a read before the event, no rise can be seen: nothing is certain.
  if (before === undefined) return { match: 'ambiguous', candidates: sorted };
  const rose: number[] = [];
  const closed: number[] = [];
  const unknown: number[] = [];
  for (const inode of sorted) {
    const b = before.rows.get(inode);
    const a = after?.rows.get(inode);
    if (a === undefined) closed.push(inode);
    else if (a.drops === undefined || (b !== undefined && b.drops === undefined)) unknown.push(inode);
    else if (a.drops > (b?.drops ?? 0)) rose.push(inode);
  }
  if (rose.length === 1 && closed.length === 0 && unknown.length === 0) return pick(rose[0], before, after);
  if (rose.length === 0 && unknown.length === 0 && closed.length === 1 && closedMayBeTheOne) return pick(closed[0], before, after);
  if (rose.length === 0 && unknown.length === 1 && closed.length === 0 && candidates.length === 1 && closedMayBeTheOne) {
    // No drops column on this kernel, and the address leaves one socket.
    return pick(unknown[0], before, after);
  }
  if (rose.length + closed.length + unknown.length === 0) return { match: 'none' };
  return { match: 'ambiguous', candidates: [...rose, ...closed, ...unknown].sort((x, y) => x - y) };
}

function pick(inode: number, before: TableRead | undefined, after: TableRead | undefined): Verdict {
  const a = after?.rows.get(inode);
  if (a) return { match: 'drops', row: a, stale: false };
  return { match: 'drops', row: before!.rows.get(inode)!, stale: true };
}

/** Sockets of `tables` seen in either read (alive at the event unless created and closed between). */
export function candidatesIn(tables: readonly SocketTable[], before: TableRead | undefined, after: TableRead | undefined, accept: (r: NsRow) => boolean = () => true): number[] {
  const set = new Set<number>();
  for (const read of [before, after]) {
    if (!read) continue;
    for (const row of read.rows.values()) if (tables.includes(row.table) && accept(row)) set.add(row.inode);
  }
  return [...set];
}

/** Multicast and limited broadcast go to every matching socket; unicast to the best match only. */
function isUnicast(addr: string): boolean {
  const ip = unmapped(addr);
  if (ip.includes('.')) {
    const first = Number(ip.split('.')[0]);
    return !(first >= 224 && first <= 239) && ip !== '255.255.255.255';
  }
  return !ip.toLowerCase().startsWith('ff');
}

/**
 * The kernel's unicast lookup (compute_score) ranks, within one namespace, a connected socket
 * matching the peer above an unconnected one, and an exact local address above a wildcard bind:
 * only the best-ranked sockets of each namespace can have received the packet. (A socket bound to
 * a subnet broadcast address would share copies with wildcards: __udp4_lib_mcast_deliver.)
 */
function bestRanked(cands: NsRow[], key: UdpKey, before: TableRead | undefined, after: TableRead | undefined): NsRow[] {
  if (key.daddr === undefined || !isUnicast(key.daddr)) return cands;
  const rank = (r: NsRow): number => (r.remote.port !== 0 ? 2 : 0) + (WILDCARD.has(r.local.addr) ? 0 : 1);
  // Only a socket alive across the whole window (in both reads) certainly outranked the others
  // at the moment of the drop; one that came or went in between may not have existed then.
  const best = new Map<number, number>();
  for (const r of cands) {
    if (before?.rows.has(r.inode) && after?.rows.has(r.inode)) best.set(r.netns, Math.max(best.get(r.netns) ?? 0, rank(r)));
  }
  return cands.filter((r) => rank(r) >= (best.get(r.netns) ?? 0));
}

/** Strategy 2: the UDP event's local address and port, narrowed by drops when several match. */
export function byAddress(key: UdpKey, before: TableRead | undefined, after: TableRead | undefined): Verdict {
  const rows = new Map<number, NsRow>();
  for (const read of [before, after]) {
    if (!read) continue;
    for (const row of read.rows.values()) if (rowAccepts(row, key)) rows.set(row.inode, row);
  }
  const cands = bestRanked([...rows.values()], key, before, after).map((r) => r.inode);
  const v = narrowByDrops(cands, before, after, true);
  return v.match === 'drops' ? { ...v, match: 'address' } : v;
}

/** Strategy 3: no address in the event; the socket whose drops rose, within `tables`. */
export function byDrops(tables: readonly SocketTable[], before: TableRead | undefined, after: TableRead | undefined): Verdict {
  return narrowByDrops(candidatesIn(tables, before, after), before, after);
}

/** Strategy 1: kfree_skb's rx_sk equals a socket's `pointer` column (only when pointers are real). */
export function byPointer(rxSk: string, before: TableRead | undefined, after: TableRead | undefined): Verdict {
  const want = normPointer(rxSk);
  const hits = new Map<number, { row: NsRow; stale: boolean }>();
  for (const [read, stale] of [[before, true], [after, false]] as const) {
    if (!read) continue;
    for (const row of read.rows.values()) {
      if (normPointer(row.pointer) === want) hits.set(row.inode, { row, stale: stale && !hits.has(row.inode) });
    }
  }
  if (hits.size === 1) {
    const [{ row }] = hits.values();
    const inAfter = after?.rows.get(row.inode);
    return { match: 'pointer', row: inAfter ?? row, stale: !inAfter };
  }
  if (hits.size > 1) return { match: 'ambiguous', candidates: [...hits.keys()].sort((x, y) => x - y) };
  return { match: 'none' };
}

export function normPointer(p: string): string {
  const s = p.toLowerCase().replace(/^0x/, '').replace(/^0+/, '');
  return s === '' ? '0' : s;
}

export { normalizeIp };
