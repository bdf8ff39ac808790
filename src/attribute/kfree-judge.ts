// The attributor's two kfree_skb steps (kept out of proc-attributor.ts): a paired kfree_skb takes
// its UDP event's verdict, and an unpaired one is judged by real pointer, learned rx_sk, or whose
// drops rose. Both teach the learned map from exact answers only.
import type { DropEvent } from '../decode/events.js';
import { RxtraceError } from '../errors.js';
import type { SocketTable } from '../procnet/sockets.js';
import type { TableRead } from './history.js';
import { NEED_POINTERS } from './history.js';
import { isNullRxSk, kfreeDropTables, tcpMayUse, type RxSkMap } from './kfree.js';
import { ALL_TABLES, ALL_WITH_TCP, byDrops, byPointer, type Verdict } from './strategies.js';

// Constant arrays: ReadHistory caches windows per `tables` array.
const NO_TABLES: readonly SocketTable[] = [];

/**
 * What a kfree_skb needs read: it has no address, so a real pointer (rows from /proc, which has
 * the pointer column), a learned rx_sk, or whose drops rose (whole tables) name its socket. A
 * reason TCP may use brings the TCP tables in (whole: a drop on port Q while a socket on port P
 * rose would otherwise name P). `tcpDrops`: TCP sockets are read with their drops (sock_diag).
 * Without an rx_sk (before 6.11) only whose drops rose can, so only the tables that could hold
 * its socket are needed (an IPv6 drop: udp6, raw6, icmp6, tcp6 for a TCP reason): a read whole
 * on those brackets it even when the other tables were read for one port only (--port).
 */
export function kfreeNeed(fields: Record<string, unknown>, realPointers: boolean, tcpDrops = false): { tables: readonly SocketTable[]; rxSk?: string; dropTables?: readonly SocketTable[]; port: number } {
  const rxSk = typeof fields.rx_sk === 'string' && !isNullRxSk(fields.rx_sk) ? fields.rx_sk : undefined;
  const dropTables = kfreeDropTables(fields, tcpDrops);
  const all = tcpMayUse(fields.reason) ? ALL_WITH_TCP : ALL_TABLES;
  const tables = rxSk !== undefined ? all : (dropTables ?? NO_TABLES);
  return { tables, rxSk, dropTables, port: realPointers && rxSk !== undefined ? NEED_POINTERS : -1 };
}

export interface KfreeNeed {
  kind: string;
  rxSk?: string;
  dropTables?: readonly SocketTable[];
}

/**
 * Paired kfree_skb → the UDP event's verdict (`paired` when it named a socket). UDP verdicts are
 * kept for pairs that straddle batches, but only while kfree_skb is traced (`keep`): a WeakMap
 * entry per UDP event costs more than the rest of attribution in a storm.
 */
export function applyPairs(udpVerdicts: WeakMap<DropEvent, Verdict>, learned: RxSkMap, events: DropEvent[], needs: KfreeNeed[], verdicts: Verdict[], pairs: Map<DropEvent, DropEvent>, keep = true): void {
  if (keep) for (let i = 0; i < events.length; i++) if (needs[i].kind === 'udp') udpVerdicts.set(events[i], verdicts[i]);
  if (pairs.size === 0) return;
  for (let i = 0; i < events.length; i++) {
    const udp = pairs.get(events[i]);
    if (udp === undefined) continue;
    const uv = udpVerdicts.get(udp);
    if (uv === undefined) continue;
    if ('row' in uv) {
      verdicts[i] = { match: 'paired', row: uv.row, stale: uv.stale };
      const rxSk = needs[i].rxSk;
      if (rxSk !== undefined) learned.learn(rxSk, uv.row.inode, uv.row.table, uv.row.local.port, events[i].monoNs);
    } else verdicts[i] = uv;
  }
}

/** kfree_skb, most exact first: real pointer, learned rx_sk, whose drops rose. */
export function judgeKfree(learned: RxSkMap, realPointers: boolean, ev: DropEvent, need: KfreeNeed, before: TableRead | undefined, after: TableRead | undefined): Verdict {
  if (need.rxSk !== undefined) {
    if (realPointers) {
      const v = byPointer(need.rxSk, before, after);
      if (v.match !== 'none') return v;
    }
    const hit = learned.lookup(need.rxSk, ev.monoNs, before, after);
    if (hit) {
      const a = after?.rows.get(hit.inode);
      const row = a ?? before?.rows.get(hit.inode);
      if (row) return { match: 'learned', row, stale: a === undefined };
    }
  }
  // A read from /proc/net/tcp (the pointer strategy's, or the fallback source) has no TCP drops.
  if (need.dropTables && dropsKnown(need.dropTables, before) && dropsKnown(need.dropTables, after)) {
    const v = byDrops(need.dropTables, before, after);
    // One socket's drops rose and no other could have: exact, so its rx_sk can be learned.
    if ('row' in v && need.rxSk !== undefined) learned.learn(need.rxSk, v.row.inode, v.row.table, v.row.local.port, ev.monoNs);
    return v;
  }
  return { match: 'none' };
}

/** Whether `read` carries the drops counter of every one of `tables` (absent reads: byDrops decides). */
function dropsKnown(tables: readonly SocketTable[], read: TableRead | undefined): boolean {
  return read?.noDrops === undefined || !tables.some((t) => read.noDrops!.has(t));
}

/** Said once when kfree_skb is traced and TCP sockets come from /proc/net/tcp (no drops column). */
export function tcpNoDrops(why: string | undefined): RxtraceError {
  return new RxtraceError('ENODATA', `TCP sockets are read from /proc/net/tcp (${why ?? 'sock_diag unavailable'}), which has no drops counter: TCP kfree_skb drops are matched only by real pointer or a learned rx_sk, never by whose drops rose`, {
    hint: 'unset RXTRACE_SOCKET_SOURCE, or load tcp_diag (modprobe tcp_diag), so TCP sockets come from sock_diag with their drops',
  });
}
