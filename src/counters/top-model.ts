// The state behind `rxtrace top`: per socket, drops per second over the last interval and a
// trend over the last minute. With a tracer whose events are complete for the interval, a
// socket's rate is the number of drop events attributed to it (exact, and it covers sockets that
// closed). When events were lost or the tracer is behind, and for drops no tracepoint reports
// (socket filters, raw sockets since 6.9), it is the increase of the socket's `drops` counter.
import type { DropEvent, SocketInfo } from '../decode/events.js';
import type { FunnelInterval, SocketIdentity } from './funnel.js';
import type { SkMem } from './rcvbuf.js';
import type { CounterSnapshot } from './snapshot.js';

export type SortKey = 'drops/s' | 'drops' | 'rx_queue' | 'fill';
export const SORT_KEYS: readonly SortKey[] = ['drops/s', 'drops', 'rx_queue', 'fill'];

export interface TopRow extends SocketIdentity {
  /** Bytes queued (sk_rmem_alloc) at the last read. */
  rx_queue: number;
  /** sk_rcvbuf when known (from ss, or from a sock_rcvqueue_full event), else null. */
  rcvbuf: number | null;
  /** The socket's drops counter (absolute) at the last read. */
  drops: number | null;
  /** Drops per second over the last interval. */
  rate: number;
  /** Where `rate` came from. */
  source: 'events' | 'counters';
  /** Drops per second, one sample per interval over the last minute, oldest first. */
  trend: number[];
  /** Seen only in drop events: the socket was not in the last socket-table read (closed). */
  closed: boolean;
}

export interface EventTotals {
  /** Drop events attributed to a socket in the last interval. */
  attributed: number;
  /** sock_exceed_buf_limit and other protocol-wide events (match `global`). */
  global: number;
  /** Events that matched no socket, or several (`none`, `ambiguous`). */
  unattributed: number;
  /** Samples the kernel could not deliver (ring full) in the last interval. */
  lost: number;
  /** Errors from attribution, since the start. */
  errors: number;
  lastError?: string;
  /**
   * Every drop of the interval arrived as an event (none lost, the tracer not behind), so event
   * counts are exact per socket. When false, sockets in the tables take their counters' deltas.
   */
  complete: boolean;
}

/** Drops in a slot of sample time, as the tracer feed sums them (see cli/top-feed.ts). */
export interface DropSlot {
  /** CLOCK_MONOTONIC ns at the end of the slot. */
  endNs: number;
  /** [inode, drops] */
  sockets: [number, number][];
  global: number;
  unattributed: number;
}

export function fillOf(r: Pick<TopRow, 'rx_queue' | 'rcvbuf'>): number | null {
  return r.rcvbuf && r.rcvbuf > 0 ? r.rx_queue / r.rcvbuf : null;
}

const zeroTotals = (errors = 0, lastError?: string): EventTotals => ({ attributed: 0, global: 0, unattributed: 0, lost: 0, errors, lastError, complete: false });

export class TopModel {
  private slots: DropSlot[] = [];
  private readonly eventSockets = new Map<number, SocketInfo>();
  private readonly rcvbufFromEvents = new Map<number, number>();
  private lost = 0;
  private errors = 0;
  private lastError?: string;
  private readonly rows = new Map<number, TopRow>();
  /** Event totals of the last completed interval (rates = these / interval). */
  events: EventTotals = zeroTotals();
  last?: FunnelInterval;
  /** Sockets in the last table read that are not rows: no drops ever, nothing queued, no rate. */
  idle = 0;
  private readonly trendLength: number;

  /** `intervalSeconds` sets how many samples make a minute of trend. */
  constructor(
    intervalSeconds: number,
    public tracing: boolean,
  ) {
    this.trendLength = Math.max(2, Math.round(60 / intervalSeconds));
  }

  /** One drop event (a library user's tracer.on('drop')): a slot of its own. */
  onDrop(ev: DropEvent): void {
    if (ev.socket) {
      this.onSocket(ev.socket);
      const rb = ev.fields.sk_rcvbuf;
      if (typeof rb === 'number' && rb > 0) this.onRcvbuf(ev.socket.inode, rb);
    }
    this.onSlot({
      endNs: ev.monoNs,
      sockets: ev.socket ? [[ev.socket.inode, 1]] : [],
      global: !ev.socket && ev.match === 'global' ? 1 : 0,
      unattributed: !ev.socket && ev.match !== 'global' ? 1 : 0,
    });
  }

  onSlot(slot: DropSlot): void {
    this.slots.push(slot);
  }

  /** The socket details of an inode that events were attributed to. */
  onSocket(s: SocketInfo): void {
    this.eventSockets.set(s.inode, s);
  }

  onRcvbuf(inode: number, rcvbuf: number): void {
    this.rcvbufFromEvents.set(inode, rcvbuf);
  }

  onLost(lost: number): void {
    this.lost += lost;
  }

  onErrors(total: number, last?: string): void {
    this.errors = total;
    this.lastError = last;
  }

  onError(e: Error): void {
    this.errors++;
    this.lastError = e.message;
  }

  /**
   * Close an interval: the counters' deltas, the socket tables, and sk_rcvbuf where known.
   * `eventsComplete`: the tracer delivered every sample up to the snapshot (see EventTotals).
   */
  update(iv: FunnelInterval, snap: CounterSnapshot, rcvbufs?: ReadonlyMap<number, SkMem>, eventsComplete = true): void {
    this.last = iv;
    const seconds = iv.interval > 0 ? iv.interval : 1;
    const counterDeltas = new Map(iv.delta.sockets.map((s) => [s.inode, s.drops]));
    // Events sampled up to the socket-table read belong to this interval; later ones wait.
    const totals = zeroTotals(this.errors, this.lastError);
    const perSocket = new Map<number, number>();
    const later: DropSlot[] = [];
    for (const slot of this.slots) {
      if (slot.endNs > snap.monoNs) {
        later.push(slot);
        continue;
      }
      for (const [inode, n] of slot.sockets) {
        perSocket.set(inode, (perSocket.get(inode) ?? 0) + n);
        totals.attributed += n;
      }
      totals.global += slot.global;
      totals.unattributed += slot.unattributed;
    }
    this.slots = later;
    totals.lost = this.lost;
    this.lost = 0;
    totals.complete = this.tracing && eventsComplete && totals.lost === 0;
    // A rate from events when they are complete (exact, and they see sockets that closed);
    // otherwise, and for drops no tracepoint reports (socket filters, raw sockets), the counter.
    const complete = totals.complete;
    const seen = new Set<number>();
    let idle = 0;
    const touch = (inode: number, base: Omit<TopRow, 'rate' | 'source' | 'trend' | 'rcvbuf'>): void => {
      const ev = perSocket.get(inode) ?? 0;
      const counted = counterDeltas.get(inode) ?? 0;
      const inTables = !base.closed;
      const fromEvents = this.tracing && ev > 0 && (complete ? ev >= counted : !inTables);
      const rate = (fromEvents ? ev : counted) / seconds;
      let row = this.rows.get(inode);
      // A socket that never dropped, has nothing queued and is not dropping now has nothing to
      // show: on a host with 100,000 sockets, keeping (and sorting) each of them every interval
      // would cost the host more than the drops do. It is counted, and enters once it has data.
      if (rate === 0 && ev === 0 && !base.drops && base.rx_queue === 0 && (!row || row.trend.every((x) => x === 0))) {
        idle++;
        return;
      }
      seen.add(inode);
      if (!row) {
        row = { ...base, rcvbuf: null, rate: 0, source: 'counters', trend: [] };
        this.rows.set(inode, row);
      } else Object.assign(row, base);
      row.rate = rate;
      row.source = fromEvents ? 'events' : 'counters';
      row.rcvbuf = rcvbufs?.get(inode)?.rcvbuf ?? this.rcvbufFromEvents.get(inode) ?? row.rcvbuf;
      row.trend.push(rate);
      if (row.trend.length > this.trendLength) row.trend.splice(0, row.trend.length - this.trendLength);
    };
    for (const s of snap.sockets?.values() ?? []) {
      touch(s.inode, {
        table: s.table,
        inode: s.inode,
        local: s.local,
        remote: s.remote,
        netns: s.netns,
        owners: s.owners,
        rx_queue: s.rx_queue,
        drops: s.drops,
        closed: false,
      });
    }
    // Drops on sockets the table read missed (closed since, or in a namespace without a process).
    for (const inode of perSocket.keys()) {
      const s = this.eventSockets.get(inode);
      if (seen.has(inode) || !s) continue;
      touch(inode, { table: s.table, inode, local: s.local, remote: s.remote, netns: s.netns, owners: s.owners, rx_queue: s.rx_queue, drops: s.drops, closed: true });
    }
    for (const inode of this.rows.keys()) {
      if (!seen.has(inode)) {
        this.rows.delete(inode);
        this.rcvbufFromEvents.delete(inode);
        this.eventSockets.delete(inode);
      }
    }
    // Sockets known only from events that are neither in the tables nor dropping now.
    const waiting = new Set(later.flatMap((slot) => slot.sockets.map(([inode]) => inode)));
    for (const inode of this.eventSockets.keys()) if (!seen.has(inode) && !waiting.has(inode)) this.eventSockets.delete(inode);
    this.events = totals;
    this.idle = idle;
  }

  /** Every socket with something to show (see `idle`), sorted by `key`. */
  sorted(key: SortKey): TopRow[] {
    return sortRows([...this.rows.values()], key);
  }
}

/** Sorts in place by `key`, then by drops/s, drops, rx_queue and inode; returns `rows`. */
export function sortRows(rows: TopRow[], key: SortKey): TopRow[] {
  const primary: Record<SortKey, (r: TopRow) => number> = {
    'drops/s': (r) => r.rate,
    drops: (r) => r.drops ?? -1,
    rx_queue: (r) => r.rx_queue,
    fill: (r) => fillOf(r) ?? -1,
  };
  const k = primary[key];
  return rows.sort((a, b) => k(b) - k(a) || b.rate - a.rate || (b.drops ?? -1) - (a.drops ?? -1) || b.rx_queue - a.rx_queue || a.inode - b.inode);
}
