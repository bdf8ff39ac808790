// What the tracer contributes to /metrics: each drop becomes one increment of a bounded
// rxtrace_drops_total key (top-n.ts), each lost record adds to its CPU's lost count. Listening
// with 'drop'/'lost' listeners (no iterator) means the tracer never queues for us: a scrape
// reads counts, never events.
import type { DropEvent, LostEvent } from '../decode/events.js';
import type { RxTracer } from '../tracer.js';
import { ownerLabelValues, type OwnerLabel } from './owner-labels.js';
import { TopNDrops, type DropKey, type TopNOptions } from './top-n.js';

/**
 * The labels of one drop. Unmatched drops keep what the event itself says: the UDP event's
 * destination (`daddr`, the local address) when there is one, else 'global' for protocol memory
 * (match=global) or 'unknown'. comm is every owner's process name, sorted and joined by ','.
 */
export function dropKeyOf(d: DropEvent, labels: readonly OwnerLabel[] = []): DropKey {
  const s = d.socket;
  if (s) {
    const comms = [...new Set(s.owners.map((o) => o.comm))].sort();
    const key: DropKey = { event: d.event, table: s.table, local: s.local, comm: comms.join(',') };
    return labels.length ? Object.assign(key, ownerLabelValues(s.owners, labels)) : key;
  }
  const daddr = d.fields.daddr;
  const local = typeof daddr === 'string' && daddr !== '' ? daddr : d.match === 'global' ? 'global' : 'unknown';
  return { event: d.event, table: '', local, comm: '' };
}

export interface TracerFeedOptions extends Omit<TopNOptions, 'events'> {
  /** CPUs traced: their lost counters are exported from the start, at 0. */
  cpus?: readonly number[];
  /** Owner labels to add to each key (serve --labels). */
  labels?: readonly OwnerLabel[];
}

/** What the registry reads at scrape time: bounded drop counters and lost counts per CPU. */
export interface DropsFeed {
  readonly drops: TopNDrops;
  readonly lostPerCpu: ReadonlyMap<number, number>;
}

/** Counts from one tracer, read by the registry at scrape time. */
export class TracerFeed implements DropsFeed {
  readonly drops: TopNDrops;
  readonly lostPerCpu = new Map<number, number>();
  private detach?: () => void;

  constructor(
    readonly tracer: RxTracer,
    opts: TracerFeedOptions,
  ) {
    this.drops = new TopNDrops({ ...opts, events: tracer.plan.events.map((e) => e.compiled.event) });
    for (const c of opts.cpus ?? []) this.lostPerCpu.set(c, 0);
    // An aggregated event (the tracer's aggregate option) stands for `count` drops.
    const labels = opts.labels ?? [];
    const onDrop = (d: DropEvent): void => this.drops.add(dropKeyOf(d, labels), d.count ?? 1);
    const onLost = (l: LostEvent): void => {
      this.lostPerCpu.set(l.cpu, (this.lostPerCpu.get(l.cpu) ?? 0) + l.lost);
    };
    tracer.on('drop', onDrop);
    tracer.on('lost', onLost);
    this.detach = () => {
      tracer.off('drop', onDrop);
      tracer.off('lost', onLost);
    };
  }

  /** Stop listening (the counts stay readable). */
  close(): void {
    this.detach?.();
    this.detach = undefined;
  }
}
