// The prom-client registry behind `rxtrace serve`: every family reads at scrape time, in its
// collect() callback. The kernel's counters come from one snapshot per scrape, shared by all
// families (prom-client collects them concurrently); the tracer's counts come from TracerFeed.
// Nothing here runs on a timer.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CounterSnapshot, SourceError } from '../counters/snapshot.js';
import type { DropsFeed } from './drops.js';
import { counterFamilies, type FamilyDef, type Sample } from './families.js';
import type { OwnerLabel } from './owner-labels.js';

export interface RegistryOptions {
  /** N: sockets and drop keys with a series of their own. */
  top: number;
  /** Owner labels on the per-socket and per-drop series (serve --labels; default none). */
  labels?: readonly OwnerLabel[];
  /** Reads the kernel's counters (readCounters); at most once per scrape. */
  read: () => Promise<CounterSnapshot>;
  /**
   * The tracer's counts, read at each scrape; undefined while tracing is unavailable
   * (rxtrace_tracing_up 0). Read after the scrape's snapshot, which counting mode updates it from.
   */
  feed?: () => DropsFeed | undefined;
  /** A snapshot younger than this is reused by the next scrape (default 1000 ms). */
  maxSnapshotAgeMs?: number;
  /** Add prom-client's process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
  /** Called with the sources that failed in a scrape (default: ignored). */
  onSourceErrors?: (errors: SourceError[]) => void;
}

const NONCONFORMING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * One read shared by every caller while it runs (prom-client collects all families at once),
 * and reused until it is `maxAgeMs` old. A failed read is never reused.
 */
export function sharedRead<T>(read: () => Promise<T>, maxAgeMs: number, now: () => number = () => performance.now()): () => Promise<T> {
  let last: { at: number; value: Promise<T>; done: boolean } | undefined;
  return () => {
    const t = now();
    if (last && (!last.done || t - last.at < maxAgeMs)) return last.value;
    const entry = { at: t, value: read(), done: false };
    last = entry;
    entry.value.then(
      () => {
        entry.done = true;
        entry.at = now();
      },
      () => {
        if (last === entry) last = undefined;
      },
    );
    return entry.value;
  };
}

function fill(metric: Counter<string> | Gauge<string>, samples: Sample[]): void {
  metric.reset();
  for (const s of samples) {
    if (metric instanceof Counter) metric.inc(s.labels, s.value);
    else metric.set(s.labels, s.value);
  }
}

function register(reg: Registry, def: FamilyDef, snapshot: () => Promise<CounterSnapshot>): void {
  const config = {
    name: def.name,
    help: def.help,
    labelNames: [...def.labelNames],
    registers: [reg],
  };
  if (def.type === 'counter') {
    const m: Counter<string> = new Counter({ ...config, collect: async () => fill(m, def.read(await snapshot())) });
  } else {
    const m: Gauge<string> = new Gauge({ ...config, collect: async () => fill(m, def.read(await snapshot())) });
  }
}

/** One exposition, and the way to say whether it reached the scraper. */
export interface Scrape {
  body: string;
  contentType: string;
  /** Call with true once the response was delivered in full, false if it was not (timeout, HEAD). */
  delivered(ok: boolean): void;
}

export interface MetricsRegistry {
  registry: Registry;
  /** Render /metrics; commit what it showed only when delivered(true) (see TopNDrops.view). */
  scrape(): Promise<Scrape>;
}

/** scrape() for any prom-client registry: nothing to commit. */
export function plainScrape(reg: Registry): () => Promise<Scrape> {
  return async () => ({ body: await reg.metrics(), contentType: reg.contentType, delivered: () => undefined });
}

/** A registry whose /metrics exposition is read from the kernel and the tracer at scrape time. */
export function buildRegistry(opts: RegistryOptions): MetricsRegistry {
  const reg = new Registry();
  // The commits of the scrape being rendered. prom-client calls every collect() synchronously at
  // the start of metrics(), so the drops family finds its scrape here; called any other way
  // (reg.metrics() directly), it commits at once.
  let commits: (() => void)[] | undefined;
  const snapshot = sharedRead(async () => {
    const snap = await opts.read();
    if (snap.errors.length > 0) opts.onSourceErrors?.(snap.errors);
    return snap;
  }, opts.maxSnapshotAgeMs ?? 1000);
  const feedOf = opts.feed ?? (() => undefined);

  const tracingUp: Gauge = new Gauge({
    name: 'rxtrace_tracing_up',
    help: 'Whether the drop tracer runs (1), or tracing is unavailable here and only the counters are served (0; the reason is on stderr).',
    registers: [reg],
    collect: () => tracingUp.set(feedOf() ? 1 : 0),
  });
  const drops: Counter<string> = new Counter({
    name: 'rxtrace_drops_total',
    help: `Socket receive drops seen by the tracer, per tracepoint, socket table, local address and owning process names; the top ${opts.top} keys by recent drops, the rest summed per event under local="other".`,
    labelNames: ['event', 'table', 'local', 'comm', ...(opts.labels ?? [])],
    registers: [reg],
    collect: async () => {
      // Taken before the first await: prom-client calls every collect() at once, synchronously.
      const scrapeCommits = commits;
      // Counting mode splits the counts over the sockets of this scrape's snapshot (serve's
      // read): wait for it. A failed read fails its own families, not this one.
      await snapshot().catch(() => undefined);
      drops.reset();
      const feed = feedOf();
      if (!feed) return;
      feed.drops.rebalance();
      const view = feed.drops.view();
      if (scrapeCommits) scrapeCommits.push(view.commit);
      else view.commit();
      for (const s of view.series) drops.inc({ ...s.labels }, s.value);
    },
  });
  const lost: Counter<string> = new Counter({
    name: 'rxtrace_lost_events_total',
    help: 'Trace events the kernel could not write because a per-CPU ring was full (PERF_RECORD_LOST), per CPU.',
    labelNames: ['cpu'],
    registers: [reg],
    collect: () => {
      lost.reset();
      const feed = feedOf();
      if (!feed) return;
      for (const [cpu, n] of [...feed.lostPerCpu].sort((a, b) => a[0] - b[0])) lost.inc({ cpu: String(cpu) }, n);
    },
  });
  const keys: Gauge = new Gauge({
    name: 'rxtrace_drops_keys',
    help: 'Distinct (event, table, local, comm) keys the tracer remembers; beyond the top N they count under local="other".',
    registers: [reg],
    collect: () => keys.set(feedOf()?.drops.stats().keys ?? 0),
  });

  for (const def of counterFamilies(opts.top, opts.labels)) register(reg, def, snapshot);
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: reg });
    // Gauges named *_total: promtool (and Prometheus' naming rules) reject them, and rxtrace's
    // own handles and requests say nothing about drops.
    for (const name of NONCONFORMING_DEFAULTS) reg.removeSingleMetric(name);
  }
  return {
    registry: reg,
    scrape: async () => {
      const mine: (() => void)[] = [];
      commits = mine;
      let rendering: Promise<string>;
      try {
        rendering = reg.metrics();
      } finally {
        commits = undefined;
      }
      const body = await rendering;
      return {
        body,
        contentType: reg.contentType,
        delivered: (ok) => {
          if (ok) for (const c of mine) c();
        },
      };
    },
  };
}
