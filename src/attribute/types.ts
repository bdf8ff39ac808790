// The seam between the tracer and attribution: a batch of decoded drops goes in, and comes out
// with `match`, `socket` (and `candidates`/`global`) filled in.
import type { DropEvent, LostEvent } from '../decode/events.js';
import type { OwnerStats } from '../procnet/owner-cache.js';

/** What attribution did, for the trace summary and the bench. */
export interface AttributionStats {
  /** Per socket table: 'sock_diag' or 'proc'. */
  source: Record<string, string>;
  /** Whole-table reads by table (start-up included); reads scoped to ports are not counted. */
  wholeReads: Record<string, number>;
  owners: OwnerStats;
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
