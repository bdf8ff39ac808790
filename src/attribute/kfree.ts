// skb:kfree_skb on the right socket without real pointers: pairing with the UDP event of the same
// packet, a learned rx_sk → socket map, and which sockets a kfree drop could have come from for
// the `drops` strategy. Pure: no /proc here; the attributor feeds in records and table reads.
import type { DropEvent, LostEvent } from '../decode/events.js';
import type { SocketTable } from '../procnet/sockets.js';
import type { TableRead } from './history.js';

export const KFREE = 'skb:kfree_skb';
export const UDP_FAIL = 'udp:udp_fail_queue_rcv_skb';
const ETH_P_IP = 2048;
const ETH_P_IPV6 = 34525;

/**
 * The reason __udp_queue_rcv_skb frees the skb with, per rc (5.18+): -ENOMEM (rcvbuf full) →
 * SOCKET_RCVBUFF, -ENOBUFS (protocol memory) → PROTO_MEM. A kfree with another reason is not
 * that packet's: its own free was filtered away (`--reason`), so pairing must not reach past it.
 */
function reasonFor(rc: unknown): string | undefined {
  if (rc === -12) return 'SOCKET_RCVBUFF';
  if (rc === -105) return 'PROTO_MEM';
  return undefined;
}

/**
 * Which of the two comes first in the ring. Before 6.10 __udp_queue_rcv_skb frees the skb and
 * then fires the tracepoint (which only took rc and the socket); from 6.10 the tracepoint reads
 * the packet's addresses, so it fires first. The 6.10 layout is the one with `dport`.
 */
export function udpFiresFirst(udpFields: Record<string, unknown>): boolean {
  return 'dport' in udpFields || 'sport' in udpFields;
}

type Rec = DropEvent | LostEvent;

/**
 * Pairs a kfree_skb with the udp_fail_queue_rcv_skb of the same packet: both fire in one softirq,
 * one right after the other on the same CPU, so two adjacent records of one CPU's ring (no lost
 * record between them) with a matching rc/reason are one packet. Exact; anything less certain is
 * left unpaired. State carries across batches (a pair may straddle two), per CPU.
 */
export class KfreePairer {
  /** The last record seen per CPU, and whether it was already taken by a pair. */
  private readonly last = new Map<number, { ev: DropEvent; taken: boolean } | undefined>();

  /** Records of one batch, in ring order per CPU. Returns each paired kfree_skb → its UDP event. */
  pair(records: readonly Rec[], fieldsOf: (ev: DropEvent) => Record<string, unknown>): Map<DropEvent, DropEvent> {
    const out = new Map<DropEvent, DropEvent>();
    for (const r of records) {
      if (r.event === 'lost') {
        // Records were lost on this CPU: whatever comes next is not known to be adjacent.
        this.last.set(r.cpu, undefined);
        continue;
      }
      const ev = r as DropEvent;
      const prev = this.last.get(ev.cpu);
      let taken = false;
      if (prev && !prev.taken && single(prev.ev) && single(ev)) {
        const [udp, kfree] = ev.event === KFREE && prev.ev.event === UDP_FAIL ? [prev.ev, ev] : ev.event === UDP_FAIL && prev.ev.event === KFREE ? [ev, prev.ev] : [];
        if (udp && kfree) {
          const uf = fieldsOf(udp);
          const kf = fieldsOf(kfree);
          const order = udpFiresFirst(uf) === (udp === prev.ev);
          const want = reasonFor(uf.rc);
          if (order && want !== undefined && kf.reason === want) {
            out.set(kfree, udp);
            taken = true;
          }
        }
      }
      this.last.set(ev.cpu, { ev, taken });
    }
    return out;
  }
}

/** An aggregate stands for several drops whose interleaving with other events is gone. */
function single(ev: DropEvent): boolean {
  return ev.count === undefined || ev.count === 1;
}

interface Learned {
  inode: number;
  table: SocketTable;
  /** Its local port: a read scoped to other ports says nothing about it. */
  port: number;
  /** CLOCK_MONOTONIC ns of the drop it was learned from (the socket was alive then). */
  atNs: number;
}

/**
 * rx_sk (a kernel address) → the socket it was, learned from exact matches. An address is reused
 * once its socket is freed, so an entry answers only for an event at which the socket provably
 * still lived: a table read on the far side of the event (from the learning time) still lists it.
 * A socket alive at two moments was alive between them, so the address was its own throughout.
 */
export class RxSkMap {
  private readonly map = new Map<string, Learned>();
  /** Bumped on every change: verdicts memoized against an older map are stale. */
  version = 0;

  learn(rxSk: string, inode: number, table: SocketTable, port: number, atNs: number): void {
    if (isNullRxSk(rxSk)) return;
    const cur = this.map.get(rxSk);
    // The same socket again: keep the earliest time it was known alive (any such time proves as
    // much), so a storm of drops on one socket does not invalidate memoized verdicts per event.
    if (cur && cur.inode === inode && cur.atNs <= atNs) return;
    this.map.set(rxSk, { inode, table, port, atNs: cur && cur.inode === inode ? Math.min(cur.atNs, atNs) : atNs });
    this.version++;
  }

  /** The socket rx_sk stands for at time t, given the reads that bracket t; undefined if unproven. */
  lookup(rxSk: string, t: number, before: TableRead | undefined, after: TableRead | undefined): { inode: number; table: SocketTable } | undefined {
    const e = this.map.get(rxSk);
    if (!e) return undefined;
    // Learned before the event: alive after it too? Learned after: alive before it too?
    const far = e.atNs <= t ? after : before;
    if (far === undefined || !covers(far, e)) return undefined;
    if (!far.rows.has(e.inode)) {
      // It is gone (or was not yet there): the address may now be another socket's.
      if (e.atNs <= t) this.forget(rxSk);
      return undefined;
    }
    return { inode: e.inode, table: e.table };
  }

  /** Forget every socket a read of its table no longer lists (it closed). */
  prune(read: TableRead): void {
    for (const [k, e] of this.map) {
      if (read.startNs > e.atNs && covers(read, e) && !read.rows.has(e.inode)) this.forget(k);
    }
  }

  private forget(k: string): void {
    if (this.map.delete(k)) this.version++;
  }

  get size(): number {
    return this.map.size;
  }
}

/** Whether `read` lists every socket of the entry's table on its port (whole, or scoped to it). */
function covers(read: TableRead, e: Learned): boolean {
  if (!read.tables.has(e.table)) return false;
  const scoped = read.ports?.get(e.table);
  return scoped === undefined || scoped.has(e.port);
}

export function isNullRxSk(v: unknown): boolean {
  return v === undefined || v === null || v === 0 || (typeof v === 'string' && /^(0x)?0*$/i.test(v));
}

const V4_RCVBUFF: readonly SocketTable[] = ['udp', 'udp6', 'raw', 'icmp'];
const V6_RCVBUFF: readonly SocketTable[] = ['udp6', 'raw6', 'icmp6'];
// An IPv4 packet may reach a dual-stack tcp6/udp6 socket; an IPv6 one only the *6 tables.
const V4_TCP: readonly SocketTable[] = ['tcp', 'tcp6'];
const V6_TCP: readonly SocketTable[] = ['tcp6'];
const V4_ANY: readonly SocketTable[] = ['udp', 'udp6', 'raw', 'icmp', 'tcp', 'tcp6'];
const V6_ANY: readonly SocketTable[] = ['udp6', 'raw6', 'icmp6', 'tcp6'];

/**
 * Whether a TCP socket may have freed an skb with this reason: TCP's own (TCP_*), and the shared
 * SOCKET_BACKLOG (tcp_add_backlog) and PROTO_MEM (tcp_data_queue when tcp_mem is over its limit;
 * UDP, raw and ping sockets use it too). Such an event needs the TCP tables read.
 */
export function tcpMayUse(reason: unknown): boolean {
  return typeof reason === 'string' && (reason.startsWith('TCP_') || reason === 'SOCKET_BACKLOG' || reason === 'PROTO_MEM');
}

/**
 * The socket tables a kfree_skb drop could come from, for the `drops` strategy (whose rise it
 * was), or undefined when the set of possible sockets is not all readable. The true socket must
 * be among those read, and its sk_drops rose (every path that frees with these reasons bumps it
 * first), so one riser alone is it:
 * - SOCKET_RCVBUFF of an IP packet: UDP (__udp_queue_rcv_skb) and raw/ping
 *   (sock_queue_rcv_skb_reason). TCP does not use it (it frees with PROTO_MEM, SOCKET_BACKLOG or
 *   TCP_*), and unix sockets carry no IP protocol.
 * - TCP_*: TCP sockets only (a listener included: its drops also rise on listen overflows, which
 *   fire no event, so it then makes the answer ambiguous, never wrong).
 * - PROTO_MEM and SOCKET_BACKLOG: every table of the packet's family, TCP's included.
 * `tcpDrops`: whether TCP sockets are read with their drops (sock_diag). From /proc/net/tcp they
 * have none, so a drop a TCP socket may have made cannot be judged by drops: undefined.
 * SOCKET_FILTER and the rest stay undefined (other socket kinds use them too).
 */
export function kfreeDropTables(fields: Record<string, unknown>, tcpDrops = false): readonly SocketTable[] | undefined {
  const v4 = fields.protocol === ETH_P_IP;
  if (!v4 && fields.protocol !== ETH_P_IPV6) return undefined;
  const reason = fields.reason;
  if (reason === 'SOCKET_RCVBUFF') return v4 ? V4_RCVBUFF : V6_RCVBUFF;
  if (!tcpDrops || !tcpMayUse(reason)) return undefined;
  if (reason === 'PROTO_MEM' || reason === 'SOCKET_BACKLOG') return v4 ? V4_ANY : V6_ANY;
  return v4 ? V4_TCP : V6_TCP;
}
