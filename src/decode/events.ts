// The objects rxtrace emits: one DropEvent per tracepoint hit, one LostEvent per ring overflow.
// Their keys are the NDJSON contract of DESIGN.md. The decoder's DropEvents are DecodedDrop
// instances (drop.ts): `time` and `fields` are accessors made on first access, and toJSON()
// (what JSON.stringify and util.inspect use) gives the plain object.

/**
 * `paired`: a kfree_skb next to the UDP event of the same packet on the same CPU, which named the
 * socket; `learned`: a kfree_skb whose rx_sk an earlier exact match tied to a socket still alive.
 */
export type MatchKind = 'pointer' | 'address' | 'drops' | 'paired' | 'learned' | 'global' | 'ambiguous' | 'none';

export interface SocketOwner {
  pid: number;
  comm: string;
  /** The owner's cgroup (v2 path; name=systemd on a v1-only host). Absent when unknown. */
  cgroup?: string;
  /** The systemd unit its cgroup path names (`nginx.service`, `docker-<id>.scope`). */
  unit?: string;
  /** The 64-hex container id its cgroup path names (docker, containerd, CRI-O, podman). */
  container?: string;
  /** The Kubernetes pod UID its cgroup path names. */
  pod?: string;
}

export interface SocketInfo {
  table: 'udp' | 'udp6' | 'raw' | 'raw6' | 'icmp' | 'icmp6' | 'tcp' | 'tcp6';
  inode: number;
  local: string;
  remote: string;
  rx_queue: number;
  drops: number | null;
  netns: number | null;
  owners: SocketOwner[];
  /** The socket was gone from /proc by the time of the lookup: these are its last known values. */
  stale?: boolean;
  /** No owner was found, but some processes' open files could not be read: it may be one of them. */
  owners_unknown?: boolean;
  /**
   * The socket's own cgroup (sock_diag INET_DIAG_CGROUP_ID, 5.8+: the cgroup of the process that
   * created it), and the unit, container and pod its path shows; known even when the owners are
   * not. Absent when unknown (the /proc source, older kernels, no cgroup2 mount).
   */
  cgroup?: string;
  unit?: string;
  container?: string;
  pod?: string;
  /**
   * The socket is new and its owners were not among its likely processes; the full scan that
   * would settle it was not allowed in time (its rate is bounded by its cost). Later events on
   * the same socket carry its owners.
   */
  owners_pending?: boolean;
}

export interface DropEvent {
  /** Wall-clock time of the sample, RFC 3339 with nanoseconds. */
  time: string;
  cpu: number;
  /** The task on the CPU when the event fired: often the sender, not the socket's owner. */
  pid: number;
  tid: number;
  /** `system:name` of the tracepoint. */
  event: string;
  /** Every non-common field of the format file, under the kernel's names. */
  fields: Record<string, unknown>;
  /** How `socket` was found (absent with --no-resolve). */
  match?: MatchKind;
  socket?: SocketInfo | null;
  /** Inodes of the sockets that could be the one, when `match` is `ambiguous`. */
  candidates?: number[];
  /** Protocol memory figures, when `match` is `global`. */
  global?: Record<string, unknown>;
  /** Sample time on CLOCK_MONOTONIC, ns (not serialised: see render/ndjson.ts). */
  monoNs: number;
  /**
   * With `aggregate`: how many identical drops this event stands for (the same tracepoint, CPU
   * and identifying fields, within one drain of the ring). `time`, `pid`, `tid` and the other
   * fields are the first one's. Absent: one drop.
   */
  count?: number;
  /** With `count`: CLOCK_MONOTONIC ns of the last of them (not serialised). */
  lastMonoNs?: number;
}

export interface LostEvent {
  time: string;
  event: 'lost';
  cpu: number;
  /** Samples the kernel could not write because the ring was full (or, with `cause`, did not write). */
  lost: number;
  /**
   * 'unsampled': the events counted these hits (read() on a quiet ring, or at close) but the kernel wrote no
   * sample and reported no loss; a bigger ring would not have kept them. Absent: the ring was full.
   */
  cause?: 'unsampled';
}
