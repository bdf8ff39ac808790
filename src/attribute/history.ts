// A short history of socket-table reads. Each read covers some tables in every known netns and
// is stamped with CLOCK_MONOTONIC, the clock of sample times, so an event at time t can be set
// between the last read before it and the first read after it: the window in which a
// socket's `drops` must have risen if that socket dropped the packet.
import type { RxtraceError } from '../errors.js';
import type { SocketRow, SocketTable } from '../procnet/sockets.js';

export interface NsRow extends SocketRow {
  /** Inode of the network namespace whose table listed this socket. */
  netns: number;
  /** The socket's cgroup v2 inode (sock_diag INET_DIAG_CGROUP_ID), when known: its owners' cgroup. */
  cgroupId?: string;
}

export interface TableRead {
  /** CLOCK_MONOTONIC ns when the read started (a socket in it existed at or after this time). */
  startNs: number;
  /** CLOCK_MONOTONIC ns when the read finished (every counter in it was read by then). */
  endNs: number;
  tables: ReadonlySet<SocketTable>;
  /**
   * Tables this read covers only in part: just the sockets on these local ports (a sock_diag
   * read scoped by the kernel). A table in `tables` and not here was read whole.
   */
  ports?: ReadonlyMap<SocketTable, ReadonlySet<number>>;
  rows: Map<number, NsRow>;
  /** Some rows came from sock_diag, which has no `pointer` column: no use to the pointer strategy. */
  noPointers?: boolean;
  /** Tables (or namespaces) this read could not cover, and why: a parse error, EACCES, EMFILE. */
  errors?: RxtraceError[];
}

/** A window() answer and the open interval of times (lo, hi) over which it stays the same. */
interface CachedWindow {
  version: number;
  lo: number;
  hi: number;
  before?: TableRead;
  after?: TableRead;
}

/** The `port` of a need about every socket whose `pointer` column must be real (kfree_skb rx_sk). */
export const NEED_POINTERS = -2;

export class ReadHistory {
  private reads: TableRead[] = [];
  /** Bumped by add(): cached windows older than this are stale. */
  private version = 0;
  /** The last window per `tables` array (callers pass constant arrays), so a storm of events
   *  between the same two reads costs two comparisons each instead of a walk of the history. */
  private readonly cache = new Map<readonly SocketTable[], Map<number, CachedWindow>>();

  constructor(private readonly keep = 16) {}

  /** The start-up read, kept while newer ones rotate: the `before` of a port's first drop. */
  private pinned?: TableRead;

  add(read: TableRead, pin = false): void {
    this.reads.push(read);
    if (pin) this.pinned = read;
    if (this.reads.length > this.keep) this.reads.splice(this.reads[0] === this.pinned ? 1 : 0, 1);
    this.version++;
    if (this.cache.size > 64) this.cache.clear();
  }

  /**
   * Does read r cover `tables` for a need about local port `port` (-1: a need about every
   * socket of those tables, which only a whole read covers)?
   */
  static covers(r: TableRead, tables: readonly SocketTable[], port = -1): boolean {
    if (port === NEED_POINTERS && r.noPointers) return false;
    for (const tb of tables) {
      if (!r.tables.has(tb)) return false;
      const only = r.ports?.get(tb);
      if (only !== undefined && (port < 0 || !only.has(port))) return false;
    }
    return true;
  }

  /** The newest read covering `table`. */
  latest(table?: SocketTable): TableRead | undefined {
    for (let i = this.reads.length - 1; i >= 0; i--) if (!table || this.reads[i].tables.has(table)) return this.reads[i];
    return undefined;
  }

  /**
   * The reads that bracket time t for every one of `tables`: `before` finished before t (its
   * counters predate the event), `after` started after t (its counters include it).
   */
  window(t: number, tables: readonly SocketTable[], port = -1): { readonly before?: TableRead; readonly after?: TableRead } {
    // The cached object itself: no allocation per event in a storm.
    let byPort = this.cache.get(tables);
    if (byPort === undefined) this.cache.set(tables, (byPort = new Map()));
    const c = byPort.get(port);
    if (c !== undefined && c.version === this.version && c.lo < t && t < c.hi) return c;
    let before: TableRead | undefined;
    let after: TableRead | undefined;
    // The answer only changes where t crosses a read's start or end: between the nearest such
    // boundaries on either side of t it is the same.
    let lo = -Infinity;
    let hi = Infinity;
    for (const r of this.reads) {
      if (!ReadHistory.covers(r, tables, port)) continue;
      if (r.endNs <= t) before = r;
      else if (r.startNs >= t && !after) after = r;
      for (const b of [r.startNs, r.endNs]) {
        if (b < t) lo = Math.max(lo, b);
        else if (b > t) hi = Math.min(hi, b);
        else hi = lo; // t sits on a boundary: answer it, cache nothing
      }
    }
    const w: CachedWindow = { version: this.version, lo, hi, before, after };
    if (byPort.size > 256) byPort.clear();
    byPort.set(port, w);
    return w;
  }

  /** The newest read covering every one of `tables`. */
  latestCovering(tables: readonly SocketTable[], port = -1): TableRead | undefined {
    for (let i = this.reads.length - 1; i >= 0; i--) if (ReadHistory.covers(this.reads[i], tables, port)) return this.reads[i];
    return undefined;
  }

  /** Newest read time covering all of `tables` (start), or -Infinity. */
  coveredUntil(tables: readonly SocketTable[], port = -1): number {
    for (let i = this.reads.length - 1; i >= 0; i--) {
      const r = this.reads[i];
      if (ReadHistory.covers(r, tables, port)) return r.startNs;
    }
    return -Infinity;
  }
}
