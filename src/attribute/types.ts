// The seam between the tracer and attribution: a batch of decoded drops goes in, and comes out
// with `match`, `socket` (and `candidates`/`global`) filled in.
import type { DropEvent, LostEvent } from '../decode/events.js';
import type { UdpGateStats } from '../procnet/udp-gate.js';
import type { OwnerStats } from '../procnet/owner-cache.js';
import type { SocketTable } from '../procnet/sockets.js';

/** What attribution did, for the trace summary and the bench. */
export interface AttributionStats {
  /** Per socket table: 'sock_diag' or 'proc'. */
  source: Record<string, string>;
  /** Whole-table reads by table (start-up included); reads scoped to ports are not counted. */
  wholeReads: Record<string, number>;
  owners: OwnerStats;
  /** Namespace × UDP table pairs asked of the kernel, and carried over because nothing dropped there (procnet/udp-gate.ts). */
  udpGate?: UdpGateStats;
}

export interface Attributor {
  /**
   * Attribute every event of one batch, in place. May read /proc on a miss or when stale.
   * `records` is the whole batch in ring order, lost records included (for pairing adjacent events).
   */
  attribute(events: DropEvent[], records?: readonly (DropEvent | LostEvent)[]): Promise<void> | void;
  close(): void;
  /** What attribution did so far (source per table, whole-table reads, owner scans and waits). */
  stats?(): AttributionStats;
  /** Where to report what attribution could not do (each kind once); tracing goes on. */
  setErrorHandler?(onError: (e: Error) => void, onWarning?: (e: Error) => void): void;
}

/** ProcAttributor.create() options. */
export interface ProcAttributorOptions {
  procRoot?: string;
  /** Shortest gap between two table reads (default 20 ms): bounds /proc cost in a storm. */
  minReadIntervalMs?: number;
  /** Rescan owners (and discover new namespaces) at least this often while drops arrive (default 2000 ms). */
  ownerRescanMs?: number;
  /** Whether the `pointer` column holds real addresses: 'auto' reads kptr_restrict (1 + root = real). */
  pointers?: 'auto' | 'real' | 'hashed';
  /**
   * Where socket tables come from: 'auto' (default: RXTRACE_SOCKET_SOURCE, else sock_diag where
   * the kernel answers and /proc where not), 'sock_diag' or 'proc'.
   */
  source?: 'auto' | 'sock_diag' | 'proc';
  /** The only local ports the trace can see (--port): the start-up read lists just those. */
  ports?: readonly number[];
  /** The tables `ports` scopes (default udp and udp6); the others are read whole. */
  portTables?: readonly SocketTable[];
  /**
   * skb:kfree_skb is traced, so TCP drops may come: the start-up read (every later event's first
   * `before`) takes the TCP tables too, whole.
   */
  tcp?: boolean;
  /**
   * Longest an event waits for a full owner scan (the scan rate is bounded by its cost) before it
   * goes out marked `owners_pending` (default 1000 ms).
   */
  maxOwnerWaitMs?: number;
}
