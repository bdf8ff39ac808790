// What `rxtrace explain` reasons over (one watched window, gathered by gather.ts) and what it
// says (findings). The rules (one file per place on the receive path) are pure functions of
// ExplainInput, so each is unit-tested on numbers alone.
import type { SocketOwner } from '../decode/events.js';
import type { FunnelInterval, SocketIdentity } from '../counters/funnel.js';

/** The sysctls the rules quote and suggest; absent when unreadable (another netns, an old kernel). */
export interface Sysctls {
  'net.core.rmem_default'?: number;
  'net.core.rmem_max'?: number;
  'net.core.netdev_max_backlog'?: number;
  'net.core.netdev_budget'?: number;
  'net.core.netdev_budget_usecs'?: number;
  'net.core.somaxconn'?: number;
  'net.ipv4.udp_rmem_min'?: number;
  /** min, pressure, max (pages) */
  'net.ipv4.udp_mem'?: [number, number, number];
  'net.ipv4.tcp_mem'?: [number, number, number];
}

/** What the tracer saw on one socket in the window: drops by cause, where the event says it. */
export interface TracedSocket {
  /** udp_fail_queue_rcv_skb rc = -12 (ENOMEM: the socket's buffer) */
  rcvbuf: number;
  /** udp_fail_queue_rcv_skb rc = -105 (ENOBUFS: the protocol's memory) */
  protomem: number;
  /** other drop events matched to it (sock_rcvqueue_full…) */
  other: number;
}

export interface Traced {
  /** Drop events delivered per tracepoint. */
  events: Record<string, number>;
  /** Events the kernel lost (ring full): the tallies below are then low. */
  lost: number;
  /** Socket inode → tallies. */
  sockets: Record<string, TracedSocket>;
  /** sock_exceed_buf_limit on receive, by protocol name (UDP, UDPv6, TCP…). */
  exceed: Record<string, number>;
  /** Drops matched to no socket (ambiguous, none). */
  unmatched: number;
}

/** A TCP listener over the window (sock_diag at its start and end): its drops are accept-queue overflows. */
export interface Listener {
  table: string;
  inode: number;
  local: string;
  netns: number | null;
  owners: SocketOwner[];
  /** The rise of the listener's sk_drops (SK_MEMINFO_DROPS) in the window. */
  drops: number;
  /** At the window's end: connections waiting to be accepted, and the listen() backlog (capped by somaxconn). */
  accept_queue: number;
  backlog: number;
}

export interface ExplainInput {
  /** The funnel over the window (counters/funnel.ts): deltas, gauges, sockets whose drops rose. */
  interval: FunnelInterval;
  sysctl: Sysctls;
  /** sk_rcvbuf and sk_rmem_alloc by inode (sock_diag through ss), where known. */
  skmem: Record<string, { rcvbuf: number; rmem_alloc: number }>;
  /** null when tracing was not possible; the counters still speak. */
  traced: Traced | null;
  /** TCP listeners whose drops rose in the window; absent when sock_diag could not be read. */
  listeners?: Listener[];
  /** Number of online CPUs (for RPS masks). */
  cpus: number;
  /** Only sockets that match these (socket findings); host-wide findings always show. */
  keepSocket?: (s: { local: string; owners: SocketOwner[] }) => boolean;
}

export type Place = 'nic' | 'softnet' | 'ip' | 'udp' | 'tcp' | 'socket' | 'listener';

/** The socket a finding is about: the same identity `stats` and `top` print. */
export type FindingSocket = SocketIdentity;

export type Fix =
  | { kind: 'setsockopt'; option: 'SO_RCVBUF'; value: number; text: string }
  | { kind: 'sysctl'; name: string; current: number | string | null; value: number | string; command: string; text: string }
  | { kind: 'ethtool'; device: string; command: string; text: string }
  | { kind: 'sysfs'; path: string; value: string; command: string; text: string }
  | { kind: 'app'; text: string };

export interface Finding {
  place: Place;
  /** Stable name, documented in the README (socket_rcvbuf, udp_mem, netdev_max_backlog…). */
  cause: string;
  /** Packets dropped at this place in the window (0 for a warning such as time_squeeze). */
  drops: number;
  socket: FindingSocket | null;
  /** The numbers from this host that the finding stands on, under the kernel's names. */
  evidence: Record<string, unknown>;
  /** What to change, the most direct first. rxtrace changes nothing itself. */
  fixes: Fix[];
  /** One sentence for people: what happens and why, with the numbers. */
  summary: string;
}
