// /proc/net/netstat: the "extended" MIBs (TcpExt, IpExt, MPTcpExt…), in the same shape as
// /proc/net/snmp (a line of names, then a line of values, per group), parsed by name. rxtrace
// reads the TcpExt counters of the TCP receive path from it (docs/funnel.md says what each means).
import { parseSnmp, type SnmpCounters } from './snmp.js';
import { dict, procNetPath, readTextIfExists } from './read.js';

/**
 * TcpExt counters of receive drops, in the kernel's names (include/uapi/linux/snmp.h):
 * packets dropped, and (PruneCalled, RcvPruned, OfoPruned) how often the queues were pruned.
 */
export const TCPEXT_RECEIVE = [
  'TCPRcvQDrop', // data dropped: no receive memory (tcp_data_queue; kfree_skb PROTO_MEM)
  'TCPBacklogDrop', // the socket backlog (owned by a user) was full (SOCKET_BACKLOG)
  'TCPZeroWindowDrop', // data arrived into a zero window (TCP_ZEROWINDOW)
  'TCPOFODrop', // out-of-order data dropped: no memory (TCP_OFO_DROP)
  'PruneCalled', // times the receive queue was pruned for memory
  'RcvPruned', // times pruning could not make room (packets then dropped)
  'OfoPruned', // times the out-of-order queue was pruned (TCP_OFO_QUEUE_PRUNE)
  'ListenOverflows', // SYN or final ACK at a listener whose accept queue was full
  'ListenDrops', // every drop at a listener (ListenOverflows, TCPReqQFullDrop, no memory…)
  'TCPReqQFullDrop', // SYN dropped: SYN (request) queue full and no syncookies
  'PFMemallocDrop', // a pfmemalloc skb for a socket without SOCK_MEMALLOC
] as const;

/** The TcpExt counters that count dropped packets, each once: their sum is the TCP layer's drops. */
export const TCPEXT_DROP_PACKETS = ['TCPRcvQDrop', 'TCPBacklogDrop', 'TCPZeroWindowDrop', 'TCPOFODrop', 'ListenDrops', 'PFMemallocDrop'] as const;

/** /proc/net/netstat text → counters by group (TcpExt, IpExt…) and name. Throws ProcParseError. */
export function parseNetstat(text: string, opts: { file?: string } = {}): SnmpCounters {
  return parseSnmp(text, { file: opts.file ?? '/proc/net/netstat' });
}

/** /proc/net/netstat (of `pid`'s network namespace when given). Missing file → {}. */
export async function readNetstat(procRoot = '/proc', pid?: number): Promise<SnmpCounters> {
  const path = procNetPath('netstat', procRoot, pid);
  const text = await readTextIfExists(path);
  return text === undefined ? dict() : parseNetstat(text, { file: path });
}
