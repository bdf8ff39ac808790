// The receive funnel: two snapshots → one interval. `delta` holds the kernel's counters under
// the kernel's names, grouped by the file they come from; `gauges` what was read at the end;
// `funnel` one line per layer (nic → softnet → ip → udp → socket) with its packets in and its
// drops; `reconcile` sets the sockets' drops against RcvbufErrors + MemErrors, per network
// namespace. docs/funnel.md documents every field for users.
import type { NetDevRow } from '../procnet/netdev.js';
import type { Snmp6Counters } from '../procnet/snmp.js';
import type { MemLimits } from '../procnet/sockstat.js';
import type { SocketOwner } from '../decode/events.js';
import {
  deltaCounters,
  deltaEntities,
  deltaSockets,
  deltaSoftnet,
  newNotes,
  notesEmpty,
  type DeltaNotes,
  type SoftnetDelta,
} from './delta.js';
import { receiveCounter, type CounterSnapshot, type SnmpRead, type SourceError } from './snapshot.js';
import { TCP_TABLES, tcpLayer, type TcpLayer } from './tcp-layer.js';

/** Which socket a row is about, as `stats` and `top` print it. */
export interface SocketIdentity {
  table: string;
  inode: number;
  local: string;
  remote: string;
  netns: number | null;
  owners: SocketOwner[];
}

/** A socket whose drops rose in the interval. */
export interface SocketDelta extends SocketIdentity {
  /** Increase of the socket's `drops` (sk_drops). */
  drops: number;
}

export interface FunnelDelta {
  /** /proc/net/dev, receive columns, per device (its `rx_dropped` is rx_dropped + rx_missed_errors). */
  dev: Record<string, Record<string, number>>;
  /** /sys/class/net/DEV/statistics, receive counters, per device. */
  statistics: Record<string, Record<string, number>>;
  /** /proc/net/softnet_stat, per CPU and summed. */
  softnet_stat: SoftnetDelta;
  /** /proc/net/snmp: Ip, Udp, UdpLite. */
  snmp: Record<string, Record<string, number>>;
  /** /proc/net/snmp6: Ip6*, Udp6*, UdpLite6*. */
  snmp6: Record<string, number>;
  /** /proc/net/{udp,udp6,raw,raw6,icmp,icmp6}: the sockets whose drops rose, most first. */
  sockets: SocketDelta[];
}

export interface FunnelGauges {
  /** Backlog queue lengths at the end of the interval, per CPU (5.10+; 6.4+ for the last two). */
  softnet_stat: Record<string, { backlog_len?: number; input_pkt_queue_len?: number; process_queue_len?: number }>;
  /** /proc/net/sockstat{,6} lines for UDP: inuse, mem (pages). */
  sockstat: Record<string, Record<string, number>>;
  /** net.ipv4.udp_mem: min, pressure, max, in pages (shared by UDP and UDP-Lite, IPv4 and IPv6). */
  udp_mem?: MemLimits;
  page_size: number;
  /** rx_queue (bytes queued, sk_rmem_alloc) and drops (absolute) of the sockets in delta.sockets. */
  sockets: Record<string, { rx_queue: number; drops: number | null }>;
}

export type LayerName = 'nic' | 'softnet' | 'ip' | 'udp' | 'socket';
export const LAYERS: readonly LayerName[] = ['nic', 'softnet', 'ip', 'udp', 'socket'];

export interface FunnelLayer {
  layer: LayerName;
  /** Packets that reached the layer in the interval; null where no counter says (socket). */
  in: number | null;
  drops: number;
  in_per_s: number | null;
  drops_per_s: number;
}

export interface Reconcile {
  /** Network namespace inode (null: unknown). */
  netns: number | null;
  /** rxtrace's own namespace (the one delta.snmp is from). */
  self: boolean;
  /** Sum of the increase of `drops` over the namespace's udp and udp6 sockets. */
  socket_drops: number;
  /** Udp RcvbufErrors + Udp6RcvbufErrors of the namespace; null when its snmp could not be read twice. */
  RcvbufErrors: number | null;
  /** Udp MemErrors + Udp6MemErrors (absent on kernels before 5.11: counted as 0); null as above. */
  MemErrors: number | null;
  /**
   * What RcvbufErrors + MemErrors rose by between the two moments the socket tables were read:
   * at least [0], at most [1]. snmp is read just before and just after the tables, so during a
   * flood the two bounds differ by what arrived while the tables were read. null as above.
   */
  kernel_range: [number, number] | null;
  /**
   * How far socket_drops lies outside kernel_range (0 inside it). Above 0: sockets dropped for other reasons
   * (socket filters, checksum errors found at recvmsg, IPsec policy). Below 0: drops on sockets
   * that rxtrace did not see (closed during the interval, UDP-Lite, a namespace without a process).
   * null when the kernel's side is unknown.
   */
  unexplained: number | null;
  /** UDP sockets of this namespace that closed during the interval: their last drops are unknown. */
  sockets_closed: number;
}

export interface FunnelInterval {
  /** End of the interval (RFC 3339, UTC). */
  time: string;
  /** Seconds between the two reads. */
  interval: number;
  delta: FunnelDelta;
  gauges: FunnelGauges;
  funnel: FunnelLayer[];
  /** The layer that lost the most packets, not counting a drop twice; null when none lost any. */
  losing: LayerName | null;
  reconcile: Reconcile[];
  /** The TCP receive path (tcp-layer.ts): TcpExt drops, and TCP sockets' drops when read. */
  tcp?: TcpLayer;
  notes?: DeltaNotes;
  errors?: SourceError[];
}

const SNMP_PROTOS = ['Ip', 'Udp', 'UdpLite'];
/** Ip values that are settings, not counters (ip_forward, ip_default_ttl): no delta. */
const SNMP_SETTINGS = new Set(['Forwarding', 'DefaultTTL']);
const SNMP6_PREFIX = /^(Ip6|Udp6|UdpLite6)/;
const UDP_TABLES = new Set(['udp', 'udp6']);

function pick<T>(src: Readonly<Record<string, T>>, names: readonly string[]): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  for (const n of names) if (src[n] !== undefined) out[n] = src[n];
  return out;
}

function pickSnmp6(src: Snmp6Counters): Snmp6Counters {
  const out = Object.create(null) as Snmp6Counters;
  for (const [k, v] of Object.entries(src)) if (SNMP6_PREFIX.test(k)) out[k] = v;
  return out;
}

/** NetDevRow → a plain record (NetDevRow is an interface of numbers). */
function devRecord(rows: Record<string, NetDevRow>): Record<string, Record<string, number>> {
  return rows as unknown as Record<string, Record<string, number>>;
}

const n0 = (v: number | undefined): number => v ?? 0;

/** Udp + Udp6 RcvbufErrors + MemErrors of one read; null without a Udp row. */
function socketBufferErrors(r: SnmpRead): number | null {
  const udp = r.snmp.Udp;
  if (!udp) return null;
  return n0(udp.RcvbufErrors) + n0(udp.MemErrors) + n0(r.snmp6.Udp6RcvbufErrors) + n0(r.snmp6.Udp6MemErrors);
}

/**
 * The kernel's side of one namespace's reconciliation: Udp + Udp6 RcvbufErrors and MemErrors
 * deltas, and the range their sum covers between the socket-table reads (`before` is read
 * just before the tables, `after` just after; without `after`, the range is the plain delta).
 */
function kernelSide(
  prev: SnmpRead & { after?: SnmpRead },
  cur: SnmpRead & { after?: SnmpRead },
  notes: DeltaNotes,
  path: string,
): Pick<Reconcile, 'RcvbufErrors' | 'MemErrors' | 'kernel_range'> {
  if (!prev.snmp.Udp || !cur.snmp.Udp) return { RcvbufErrors: null, MemErrors: null, kernel_range: null };
  const v4 = deltaCounters(prev.snmp.Udp, cur.snmp.Udp, 'u64', `${path}.Udp`, notes, (n) => n === 'RcvbufErrors' || n === 'MemErrors');
  const v6 = deltaCounters(prev.snmp6, cur.snmp6, 'u64', path + '6', notes, (n) => n === 'Udp6RcvbufErrors' || n === 'Udp6MemErrors');
  const RcvbufErrors = n0(v4.RcvbufErrors) + n0(v6.Udp6RcvbufErrors);
  const MemErrors = n0(v4.MemErrors) + n0(v6.Udp6MemErrors);
  const plain = RcvbufErrors + MemErrors;
  const a0 = socketBufferErrors(prev)!;
  const a1 = socketBufferErrors(cur)!;
  const b0 = prev.after ? (socketBufferErrors(prev.after) ?? a0) : a0;
  const b1 = cur.after ? (socketBufferErrors(cur.after) ?? a1) : a1;
  const lo = a1 - b0;
  const hi = b1 - a0;
  // A reset (a counter that went down) leaves only the plain delta to go by.
  const kernel_range: [number, number] = a1 < a0 || b0 < a0 || b1 < a1 || lo > plain || hi < plain ? [plain, plain] : [Math.max(0, lo), hi];
  return { RcvbufErrors, MemErrors, kernel_range };
}

/** Two snapshots (older first) → the interval between them. Pure. */
export function buildInterval(prev: CounterSnapshot, cur: CounterSnapshot): FunnelInterval {
  const notes = newNotes();
  const seconds = Math.max(0, (cur.monoMs - prev.monoMs) / 1000);

  const snmp = deltaEntities(pick(prev.snmp, SNMP_PROTOS), pick(cur.snmp, SNMP_PROTOS), 'u64', 'snmp', notes, (n) => !SNMP_SETTINGS.has(n));
  const snmp6 = deltaCounters(pickSnmp6(prev.snmp6), pickSnmp6(cur.snmp6), 'u64', 'snmp6', notes);
  const delta: FunnelDelta = {
    dev: deltaEntities(devRecord(prev.dev), devRecord(cur.dev), 'u64', 'dev', notes, receiveCounter),
    statistics: deltaEntities(prev.statistics, cur.statistics, 'u64', 'statistics', notes, receiveCounter),
    softnet_stat: deltaSoftnet(prev.softnet, cur.softnet, notes),
    snmp,
    snmp6,
    sockets: [],
  };

  const gauges: FunnelGauges = { softnet_stat: {}, sockstat: {}, page_size: cur.pageSize, sockets: {} };
  for (const r of cur.softnet) {
    const g: FunnelGauges['softnet_stat'][string] = {};
    if (r.backlog_len !== undefined) g.backlog_len = r.backlog_len;
    if (r.input_pkt_queue_len !== undefined) g.input_pkt_queue_len = r.input_pkt_queue_len;
    if (r.process_queue_len !== undefined) g.process_queue_len = r.process_queue_len;
    if (Object.keys(g).length > 0) gauges.softnet_stat[String(r.cpu)] = g;
  }
  for (const proto of ['UDP', 'UDP6', 'UDPLITE', 'UDPLITE6']) if (cur.sockstat[proto]) gauges.sockstat[proto] = { ...cur.sockstat[proto] };
  if (cur.protoMem.udp_mem) gauges.udp_mem = cur.protoMem.udp_mem;

  // Sockets and the per-namespace reconciliation.
  const reconcile = new Map<number | null, Reconcile>();
  const entry = (netns: number | null): Reconcile => {
    let r = reconcile.get(netns);
    if (!r) {
      r = { netns, self: netns === cur.selfNetns, socket_drops: 0, RcvbufErrors: null, MemErrors: null, kernel_range: null, unexplained: null, sockets_closed: 0 };
      reconcile.set(netns, r);
    }
    return r;
  };
  let socketDrops = 0;
  let tcpSocketDrops: number | null = null;
  if (prev.sockets && cur.sockets) {
    const drops = deltaSockets(prev.sockets, cur.sockets, notes, prev.netnsRead);
    if (prev.tcpRead && cur.tcpRead) tcpSocketDrops = 0;
    for (const [inode, d] of drops) {
      if (d === 0) continue; // adds nothing anywhere below
      const s = cur.sockets.get(inode)!;
      // TCP sockets' drops are the TCP layer's, not the UDP funnel's socket layer.
      if (TCP_TABLES.has(s.table)) {
        if (tcpSocketDrops !== null) tcpSocketDrops += d;
      } else socketDrops += d;
      if (UDP_TABLES.has(s.table)) entry(s.netns).socket_drops += d;
      if (d > 0) {
        delta.sockets.push({ table: s.table, inode, local: s.local, remote: s.remote, netns: s.netns, owners: s.owners, drops: d });
        gauges.sockets[String(inode)] = { rx_queue: s.rx_queue, drops: s.drops };
      }
    }
    for (const [inode, s] of prev.sockets) if (!cur.sockets.has(inode) && UDP_TABLES.has(s.table)) entry(s.netns).sockets_closed++;
    delta.sockets.sort((a, b) => b.drops - a.drops || a.inode - b.inode);
  }
  const self = entry(cur.selfNetns);
  Object.assign(
    self,
    kernelSide({ snmp: prev.snmp, snmp6: prev.snmp6, after: prev.snmpAfterSockets }, { snmp: cur.snmp, snmp6: cur.snmp6, after: cur.snmpAfterSockets }, notes, 'snmp'),
  );
  for (const [ns, now] of cur.netnsSnmp ?? []) {
    const before = prev.netnsSnmp?.get(ns);
    if (!before || ns === cur.selfNetns) continue;
    Object.assign(entry(ns), kernelSide(before, now, notes, `netns.${ns}.snmp`));
  }
  const rec: Reconcile[] = [];
  for (const r of reconcile.values()) {
    if (r.kernel_range) {
      const [lo, hi] = r.kernel_range;
      r.unexplained = r.socket_drops < lo ? r.socket_drops - lo : r.socket_drops > hi ? r.socket_drops - hi : 0;
    }
    if (r.self || r.socket_drops || r.RcvbufErrors || r.MemErrors || r.sockets_closed) rec.push(r);
  }
  rec.sort((a, b) => Number(b.self) - Number(a.self) || (a.netns ?? 0) - (b.netns ?? 0));

  // Without socket tables, the kernel's own count of socket-buffer drops stands in.
  if (!(prev.sockets && cur.sockets)) socketDrops = n0(self.RcvbufErrors ?? undefined) + n0(self.MemErrors ?? undefined);
  const { funnel, losing } = layers(delta, socketDrops, seconds);
  const out: FunnelInterval = {
    time: new Date(cur.wallMs).toISOString(),
    interval: Math.round(seconds * 1000) / 1000,
    delta,
    gauges,
    funnel,
    losing,
    reconcile: rec,
  };
  const tcp = tcpLayer(prev, cur, seconds, notes, tcpSocketDrops);
  if (tcp) out.tcp = tcp;
  if (!notesEmpty(notes)) out.notes = notes;
  if (cur.errors.length > 0) out.errors = cur.errors;
  return out;
}

function sum(values: Iterable<number | undefined>): number {
  let s = 0;
  for (const v of values) s += v ?? 0;
  return s;
}

/**
 * Per layer: packets in and drops, chosen so that a drop counts in one layer only, except where
 * the kernel itself counts twice (a backlog drop is also the device's rx_dropped). See
 * docs/funnel.md for the formulas.
 */
export function layers(delta: FunnelDelta, socketDrops: number, seconds: number): { funnel: FunnelLayer[]; losing: LayerName | null } {
  // NIC: the exact sysfs counters when sysfs shows the device, else /proc/net/dev's sums.
  let nicIn = 0;
  let nicDrops = 0;
  for (const [dev, d] of Object.entries(delta.dev)) {
    const s = delta.statistics[dev];
    nicIn += d.rx_packets ?? 0;
    nicDrops += s && s.rx_dropped !== undefined ? n0(s.rx_dropped) + n0(s.rx_missed_errors) + n0(s.rx_errors) : n0(d.rx_dropped) + n0(d.rx_errors);
  }
  const sn = delta.softnet_stat.total;
  const ip = delta.snmp.Ip ?? {};
  const s6 = delta.snmp6;
  const ipIn = n0(ip.InReceives) + n0(s6.Ip6InReceives);
  const ipDrops =
    sum([ip.InDiscards, ip.InHdrErrors, ip.InAddrErrors, ip.InUnknownProtos]) +
    sum([s6.Ip6InDiscards, s6.Ip6InHdrErrors, s6.Ip6InAddrErrors, s6.Ip6InUnknownProtos, s6.Ip6InNoRoutes, s6.Ip6InTruncatedPkts]);
  let udpIn = 0;
  let udpDrops = 0;
  const flavour = (get: (name: string) => number | undefined): void => {
    udpIn += n0(get('InDatagrams')) + n0(get('NoPorts')) + n0(get('InErrors'));
    // InErrors includes RcvbufErrors and MemErrors: those are the socket layer's.
    udpDrops += n0(get('NoPorts')) + Math.max(0, n0(get('InErrors')) - n0(get('RcvbufErrors')) - n0(get('MemErrors')));
  };
  for (const p of ['Udp', 'UdpLite']) if (delta.snmp[p]) flavour((n) => delta.snmp[p][n]);
  for (const p of ['Udp6', 'UdpLite6']) flavour((n) => s6[p + n]);
  const rate = (v: number): number => (seconds > 0 ? Math.round((v / seconds) * 100) / 100 : 0);
  const mk = (layer: LayerName, inn: number | null, drops: number): FunnelLayer => ({
    layer,
    in: inn,
    drops,
    in_per_s: inn === null ? null : rate(inn),
    drops_per_s: rate(drops),
  });
  const funnel = [
    mk('nic', nicIn, nicDrops),
    mk('softnet', sn.processed, sn.dropped),
    mk('ip', ipIn, ipDrops),
    mk('udp', udpIn, udpDrops),
    mk('socket', null, socketDrops),
  ];
  // A backlog drop is counted by softnet_stat and again as the device's rx_dropped: leave the
  // NIC only what the backlog does not explain when choosing the losing layer.
  const own: Record<LayerName, number> = {
    nic: Math.max(0, nicDrops - sn.dropped),
    softnet: sn.dropped,
    ip: ipDrops,
    udp: udpDrops,
    socket: socketDrops,
  };
  let losing: LayerName | null = null;
  for (const l of LAYERS) if (own[l] > 0 && (losing === null || own[l] > own[losing])) losing = l;
  return { funnel, losing };
}
