// `rxtrace serve`: /metrics for Prometheus (drops from the tracer, bounded to the top N keys;
// the receive funnel and the top sockets read from the kernel at scrape time) and /healthz.
// Where tracing is impossible (not root) it still serves the counters, and says so.
// Two modes: counting (default: kernel counters per tracepoint, split over the sockets by their
// drops counters at each scrape; a drop costs the sender what `perf stat` costs) and events
// (every drop sampled and attributed, as `trace` does: exact for sockets that close in between).
import type { Command } from 'commander';
import { openCounters, type DropCounters } from '../counting.js';
import { SnapshotReader, type SourceError } from '../counters/snapshot.js';
import { onlineCpus } from '../cpus.js';
import { RxtraceError } from '../errors.js';
import { CountingFeed } from '../metrics/counting-feed.js';
import { TracerFeed, type DropsFeed } from '../metrics/drops.js';
import { buildRegistry } from '../metrics/registry.js';
import { DEFAULT_LISTEN, formatAddress, isLoopback, parseListen, startMetricsServer } from '../metrics/server.js';
import { openTracer, type RxTracer } from '../tracer.js';
import { reportTracerProblems } from './tracer-reports.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { onStopSignals } from './lifecycle.js';
import { collectList, modeOption, portNumber, positiveInt, type DropMode } from './options.js';
import { labelsOption, type OwnerLabel } from '../metrics/owner-labels.js';

export interface ServeCliOptions {
  listen: string;
  top: number;
  event?: string[];
  filter?: string;
  port?: number;
  trace: boolean;
  ringPages?: number;
  mode: DropMode;
  labels?: OwnerLabel[];
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve Prometheus metrics: drops per socket and process from the tracer, the receive funnel counters, the top sockets')
    .option('--listen <host:port>', 'address to listen on; loopback unless told otherwise (0.0.0.0:9469 for every interface)', DEFAULT_LISTEN)
    .option('--top <n>', 'sockets and drop keys with a series of their own; the rest are summed as local="other"', positiveInt('--top'), 20)
    .option('-e, --event <subsys:name...>', 'also trace these tracepoints (comma-separated or repeated)', collectList)
    .option('-p, --port <n>', 'trace only drops on this local port (in the kernel where the event has a port field); the counters stay host-wide', portNumber)
    .option('--filter <expr>', "ftrace filter applied in the kernel, e.g. 'dport >= 5000 && dport < 6000'")
    .option('--no-trace', 'serve the counters only, without the drop tracer')
    .option('--mode <mode>', 'counting: kernel counters, split over sockets at each scrape (cheapest); events: every drop sampled and attributed (exact for short-lived sockets)', modeOption, 'counting')
    .option('--labels <names>', 'owner labels on the per-socket and per-drop series: unit, container, pod (comma-separated; each multiplies series, see the README)', labelsOption)
    .option('--ring-pages <n>', 'with --mode events: data pages per CPU ring, a power of two (default: 64 MiB over all CPUs, 2-8 MiB per ring)', positiveInt('--ring-pages'))
    .action(async (opts: ServeCliOptions) => {
      process.exitCode = await runServe(opts);
    });
}

const say = (s: string): void => void process.stderr.write(`rxtrace: ${s}\n`);

/** Where the drop counts come from: a tracer (events mode) or counting fds (counting mode). */
type DropSource = { tracer: RxTracer } | { counters: DropCounters };

/**
 * Open the tracer or the counters, or explain why not. A usage error (bad -e) still fails the
 * command; an abort (a stop signal during start-up) resolves undefined, with nothing left open.
 */
async function trySource(opts: ServeCliOptions, signal: AbortSignal): Promise<DropSource | undefined> {
  if (!opts.trace) {
    say('tracing disabled (--no-trace): serving the counters only; rxtrace_tracing_up is 0');
    return undefined;
  }
  try {
    if (opts.mode === 'counting') return { counters: await openCounters({ events: opts.event, port: opts.port, filter: opts.filter, notice: say }) };
    // aggregate: /metrics only counts, so the reader thread counts identical drops for us.
    return { tracer: await openTracer({ events: opts.event, port: opts.port, filter: opts.filter, ringPages: opts.ringPages, notice: say, signal, aggregate: true }) };
  } catch (e) {
    if (signal.aborted && e instanceof RxtraceError && e.code === 'ABORT_ERR') return undefined;
    if (exitCodeFor(e) === EXIT.USAGE || !(e instanceof RxtraceError)) throw e;
    say(`tracing unavailable: ${e.message}${e.hint ? ` (${e.hint})` : ''}; serving the counters only; rxtrace_tracing_up is 0`);
    return undefined;
  }
}

export async function runServe(opts: ServeCliOptions): Promise<number> {
  const listen = parseListen(opts.listen);
  if (opts.mode === 'counting' && opts.ringPages !== undefined) {
    throw new RxtraceError('EUSAGE', '--ring-pages applies to --mode events only: counting mode has no rings', { hint: 'drop --ring-pages, or add --mode events' });
  }
  let tracer: RxTracer | undefined;
  let counters: DropCounters | undefined;
  let counting: CountingFeed | undefined;
  let feed: DropsFeed | undefined;

  // Stop signals first, before any start-up work (docs/faults.md B11): one during start-up
  // aborts it (openTracer undoes its tracefs mount and perf fds), then serve exits 0. The first
  // SIGTERM/SIGINT/SIGHUP stops; any second one exits at once with 130 (lifecycle.ts).
  const startup = new AbortController();
  let stopSignal: NodeJS.Signals | undefined;
  let onStop: ((sig: NodeJS.Signals) => void) | undefined;
  const unsignal = onStopSignals((sig) => {
    stopSignal = sig;
    startup.abort();
    onStop?.(sig);
  });
  try {
    if (stopSignal) {
      say(`stopped during start-up (${stopSignal})`);
      return EXIT.OK;
    }
    // A failing source is reported when it starts failing, not at every scrape.
    let failing = new Set<string>();
    const onSourceErrors = (errors: SourceError[]): void => {
      const now = new Set<string>();
      for (const e of errors) {
        now.add(e.source);
        if (!failing.has(e.source)) say(`cannot read ${e.source}: ${e.message} (${e.code}); rxtrace_source_up is 0`);
      }
      failing = now;
    };
    // One reader for the whole run: owner scans are reused and bounded by their cost, not made
    // per scrape (see SnapshotReader).
    const reader = new SnapshotReader();
    const metrics = buildRegistry({
      top: opts.top,
      labels: opts.labels,
      read: async () => {
        const snap = await reader.read();
        if (snap.errors.length === 0) failing = new Set();
        // Counted after the socket tables were read: see counting-feed.ts.
        if (counters && counting) counting.update(counters.read(), snap.sockets);
        return snap;
      },
      feed: () => feed,
      onSourceErrors,
    });

    // Bind first: an address in use fails at once, before any perf fd is opened. Until the
    // tracer runs (a fraction of a second), a scrape says rxtrace_tracing_up 0.
    const server = await startMetricsServer({ ...listen, scrape: metrics.scrape, onScrapeError: (e) => say(`scrape failed: ${e instanceof Error ? e.message : String(e)}`) });
    try {
      const source = stopSignal ? undefined : await trySource(opts, startup.signal);
      if (source && 'tracer' in source) tracer = source.tracer;
      if (source && 'counters' in source) counters = source.counters;
    } catch (e) {
      await server.close();
      throw e;
    }
    if (stopSignal) {
      counters?.close();
      await Promise.all([server.close(), tracer?.close()]);
      say(`stopped during start-up (${stopSignal})`);
      return EXIT.OK;
    }
    if (tracer) {
      feed = new TracerFeed(tracer, { top: opts.top, cpus: onlineCpus(), labels: opts.labels });
      reportTracerProblems(tracer);
    }
    if (counters) {
      // The baselines: the sockets' drops now, and the counts so far (~0: just opened).
      const c = new CountingFeed({ top: opts.top, cpus: onlineCpus(), events: counters.events, port: opts.port, split: opts.filter === undefined, labels: opts.labels });
      c.update(counters.read(), (await reader.read()).sockets);
      counting = c;
      feed = c;
    }
    const where = formatAddress(server.address);
    if (!isLoopback(listen.host)) say(`listening beyond loopback on ${where}: whoever reaches it can read socket addresses and process names`);
    const traced = tracer
      ? `tracing ${tracer.plan.events.map((e) => e.compiled.event).join(', ')}`
      : counters
        ? `counting ${counters.events.join(', ')}`
        : 'not tracing';
    say(`serving http://${where}/metrics (${traced}; top ${opts.top}); SIGTERM to stop`);

    const sig = stopSignal ?? (await new Promise<NodeJS.Signals>((resolve) => (onStop = resolve)));
    if (feed instanceof TracerFeed) feed.close();
    await Promise.all([server.close(), tracer?.close()]);
    counters?.close();
    // Counting never loses a drop (no ring to overflow): the line keeps its shape in both modes.
    say(`stopped (${sig})${tracer ? `: ${tracer.stats().lost} events lost` : counters ? ': 0 events lost' : ''}`);
    return EXIT.OK;
  } finally {
    unsignal();
  }
}
