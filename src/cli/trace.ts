// `rxtrace trace`: stream drops live as NDJSON or text, with a summary on stderr at the end.
import { InvalidArgumentError, type Command } from 'commander';
import type { DropEvent, LostEvent } from '../decode/events.js';
import { RxtraceError } from '../errors.js';
import { openTracer, type RxTracer, type TraceRecord } from '../tracer.js';
import { writeRecordJson } from '../render/ndjson.js';
import { recordToText } from '../render/text.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './lifecycle.js';
import { collectList, defaultFormat, formatOption, portNumber, positiveInt, positiveNumber, type Format } from './options.js';
import type { Outputs } from './output.js';
import { cgroupOption, containerOption, unitOption } from '../owner-match.js';
import { reportTracerProblems } from './tracer-reports.js';
import { watchTcpCounters } from './tcp-summary.js';

export interface TraceCliOptions {
  event?: string[];
  only?: boolean;
  filter?: string;
  port?: number;
  pid?: number;
  container?: string;
  unit?: string;
  cgroup?: string;
  reason?: string[];
  duration?: number;
  count?: number;
  format?: Format;
  resolve: boolean;
  ringPages?: number;
  proto?: 'udp' | 'tcp';
}

export function registerTrace(program: Command, outputs: Outputs): void {
  program
    .command('trace')
    .description('stream socket receive drops live (default: udp:udp_fail_queue_rcv_skb, sock:sock_rcvqueue_full, sock:sock_exceed_buf_limit)')
    .option('-e, --event <subsys:name...>', 'also trace these tracepoints (comma-separated or repeated), e.g. skb:kfree_skb', collectList)
    .option('--only', 'trace only the -e events, not the three defaults')
    .option('--filter <expr>', "ftrace filter applied in the kernel, e.g. 'dport == 5000 && rc == -12'")
    .option('-p, --port <n>', 'only drops on this local port (in the kernel where the event has a port field)', portNumber)
    .option('--pid <pid>', 'only drops on sockets owned by this process', positiveInt('--pid'))
    .option('--container <id>', 'only drops on sockets owned by a process in this container (id prefix, as docker ps shows it)', containerOption)
    .option('--unit <name>', 'only drops on sockets owned by a process in this systemd unit (nginx.service; nginx = .service or .scope)', unitOption)
    .option('--cgroup <path>', 'only drops on sockets owned by a process in this cgroup or below (e.g. /system.slice)', cgroupOption)
    .option('--reason <NAME...>', 'skb:kfree_skb drop reasons to keep, by name (e.g. SOCKET_RCVBUFF,PROTO_MEM); filtered in the kernel', collectList)
    .option('-d, --duration <s>', 'stop after this many seconds', positiveNumber('--duration'))
    .option('-c, --count <n>', 'stop after this many drop events', positiveInt('--count'))
    .option('--format <fmt>', 'ndjson or text (default: ndjson when stdout is not a TTY)', formatOption)
    .option('--no-resolve', 'do not match drops to sockets and processes (fastest)')
    .option('--proto <proto>', 'udp (the default: the three UDP/ping tracepoints) or tcp (skb:kfree_skb filtered to the TCP receive reasons this kernel has, and sock:sock_exceed_buf_limit)', protoOption)
    .option('--ring-pages <n>', 'data pages per CPU ring, a power of two (default: 64 MiB over all CPUs, 2-8 MiB per ring)', positiveInt('--ring-pages'))
    .action(async (opts: TraceCliOptions) => {
      process.exitCode = await runTrace(opts, outputs);
    });
}

export async function runTrace(opts: TraceCliOptions, outputs: Outputs): Promise<number> {
  const format = defaultFormat(opts.format);
  const ndjson = format === 'ndjson';
  // Stop signals first, before any start-up work (docs/faults.md B11): a signal during start-up
  // aborts openTracer, which undoes what it did (tracefs mount, attributor, perf fds).
  const startup = new AbortController();
  let tracer: RxTracer | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  let stopReason: string | undefined;
  const stop = (why: string): void => {
    stopReason ??= why;
    void tracer?.close();
  };
  const unsignal = onStopSignals((sig) => {
    stopSignal = sig;
    if (tracer) stop(sig);
    else startup.abort();
  });
  const out = outputs.open(process.stdout, { unit: 'records' });
  const started = Date.now();
  try {
    tracer = await openTracer({
      events: opts.event,
      only: opts.only,
      filter: opts.filter,
      port: opts.port,
      pid: opts.pid,
      container: opts.container,
      unit: opts.unit,
      cgroup: opts.cgroup,
      reasons: opts.reason,
      resolve: opts.resolve,
      ringPages: opts.ringPages,
      proto: opts.proto,
      // Records waiting for attribution before the tracer pauses the reader. The kernel rings
      // (up to 8 MiB a CPU) are the cheaper buffer: raw bytes, not objects for the garbage collector.
      highWaterMark: 16384,
      signal: startup.signal,
    });
  } catch (e) {
    unsignal();
    if (startup.signal.aborted && e instanceof RxtraceError && e.code === 'ABORT_ERR') {
      process.stderr.write(`rxtrace: stopped during start-up (${stopSignal ?? 'signal'})\n`);
      return EXIT.OK;
    }
    throw e;
  }
  const tr = tracer;
  // Every record from here on: the consumer is in place before anything else waits.
  const batches = tr.batches();
  reportTracerProblems(tr);
  const tcpWatch = opts.proto === 'tcp' ? await watchTcpCounters() : undefined;
  out.onOutputEnded(() => stop('reader gone'));
  const timer = opts.duration ? setTimeout(() => stop('duration'), opts.duration * 1000) : undefined;
  if (format === 'text') {
    process.stderr.write(`rxtrace: tracing ${tr.plan.events.map((e) => e.compiled.event + (e.filter ? ` [${e.filter}]` : '')).join(', ')}; Ctrl-C to stop\n`);
  }
  /** What was printed (handed to stdout): the summary counts these, not what was delivered. */
  const printed: Printed = { events: {}, drops: 0, lost: 0, unsampled: 0, lostPerCpu: {} };
  /** Render one record; a promise when the output must drain first. */
  const write = (rec: TraceRecord): Promise<void> | undefined => {
    if (rec.event !== 'lost') {
      if (opts.count !== undefined && printed.drops >= opts.count) return undefined; // past --count: stopping
      printed.drops++;
      printed.events[rec.event] = (printed.events[rec.event] ?? 0) + 1;
    } else {
      const l = rec as LostEvent;
      printed.lost += l.lost;
      printed.lostPerCpu[l.cpu] = (printed.lostPerCpu[l.cpu] ?? 0) + l.lost;
      if (l.cause === 'unsampled') printed.unsampled += l.lost;
    }
    let wait: Promise<void> | undefined;
    if (out.cutShort) out.skipLine(); // output given up after a stop signal: counted as not written
    else if (ndjson) {
      // NDJSON goes straight into the writer's buffer as bytes; text lines are strings.
      writeRecordJson(out.w, rec);
      wait = out.endLine();
    } else wait = out.line(recordToText(rec as DropEvent & LostEvent));
    if (opts.count !== undefined && printed.drops >= opts.count && rec.event !== 'lost') {
      wait = out.flush() ?? wait;
      stop('count');
    }
    return wait;
  };

  // One loop over the tracer's batches. A record is written synchronously (no promise per
  // record): files and pipes with room take each chunk at once. When a write has to wait (a pipe
  // whose reader is behind), the loop waits, the batches queue in the tracer, which pauses the
  // reader once they pass the high-water mark, and the kernel counts the overflow as lost
  // events: backpressure without memory growth. The loop ends when the tracer closes (stop()).
  let failure: unknown;
  try {
    outer: for await (const batch of batches) {
      for (const rec of batch) {
        if (out.outputEnded) break outer;
        const wait = write(rec);
        if (wait) await wait;
      }
    }
  } catch (e) {
    failure = e; // thrown from runTrace once the tracer is closed
  } finally {
    if (timer) clearTimeout(timer);
    await tr.close();
    await out.end();
    unsignal();
  }
  if (failure !== undefined) throw failure;
  if (!out.outputEnded || stopReason !== 'reader gone') {
    printSummary(tr, printed, started, opts.count);
    const line = await tcpWatch?.finish(printed.events['skb:kfree_skb'] ?? 0);
    if (line) process.stderr.write(`rxtrace: ${line}\n`);
  }
  return EXIT.OK;
}

interface Printed {
  /** Drop records printed, per tracepoint. */
  events: Record<string, number>;
  drops: number;
  /** The sum of the `lost` records printed, and per CPU. */
  lost: number;
  /** Of `lost`: counted by the kernel with no sample written (cause 'unsampled'). */
  unsampled: number;
  lostPerCpu: Record<number, number>;
}

/**
 * `rxtrace: N events in T s (per event), L lost (per cpu)…`: N and L are what was printed, so
 * they match stdout. What the tracer delivered beyond that (past --count, or after the reader
 * of stdout went away) is said after, never folded in.
 */
function printSummary(tracer: RxTracer, printed: Printed, started: number, count: number | undefined): void {
  const s = tracer.stats();
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const per = Object.entries(printed.events).map(([k, v]) => `${k} ${v}`);
  const lostCpus = Object.entries(printed.lostPerCpu).filter(([, v]) => v > 0).map(([c, v]) => `cpu${c} ${v}`);
  const parts = [`${printed.drops} events in ${secs} s${per.length ? ` (${per.join(', ')})` : ''}`, `${printed.lost} lost${lostCpus.length ? ` (${lostCpus.join(', ')})` : ''}`];
  // Not a ring too small: the kernel counted these hits and wrote no sample (docs/architecture.md).
  if (printed.unsampled) parts.push(`${printed.unsampled} of the lost counted by the kernel with no sample written (a bigger --ring-pages would not keep them)`);
  const delivered = Object.values(s.events).reduce((a, b) => a + b, 0);
  const moreDrops = delivered - printed.drops;
  const moreLost = s.lost - printed.lost;
  if (moreDrops > 0 || moreLost > 0) {
    const what = [moreDrops > 0 ? `${moreDrops} more events` : '', moreLost > 0 ? `${moreLost} more lost samples` : ''].filter(Boolean).join(' and ');
    const when = count !== undefined && printed.drops >= count ? `after --count ${count}` : 'after output ended';
    parts.push(`not printed: ${what} delivered ${when} (${delivered} events delivered in all)`);
  }
  if (s.filtered) parts.push(`${s.filtered} filtered in user space`);
  if (s.malformed) parts.push(`${s.malformed} malformed records`);
  const o = s.attribution?.owners;
  if (o && (o.waits > 0 || o.pending > 0)) {
    parts.push(`owners: waited for a scan ${o.waits} times (${o.waitedMs} ms)${o.pending ? `, ${o.pending} events owners_pending` : ''}`);
  }
  process.stderr.write(`rxtrace: ${parts.join(', ')}\n`);
}

function protoOption(v: string): 'udp' | 'tcp' {
  if (v !== 'udp' && v !== 'tcp') throw new InvalidArgumentError(`--proto is udp or tcp, got "${v}"`);
  return v;
}
