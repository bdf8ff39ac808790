// A short history of socket-table reads. Each read covers some tables in every known netns and
// is stamped with CLOCK_MONOTONIC, the clock of sample times, so an event at time t can be set
// between the last read before it and the first read after it: the window in which a
// socket's `drops` must have risen if that socket dropped the packet.
import type { TableRead } from '../procnet/netns-tables.js';
import type { SocketTable } from '../procnet/sockets.js';

export type { NsRow, TableRead } from '../procnet/netns-tables.js';

/** A window() answer and the open interval of times (lo, hi) over which it stays the same. */
interface CachedWindow {
  version: number;
  lo: number;
  hi: number;
  before?: TableRead;
  after?: TableRead;
}

export class ReadHistory {
  private reads: TableRead[] = [];
  /** Bumped by add(): cached windows older than this are stale. */
  private version = 0;
  /** The last window per `tables` array (callers pass constant arrays), so a storm of events
   *  between the same two reads costs two comparisons each instead of a walk of the history. */
  private readonly cache = new Map<readonly SocketTable[], CachedWindow>();

  constructor(private readonly keep = 16) {}

  add(read: TableRead): void {
    this.reads.push(read);
    if (this.reads.length > this.keep) this.reads.shift();
    this.version++;
    if (this.cache.size > 64) this.cache.clear();
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
  window(t: number, tables: readonly SocketTable[]): { readonly before?: TableRead; readonly after?: TableRead } {
    // The cached object itself: no allocation per event in a storm.
    const c = this.cache.get(tables);
    if (c !== undefined && c.version === this.version && c.lo < t && t < c.hi) return c;
    let before: TableRead | undefined;
    let after: TableRead | undefined;
    // The answer only changes where t crosses a read's start or end: between the nearest such
    // boundaries on either side of t it is the same.
    let lo = -Infinity;
    let hi = Infinity;
    for (const r of this.reads) {
      if (!tables.every((tb) => r.tables.has(tb))) continue;
      if (r.endNs <= t) before = r;
      else if (r.startNs >= t && !after) after = r;
      for (const b of [r.startNs, r.endNs]) {
        if (b < t) lo = Math.max(lo, b);
        else if (b > t) hi = Math.min(hi, b);
        else hi = lo; // t sits on a boundary: answer it, cache nothing
      }
    }
    const w: CachedWindow = { version: this.version, lo, hi, before, after };
    this.cache.set(tables, w);
    return w;
  }

  /** The newest read covering every one of `tables`. */
  latestCovering(tables: readonly SocketTable[]): TableRead | undefined {
    for (let i = this.reads.length - 1; i >= 0; i--) if (tables.every((tb) => this.reads[i].tables.has(tb))) return this.reads[i];
    return undefined;
  }

  /** Newest read time covering all of `tables` (start), or -Infinity. */
  coveredUntil(tables: readonly SocketTable[]): number {
    for (let i = this.reads.length - 1; i >= 0; i--) {
      const r = this.reads[i];
      if (tables.every((tb) => r.tables.has(tb))) return r.startNs;
    }
    return -Infinity;
  }
}
