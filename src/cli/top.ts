// `rxtrace top`: the live view. On a TTY, a full screen redrawn once per interval (at most twice
// a second): the funnel's rates with the losing layer marked, then the sockets by drops/s.
// Keys: q quits, s changes the sort, p pauses. On a pipe, the same as text once per interval.
// Per-socket rates come from the sockets' drops counters in counting mode (the default: the
// kernel counts each tracepoint's hits, shown per interval, and no drop reaches user space), and
// from the tracer's drop events with --mode events; from the counters alone without tracing.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { buildInterval, type FunnelInterval } from '../counters/funnel.js';
import { RcvbufReader, type SkMem } from '../counters/rcvbuf.js';
import { SnapshotReader, type CounterSnapshot } from '../counters/snapshot.js';
import { SORT_KEYS, sortRows, TopModel, type EventTotals, type SortKey, type TopRow } from '../counters/top-model.js';
import { openCounters, type DropCounters } from '../counting.js';
import { RxtraceError } from '../errors.js';
import { renderTopScreen, renderTopText, type TopView } from '../render/top-screen.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './lifecycle.js';
import { intervalOptions, modeOption, positiveInt, type DropMode } from './options.js';
import { IntervalClock } from './interval-clock.js';
import type { Outputs } from './output.js';
import { FullScreen, terminalIsUtf8 } from './terminal.js';
import { WorkerFeed } from './top-feed.js';

export interface TopCliOptions {
  interval: number;
  count?: number;
  sort: SortKey;
  trace: boolean;
  limit: number;
  mode: DropMode;
}

/** Redraws no more often than this (keys and resizes included). */
const MIN_REDRAW_MS = 500;
/** sk_rcvbuf changes rarely; asking ss for it more often costs a process each time. */
const RCVBUF_EVERY_MS = 5000;

function sortOption(v: string): SortKey {
  if (!(SORT_KEYS as readonly string[]).includes(v)) throw new InvalidArgumentError(`--sort is one of ${SORT_KEYS.join(', ')}, got "${v}"`);
  return v as SortKey;
}

export function registerTop(program: Command, outputs: Outputs): void {
  intervalOptions(
    program
      .command('top')
      .description('live view of the receive funnel and of the sockets that drop, sorted by drops/s (full screen on a TTY, text once per interval otherwise)'),
    'seconds between refreshes (at least 0.5)',
    'stop after this many refreshes',
  )
    .option('--sort <key>', `initial sort: ${SORT_KEYS.join(', ')}`, sortOption, 'drops/s')
    .option('--mode <mode>', 'counting: kernel counters per tracepoint, per-socket rates from the sockets\' drops counters (cheapest); events: every drop traced and attributed (sees sockets that close between refreshes)', modeOption, 'counting')
    .option('--no-trace', 'do not trace: per-socket rates from the sockets\' drops counters only')
    .option('--limit <n>', 'sockets per refresh when stdout is not a TTY', positiveInt('--limit'), 20)
    .addHelpText('after', '\nKeys: q quit, s next sort, p pause/resume. See docs/funnel.md.')
    .action(async (opts: TopCliOptions) => {
      process.exitCode = await runTop(opts, outputs);
    });
}

/** netns inode → one pid in it, for the namespaces (other than ours) that have sockets. */
function netnsPids(snap: CounterSnapshot): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of snap.sockets?.values() ?? []) {
    if (s.netns === null || s.netns === snap.selfNetns || out.has(s.netns)) continue;
    const pid = s.owners[0]?.pid;
    if (pid !== undefined) out.set(s.netns, pid);
  }
  return out;
}

export async function runTop(opts: TopCliOptions, outputs: Outputs): Promise<number> {
  if (opts.interval < 0.5) throw new RxtraceError('EUSAGE', `--interval ${opts.interval} is too short`, { hint: 'use 0.5 s or more' });
  const tty = process.stdout.isTTY === true;
  const utf8 = terminalIsUtf8();

  const screen = tty ? new FullScreen() : undefined;
  const out = tty ? undefined : outputs.open();
  const model = new TopModel(opts.interval, false);
  let feed: WorkerFeed | undefined;
  let counters: DropCounters | undefined;
  let counted: Map<string, number> | undefined;
  let modeDetail = opts.trace ? 'starting the tracer…' : 'tracing off (--no-trace)';
  let feedFailure: string | undefined;
  const notices: string[] = [];
  // A stop signal while the tracer starts aborts the start (the worker undoes its tracefs
  // mount and perf fds): see onStopSignals below, installed before any of this runs.
  const startup = new AbortController();
  let stopSignal: NodeJS.Signals | undefined;
  const shortNames = (events: string[]): string => events.map((e) => e.split(':')[1] ?? e).join(', ');
  const startCounters = async (): Promise<void> => {
    try {
      // Notices (a tracefs mount made and undone) go to the header on a full screen.
      counters = await openCounters({ notice: (message) => (screen ? notices.push(message) : process.stderr.write(`rxtrace: ${message}\n`)) });
      modeDetail = shortNames(counters.events);
    } catch (e) {
      const why = e instanceof RxtraceError ? `${e.code}: ${e.message}` : (e as Error).message;
      modeDetail = `tracing unavailable: ${why}`;
    }
  };
  const startFeed = async (): Promise<void> => {
    try {
      feed = await WorkerFeed.start({
        onSlot: (slot) => model.onSlot(slot),
        onSocket: (s) => model.onSocket(s),
        onRcvbuf: (inode, rb) => model.onRcvbuf(inode, rb),
        onLost: (n) => model.onLost(n),
        onErrors: (n, last) => model.onErrors(n, last),
        onNotice: (message) => {
          if (screen) notices.push(message);
          else process.stderr.write(`rxtrace: ${message}\n`);
        },
        onFailure: (why) => {
          feedFailure = why;
          modeDetail = 'the tracer stopped';
          model.tracing = false;
        },
      }, undefined, startup.signal);
      model.tracing = true;
      modeDetail = shortNames(feed.events);
    } catch (e) {
      if (startup.signal.aborted && e instanceof RxtraceError && e.code === 'ABORT_ERR') return;
      const why = e instanceof RxtraceError ? `${e.code}: ${e.message}` : (e as Error).message;
      modeDetail = `tracing unavailable: ${why}`;
    }
  };

  let sortIdx = Math.max(0, SORT_KEYS.indexOf(opts.sort));
  let paused = false;
  const clock = new IntervalClock(opts.interval * 1000);
  const stop = (): void => clock.stop();
  const unsignal = onStopSignals((sig) => {
    stopSignal ??= sig;
    startup.abort();
    stop();
  });

  out?.onOutputEnded(stop);

  // What a pause freezes: the last interval and copies of the rows (the model keeps updating).
  let frozen: { interval?: FunnelInterval; events: EventTotals; rows: TopRow[] } | undefined;
  const view = (): TopView => {
    const e = frozen?.events ?? model.events;
    let message: string | undefined = [feedFailure, ...notices.slice(-2)].filter(Boolean).join('; ') || undefined;
    if (e.errors > 0) message = `${message ? `${message}; ` : ''}attribution errors: ${e.errors} (last: ${e.lastError})`;
    const errs = model.last?.errors;
    if (errs?.length) message = `${message ? `${message}; ` : ''}cannot read ${errs.map((x) => x.source).join(', ')}`;
    return {
      mode: model.tracing ? 'tracing' : counters ? 'counting' : 'counters',
      modeDetail,
      counted,
      interval: frozen ? frozen.interval : model.last,
      events: e,
      rows: frozen ? sortRows(frozen.rows, SORT_KEYS[sortIdx]) : model.sorted(SORT_KEYS[sortIdx]),
      sort: SORT_KEYS[sortIdx],
      paused,
      now: new Date(),
      utf8,
      message,
      idle: model.idle,
    };
  };

  // Redraw throttle: at most one frame per MIN_REDRAW_MS.
  let lastDraw = -Infinity;
  let drawTimer: NodeJS.Timeout | undefined;
  const drawNow = (): void => {
    drawTimer = undefined;
    if (!screen) return;
    lastDraw = performance.now();
    const frame = renderTopScreen(view(), screen.columns, screen.rows);
    screen.draw(frame.lines, (line, i) =>
      frame.emphasis.includes(i) ? `\x1b[1;31m${line}\x1b[0m` : i === frame.titles ? `\x1b[7m${line}\x1b[0m` : line,
    );
  };
  const requestDraw = (): void => {
    if (!screen || drawTimer) return;
    const wait = lastDraw + MIN_REDRAW_MS - performance.now();
    if (wait <= 0) drawNow();
    else drawTimer = setTimeout(drawNow, wait);
  };

  const onKey = (key: string): void => {
    if (key === 'q' || key === 'Q' || key === '\x03' || key === '\x04') stop();
    else if (key === 's' || key === 'S') {
      sortIdx = (sortIdx + 1) % SORT_KEYS.length;
      requestDraw();
    } else if (key === 'p' || key === 'P' || key === ' ') {
      paused = !paused;
      frozen = paused
        ? { interval: model.last, events: { ...model.events }, rows: model.sorted(SORT_KEYS[sortIdx]).map((r) => ({ ...r, trend: [...r.trend] })) }
        : undefined;
      requestDraw();
    }
  };
  const onResize = (): void => requestDraw();

  let startupStopped: NodeJS.Signals | undefined;
  const rcvbufReader = new RcvbufReader();
  let rcvbufs: Map<number, SkMem> | undefined;
  let rcvbufAt = -Infinity;

  try {
    if (screen) {
      screen.enter(onKey);
      process.stdout.on('resize', onResize);
      drawNow();
    }
    if (opts.trace && opts.mode === 'counting') {
      await startCounters();
      if (clock.stopped) {
        if (stopSignal) startupStopped = stopSignal;
        return EXIT.OK;
      }
      drawNow();
    } else if (opts.trace) {
      await startFeed();
      if (clock.stopped) {
        if (stopSignal && !feed) startupStopped = stopSignal;
        return EXIT.OK;
      }
      drawNow();
    }
    const reader = new SnapshotReader();
    let prev = await reader.read();
    // Counted after each socket read, like serve (see metrics/counting-feed.ts).
    let prevCounts = counters?.read();
    clock.startAt(prev.monoMs);
    while (opts.count === undefined || clock.count < opts.count) {
      if (!(await clock.next())) break;
      const cur = await reader.read();
      if (counters && prevCounts) {
        const now = counters.read();
        counted = new Map([...now].map(([ev, n]) => [ev, n - (prevCounts!.get(ev) ?? 0)]));
        prevCounts = now;
      }
      const iv: FunnelInterval = buildInterval(prev, cur);
      prev = cur;
      // sk_rcvbuf: sock_diag rows carry it. ss is asked only for a socket worth listing that has
      // none (ping sockets, the /proc source), not once per interval for the whole host.
      const known = new Map<number, SkMem>();
      let missing = false;
      for (const s of cur.sockets?.values() ?? []) {
        if (!s.drops && s.rx_queue === 0) continue;
        if (s.rcvbuf !== undefined) known.set(s.inode, { rmem_alloc: s.rx_queue, rcvbuf: s.rcvbuf, drops: s.drops });
        else missing = true;
      }
      if (!missing) rcvbufs = undefined;
      else if (performance.now() - rcvbufAt >= RCVBUF_EVERY_MS) {
        rcvbufAt = performance.now();
        rcvbufs = await rcvbufReader.read(netnsPids(cur));
      }
      for (const [inode, m] of rcvbufs ?? []) if (!known.has(inode)) known.set(inode, m);
      // Give the tracer a moment to deliver the samples taken before this read (250 ms posts).
      const complete = feed && model.tracing ? await feed.completeUntil(cur.monoNs, 400) : false;
      model.update(iv, cur, known, complete);
      if (screen) {
        if (!paused) requestDraw();
      } else if (out) {
        if (!paused) for (const l of renderTopText(view(), opts.limit)) await out.line(l);
        await out.flush();
        if (out.outputEnded) break;
      }
    }
  } finally {
    if (drawTimer) clearTimeout(drawTimer);
    process.stdout.off('resize', onResize);
    screen?.leave();
    unsignal();
    await feed?.close();
    counters?.close();
    await out?.end();
    // After the screen is left, so that the line stays visible.
    if (startupStopped) process.stderr.write(`rxtrace: stopped during start-up (${startupStopped})\n`);
  }
  return EXIT.OK;
}
