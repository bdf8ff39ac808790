// What counting mode contributes to /metrics: per event, the kernel's own count (perf counting
// fds, src/counting.ts), split over the sockets in play by the rise of each socket's `drops`
// counter (sk_drops, from the snapshot's socket read: sock_diag's SK_MEMINFO_DROPS where the
// kernel answers) between two scrapes. No event reaches user space, so a drop storm costs the sender
// what `perf stat` costs. The split never guesses (docs/serve.md, "Counting mode"):
//  - A socket claims its drops rise for the event that reports its table (UDP tables:
//    udp_fail_queue_rcv_skb; ping and raw: sock_rcvqueue_full), and only when its local port
//    matches --port. With --filter no socket claims: the filter may have counted a subset.
//  - Claims are paid from the event's pool: this scrape's count plus what the last scrape left
//    unclaimed. The socket tables are read before the counters, so a drop between the two reads
//    is counted now and claimed at the next scrape: the pool holds it for one scrape.
//  - When the claims exceed the pool (some drops had no event: udp_mem drops on 6.18, checksum
//    failures), one claiming socket takes the pool; several take nothing (which of them the
//    events saw is unknown), and the pool goes to local="unknown".
//  - What stays unclaimed for a scrape goes to local="unknown" ("global" for
//    sock_exceed_buf_limit): drops of sockets that closed between two scrapes, or of events
//    that name no socket. So every event's series sum to the kernel's count, one scrape late.
import { ownerLabelValues, type OwnerLabel } from './owner-labels.js';
import type { SocketSnapshotRow } from '../sockets.js';
import { TopNDrops, type DropKey, type TopNOptions } from './top-n.js';

/** The socket tables whose drops each event reports. */
export const EVENT_TABLES: Readonly<Record<string, readonly string[]>> = {
  'udp:udp_fail_queue_rcv_skb': ['udp', 'udp6'],
  'sock:sock_rcvqueue_full': ['icmp', 'icmp6', 'raw', 'raw6'],
};

/** The `local` label of an event's drops that no socket claimed. */
export function unclaimedLocal(event: string): string {
  return event === 'sock:sock_exceed_buf_limit' ? 'global' : 'unknown';
}

export interface CountingFeedOptions extends Omit<TopNOptions, 'events'> {
  /** The counted events (`system:name`). */
  events: readonly string[];
  cpus?: readonly number[];
  /** --port: only sockets on this local port claim drops. */
  port?: number;
  /** false with --filter: the counts may be a subset of each socket's drops, so none claims. */
  split?: boolean;
  /** Owner labels to add to each socket's key (serve --labels). */
  labels?: readonly OwnerLabel[];
}

function localPort(local: string): number {
  return Number(local.slice(local.lastIndexOf(':') + 1));
}

function socketKey(event: string, s: SocketSnapshotRow, labels: readonly OwnerLabel[]): DropKey {
  const comm = [...new Set(s.owners.map((o) => o.comm))].sort().join(',');
  const key: DropKey = { event, table: s.table, local: s.local, comm };
  return labels.length ? Object.assign(key, ownerLabelValues(s.owners, labels)) : key;
}

/** Counts from counting fds and socket tables, read by the registry at scrape time. */
export class CountingFeed {
  readonly drops: TopNDrops;
  /** Counting loses nothing: exported at 0 so that the series exist as in events mode. */
  readonly lostPerCpu = new Map<number, number>();
  private readonly tableEvent = new Map<string, string>();
  /** Events some socket may claim drops of. */
  private readonly claimable = new Set<string>();
  private prevCounts?: Map<string, number>;
  private prevDrops?: Map<number, number>;
  /** Per event: counted, not yet claimed, held one scrape for the sockets read before it. */
  private readonly pool = new Map<string, number>();

  constructor(private readonly opts: CountingFeedOptions) {
    this.drops = new TopNDrops({ ...opts, events: opts.events });
    for (const c of opts.cpus ?? []) this.lostPerCpu.set(c, 0);
    if (opts.split !== false) {
      for (const e of opts.events) {
        for (const t of EVENT_TABLES[e] ?? []) {
          this.tableEvent.set(t, e);
          this.claimable.add(e);
        }
      }
    }
  }

  /**
   * One scrape: `counts` (each event's count since the counters opened) read just after
   * `sockets` (every socket by inode). The first call sets the baselines.
   */
  update(counts: ReadonlyMap<string, number>, sockets: ReadonlyMap<number, SocketSnapshotRow> | undefined): void {
    const prevCounts = this.prevCounts;
    const prevDrops = this.prevDrops;
    this.prevCounts = new Map(counts);
    // A failed socket read keeps the old baselines: the next good read claims both intervals.
    if (sockets) this.prevDrops = new Map([...sockets.values()].filter((s) => s.drops !== null).map((s) => [s.inode, s.drops!]));
    const claims = new Map<string, { s: SocketSnapshotRow; n: number }[]>();
    if (sockets && prevDrops) {
      for (const s of sockets.values()) {
        const event = this.tableEvent.get(s.table);
        if (!event || s.drops === null) continue;
        if (this.opts.port !== undefined && localPort(s.local) !== this.opts.port) continue;
        // A socket not seen before was created since the last read: all its drops are new.
        const n = s.drops - (prevDrops.get(s.inode) ?? 0);
        if (n <= 0) continue;
        let list = claims.get(event);
        if (!list) claims.set(event, (list = []));
        list.push({ s, n });
      }
    }
    for (const event of this.opts.events) {
      const counted = Math.max(0, (counts.get(event) ?? 0) - (prevCounts?.get(event) ?? 0));
      const held = this.pool.get(event) ?? 0;
      let pool = held + counted;
      const list = claims.get(event) ?? [];
      const claimed = list.reduce((n, c) => n + c.n, 0);
      if (claimed <= pool) {
        for (const c of list) this.drops.add(socketKey(event, c.s, this.opts.labels ?? []), c.n);
        pool -= claimed;
      } else if (list.length === 1) {
        this.drops.add(socketKey(event, list[0].s, this.opts.labels ?? []), pool);
        pool = 0;
      }
      // Hold at most this scrape's count; older unclaimed drops (or all, without a split) are unknown.
      const keep = this.claimable.has(event) && claimed <= held + counted ? Math.min(pool, counted) : 0;
      const unknown = pool - keep;
      if (unknown > 0) this.drops.add({ event, table: '', local: unclaimedLocal(event), comm: '' }, unknown);
      this.pool.set(event, keep);
    }
  }

  /** Nothing to detach: the registry stops asking. */
  close(): void {}
}
