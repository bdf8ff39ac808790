// The metric families read from the kernel's counters at scrape time: the receive funnel
// (NIC, softnet, IP, UDP), protocol memory, and the top sockets of the socket tables. Pure:
// one CounterSnapshot in, samples out; registry.ts turns them into prom-client metrics.
// Names follow node_exporter with the rxtrace_ prefix, and keep the kernel's counter names
// in snake case (RcvbufErrors → rcvbuf_errors) so they can be grepped in the kernel source.
import { OwnerCgroups } from '../procnet/owner-cgroups.js';
import type { CounterSnapshot } from '../counters/snapshot.js';
import { tcpFamilies } from './tcp-families.js';
import { ownerLabelValues, type OwnerLabel } from './owner-labels.js';

export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface FamilyDef {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labelNames: readonly string[];
  read(snap: CounterSnapshot): Sample[];
}

/** RcvbufErrors → rcvbuf_errors, InCsumErrors → in_csum_errors. */
export function snakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

// ---- softnet_stat (global, per CPU) ----

const SOFTNET: [column: 'processed' | 'dropped' | 'time_squeeze' | 'received_rps' | 'flow_limit_count', metric: string, help: string][] = [
  ['processed', 'processed', 'Packets processed by the CPU backlog / NAPI (softnet_stat column 1).'],
  ['dropped', 'dropped', 'Packets dropped because the CPU backlog was full (net.core.netdev_max_backlog) (softnet_stat column 2).'],
  ['time_squeeze', 'times_squeezed', 'Times net_rx_action ran out of budget or time with work left (softnet_stat column 3).'],
  ['received_rps', 'received_rps', 'RPS inter-processor interrupts received (softnet_stat column 10).'],
  ['flow_limit_count', 'flow_limit_count', 'Packets dropped by the flow limit (net.core.flow_limit_*) (softnet_stat column 11).'],
];

function softnetFamilies(): FamilyDef[] {
  const out: FamilyDef[] = SOFTNET.map(([column, metric, help]) => ({
    name: `rxtrace_softnet_${metric}_total`,
    help,
    type: 'counter',
    labelNames: ['cpu'],
    // A column the kernel does not print (received_rps before 2.6.35, flow_limit_count before 3.11) has no sample.
    read: (snap) => snap.softnet.flatMap((r) => (r[column] === undefined ? [] : [{ labels: { cpu: String(r.cpu) }, value: r[column] }])),
  }));
  out.push({
    name: 'rxtrace_softnet_backlog_len',
    help: 'Packets in the CPU backlog at scrape time (softnet_stat column 12, Linux 5.10+).',
    type: 'gauge',
    labelNames: ['cpu'],
    read: (snap) => snap.softnet.filter((r) => r.backlog_len !== undefined).map((r) => ({ labels: { cpu: String(r.cpu) }, value: r.backlog_len! })),
  });
  return out;
}

// ---- /proc/net/snmp and snmp6: Udp, Udp6, UdpLite, UdpLite6; Ip, Ip6 receive side ----

const UDP_COUNTERS = ['InDatagrams', 'NoPorts', 'InErrors', 'OutDatagrams', 'RcvbufErrors', 'SndbufErrors', 'InCsumErrors', 'IgnoredMulti', 'MemErrors'] as const;
const UDP_HELP: Record<(typeof UDP_COUNTERS)[number], string> = {
  InDatagrams: 'Datagrams delivered to sockets.',
  NoPorts: 'Datagrams for a port with no socket.',
  InErrors: 'Datagrams not delivered for other reasons than NoPorts (includes RcvbufErrors and MemErrors).',
  OutDatagrams: 'Datagrams sent.',
  RcvbufErrors: 'Datagrams dropped because the socket receive buffer was full (SO_RCVBUF).',
  SndbufErrors: 'Datagrams not sent because the send buffer was full.',
  InCsumErrors: 'Datagrams dropped for a bad checksum.',
  IgnoredMulti: 'Broadcast/multicast datagrams with no socket to receive them.',
  MemErrors: 'Datagrams dropped because UDP memory reached net.ipv4.udp_mem (Linux 5.11+ counts these apart).',
};
/** proto label → where the counters are: snmp[row] or snmp6 with a prefix. */
const UDP_PROTOS: [proto: string, get: (snap: CounterSnapshot, name: string) => number | undefined][] = [
  ['udp', (s, n) => s.snmp.Udp?.[n]],
  ['udp6', (s, n) => s.snmp6[`Udp6${n}`]],
  ['udplite', (s, n) => s.snmp.UdpLite?.[n]],
  ['udplite6', (s, n) => s.snmp6[`UdpLite6${n}`]],
];

function udpFamilies(): FamilyDef[] {
  return UDP_COUNTERS.map((name) => ({
    name: `rxtrace_udp_${snakeCase(name)}_total`,
    help: `${UDP_HELP[name]} From /proc/net/snmp Udp/UdpLite and /proc/net/snmp6 Udp6/UdpLite6 (${name}), rxtrace's network namespace.`,
    type: 'counter' as const,
    labelNames: ['proto'],
    read: (snap: CounterSnapshot) => {
      const out: Sample[] = [];
      for (const [proto, get] of UDP_PROTOS) {
        const v = get(snap, name);
        if (v !== undefined) out.push({ labels: { proto }, value: v });
      }
      return out;
    },
  }));
}

const IP_COUNTERS = ['InReceives', 'InHdrErrors', 'InAddrErrors', 'InUnknownProtos', 'InDiscards', 'InDelivers', 'InNoRoutes', 'InTruncatedPkts'] as const;

function ipFamilies(): FamilyDef[] {
  return IP_COUNTERS.map((name) => ({
    name: `rxtrace_ip_${snakeCase(name)}_total`,
    help: `IP receive counter ${name} from /proc/net/snmp (Ip) and /proc/net/snmp6 (Ip6${name}), rxtrace's network namespace.`,
    type: 'counter' as const,
    labelNames: ['proto'],
    read: (snap: CounterSnapshot) => {
      const out: Sample[] = [];
      const v4 = snap.snmp.Ip?.[name];
      if (v4 !== undefined) out.push({ labels: { proto: 'ip' }, value: v4 });
      const v6 = snap.snmp6[`Ip6${name}`];
      if (v6 !== undefined) out.push({ labels: { proto: 'ip6' }, value: v6 });
      return out;
    },
  }));
}

// ---- NIC: /proc/net/dev (node_exporter's names) and /sys/class/net/*/statistics ----

const NETDEV: [column: 'rx_bytes' | 'rx_packets' | 'rx_errors' | 'rx_dropped' | 'rx_fifo_errors' | 'rx_frame_errors' | 'rx_compressed' | 'multicast', metric: string, help: string][] = [
  ['rx_bytes', 'bytes', 'Bytes received.'],
  ['rx_packets', 'packets', 'Packets received.'],
  ['rx_errors', 'errs', 'Receive errors.'],
  ['rx_dropped', 'drop', 'Packets dropped on receive: rx_dropped + rx_missed_errors (the drop column).'],
  ['rx_fifo_errors', 'fifo', 'Receive FIFO errors.'],
  ['rx_frame_errors', 'frame', 'Length, overrun, CRC and frame errors (the frame column).'],
  ['rx_compressed', 'compressed', 'Compressed packets received.'],
  ['multicast', 'multicast', 'Multicast packets received.'],
];

const SYSFS_RX = ['rx_missed_errors', 'rx_over_errors', 'rx_crc_errors', 'rx_length_errors', 'rx_nohandler'] as const;

function nicFamilies(): FamilyDef[] {
  const out: FamilyDef[] = NETDEV.map(([column, metric, help]) => ({
    name: `rxtrace_network_receive_${metric}_total`,
    help: `${help} From /proc/net/dev, rxtrace's network namespace.`,
    type: 'counter' as const,
    labelNames: ['device'],
    read: (snap: CounterSnapshot) => Object.entries(snap.dev).map(([device, row]) => ({ labels: { device }, value: row[column] })),
  }));
  for (const name of SYSFS_RX) {
    out.push({
      name: `rxtrace_network_receive_${name.slice(3)}_total`,
      help: `${name} from /sys/class/net/DEVICE/statistics (exact, where /proc/net/dev sums several).`,
      type: 'counter',
      labelNames: ['device'],
      read: (snap) => {
        const s: Sample[] = [];
        for (const [device, stats] of Object.entries(snap.statistics)) if (stats[name] !== undefined) s.push({ labels: { device }, value: stats[name] });
        return s;
      },
    });
  }
  return out;
}

// ---- protocol memory ----

const SOCKSTAT_PROTOS = ['UDP', 'UDP6', 'UDPLITE', 'UDPLITE6', 'RAW', 'RAW6'];
const LEVELS = ['min', 'pressure', 'max'] as const;

function memFamilies(): FamilyDef[] {
  return [
    {
      name: 'rxtrace_sockstat_inuse',
      help: 'Sockets in use, per protocol (/proc/net/sockstat and sockstat6).',
      type: 'gauge',
      labelNames: ['proto'],
      read: (snap) => SOCKSTAT_PROTOS.filter((p) => snap.sockstat[p]?.inuse !== undefined).map((p) => ({ labels: { proto: p }, value: snap.sockstat[p].inuse })),
    },
    {
      name: 'rxtrace_sockstat_udp_mem_bytes',
      help: 'Memory charged to UDP and UDP-Lite sockets (sockstat UDP mem × page size), compared against net.ipv4.udp_mem.',
      type: 'gauge',
      labelNames: [],
      read: (snap) => (snap.sockstat.UDP?.mem !== undefined ? [{ labels: {}, value: snap.sockstat.UDP.mem * snap.pageSize }] : []),
    },
    {
      name: 'rxtrace_udp_mem_limit_bytes',
      help: 'net.ipv4.udp_mem thresholds (min, pressure, max) in bytes; at max, UDP drops (MemErrors, sock:sock_exceed_buf_limit).',
      type: 'gauge',
      labelNames: ['level'],
      read: (snap) => {
        const m = snap.protoMem.udp_mem;
        return m ? LEVELS.map((level, i) => ({ labels: { level }, value: m[i] * snap.pageSize })) : [];
      },
    },
  ];
}

// ---- the socket tables: the top sockets by drops and by rx_queue ----

/** One exported socket: the sockets that share (table, local, comm) are summed (SO_REUSEPORT groups). */
export interface SocketGroup {
  table: string;
  local: string;
  comm: string;
  /** serve --labels: unit, container, pod values (owner-labels.ts). */
  owner?: Record<string, string>;
  rx_queue: number;
  drops: number;
  sockets: number;
}

/**
 * The sockets worth a series: the `top` groups with the most drops (drops > 0) and the `top`
 * with the most bytes queued (rx_queue > 0), so a socket that fills up shows before it drops.
 */
export function selectSockets(snap: CounterSnapshot, top: number, labels: readonly OwnerLabel[] = [], cgroups?: OwnerCgroups): SocketGroup[] {
  if (!snap.sockets) return [];
  const groups = new Map<string, SocketGroup>();
  for (const s of snap.sockets.values()) {
    const comm = [...new Set(s.owners.map((o) => o.comm))].sort().join(',');
    // The snapshot gives only dropping sockets' owners their cgroup keys; labels need every one's.
    const owner = labels.length ? ownerLabelValues(cgroups ? cgroups.owners(s.owners) : s.owners, labels) : undefined;
    const id = `${s.table}\u0000${s.local}\u0000${comm}${owner ? `\u0000${Object.values(owner).join('\u0000')}` : ''}`;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { table: s.table, local: s.local, comm, rx_queue: 0, drops: 0, sockets: 0 }));
    if (owner) g.owner = owner;
    g.rx_queue += s.rx_queue;
    g.drops += s.drops ?? 0;
    g.sockets++;
  }
  const all = [...groups.values()];
  const order = (a: SocketGroup, b: SocketGroup): number => a.table.localeCompare(b.table) || a.local.localeCompare(b.local) || a.comm.localeCompare(b.comm);
  const byDrops = all.filter((g) => g.drops > 0).sort((a, b) => b.drops - a.drops || order(a, b)).slice(0, top);
  const byQueue = all.filter((g) => g.rx_queue > 0).sort((a, b) => b.rx_queue - a.rx_queue || order(a, b)).slice(0, top);
  return [...new Set([...byDrops, ...byQueue])].sort(order);
}

function socketFamilies(top: number, ownerLabels: readonly OwnerLabel[]): FamilyDef[] {
  // The selection is made once per snapshot and shared by the two families.
  const cache = new WeakMap<CounterSnapshot, SocketGroup[]>();
  const cgroups = ownerLabels.length ? new OwnerCgroups() : undefined;
  const selected = (snap: CounterSnapshot): SocketGroup[] => {
    let s = cache.get(snap);
    if (!s) {
      if (cgroups && snap.sockets) cgroups.retain(new Set([...snap.sockets.values()].flatMap((x) => x.owners.map((o) => o.pid))));
      cache.set(snap, (s = selectSockets(snap, top, ownerLabels, cgroups)));
    }
    return s;
  };
  const labels = (g: SocketGroup): Labels => ({ table: g.table, local: g.local, comm: g.comm, ...g.owner });
  return [
    {
      name: 'rxtrace_socket_rx_queue_bytes',
      help: `Bytes queued for the socket to read (rx_queue, sk_rmem_alloc) from /proc/net/{udp,udp6,raw,raw6,icmp,icmp6}, every network namespace; the top ${top} sockets by rx_queue and by drops.`,
      type: 'gauge',
      labelNames: ['table', 'local', 'comm', ...ownerLabels],
      read: (snap) => selected(snap).map((g) => ({ labels: labels(g), value: g.rx_queue })),
    },
    {
      name: 'rxtrace_socket_drops_total',
      help: `The socket's own drop counter (drops, sk_drops) from the socket tables; the top ${top} sockets by drops and by rx_queue. Restarts from 0 when the socket is re-created.`,
      type: 'counter',
      labelNames: ['table', 'local', 'comm', ...ownerLabels],
      read: (snap) => selected(snap).map((g) => ({ labels: labels(g), value: g.drops })),
    },
    {
      name: 'rxtrace_socket_table_sockets',
      help: 'Sockets in each socket table, every network namespace (how many the top-N series leave out).',
      type: 'gauge',
      labelNames: ['table'],
      read: (snap) => {
        if (!snap.sockets) return [];
        const n = new Map<string, number>();
        for (const s of snap.sockets.values()) n.set(s.table, (n.get(s.table) ?? 0) + 1);
        return [...n].sort().map(([table, value]) => ({ labels: { table }, value }));
      },
    },
  ];
}

// ---- the sources themselves ----

// netstat: /proc/net/netstat (TcpExt); tcp_sockets: TCP sockets through sock_diag (snapshot.ts
// guards both reads under these names, so a failure shows here and not as zero counters).
export const SOURCES = ['softnet_stat', 'dev', 'statistics', 'snmp', 'snmp6', 'netstat', 'sockstat', 'udp_mem', 'owners', 'sockets', 'tcp_sockets', 'netns'] as const;

function sourceFamilies(): FamilyDef[] {
  return [
    {
      name: 'rxtrace_source_up',
      help: 'Whether rxtrace could read each kernel source in this scrape (1) or not (0; the reason is logged on stderr).',
      type: 'gauge',
      labelNames: ['source'],
      read: (snap) => {
        const failed = new Set(snap.errors.map((e) => (e.source.startsWith('netns:') ? 'netns' : e.source)));
        return SOURCES.map((source) => ({ labels: { source }, value: failed.has(source) ? 0 : 1 }));
      },
    },
  ];
}

/** Every family read from a snapshot; `top` bounds the per-socket ones. */
export function counterFamilies(top: number, ownerLabels: readonly OwnerLabel[] = []): FamilyDef[] {
  return [...softnetFamilies(), ...udpFamilies(), ...ipFamilies(), ...nicFamilies(), ...memFamilies(), ...tcpFamilies(), ...socketFamilies(top, ownerLabels), ...sourceFamilies()];
}
