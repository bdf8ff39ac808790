// The TCP layer of the receive funnel: Tcp InSegs in, the TcpExt receive-drop counters of
// /proc/net/netstat, and the TCP sockets (listeners above all) whose drops rose. Kept beside the
// UDP funnel (funnel.ts), not inside its layers: a TCP drop is none of nic/softnet/ip/udp/socket's.
import { TCPEXT_DROP_PACKETS, TCPEXT_RECEIVE } from '../procnet/netstat.js';
import { deltaCounters, type DeltaNotes } from './delta.js';
import type { CounterSnapshot } from './snapshot.js';

export const TCP_TABLES: ReadonlySet<string> = new Set(['tcp', 'tcp6']);

export interface TcpLayer {
  /** Tcp InSegs (segments received, IPv4 and IPv6); null when /proc/net/snmp has no Tcp row. */
  in: number | null;
  /** Packets dropped, each counted once: the sum of TCPRcvQDrop, TCPBacklogDrop, TCPZeroWindowDrop, TCPOFODrop, ListenDrops, PFMemallocDrop. */
  drops: number;
  in_per_s: number | null;
  drops_per_s: number;
  /** The TcpExt receive counters' deltas, under the kernel's names (procnet/netstat.ts). */
  TcpExt: Record<string, number>;
  /** Sum of the rise of `drops` (sk_drops, via sock_diag) over TCP sockets; null when TCP sockets were not read. */
  socket_drops: number | null;
}

/** The TCP layer between two snapshots; undefined when neither has TcpExt (no /proc/net/netstat). */
export function tcpLayer(prev: CounterSnapshot, cur: CounterSnapshot, seconds: number, notes: DeltaNotes, socketDrops: number | null): TcpLayer | undefined {
  const a = prev.netstat?.TcpExt;
  const b = cur.netstat?.TcpExt;
  if (!a || !b) return undefined;
  const wanted = new Set<string>(TCPEXT_RECEIVE);
  const TcpExt = deltaCounters(a, b, 'u64', 'netstat.TcpExt', notes, (n) => wanted.has(n));
  let drops = 0;
  for (const n of TCPEXT_DROP_PACKETS) drops += TcpExt[n] ?? 0;
  const inSegs = prev.snmp.Tcp?.InSegs !== undefined && cur.snmp.Tcp?.InSegs !== undefined ? deltaCounters(prev.snmp.Tcp, cur.snmp.Tcp, 'u64', 'snmp.Tcp', notes, (n) => n === 'InSegs').InSegs ?? null : null;
  const rate = (v: number): number => (seconds > 0 ? Math.round((v / seconds) * 100) / 100 : 0);
  return { in: inSegs, drops, in_per_s: inSegs === null ? null : rate(inSegs), drops_per_s: rate(drops), TcpExt, socket_drops: socketDrops };
}
