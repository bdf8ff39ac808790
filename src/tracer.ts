// RxTracer: the public live tracer. It owns one native perf session, decodes its batches,
// attributes drops to sockets, and delivers them one way: batches to async iterators
// (tracer/delivery.ts), on which the record iterator, stream() and the 'drop'/'lost' events are
// built. Backpressure: when a consumer falls behind, the reader stops draining and the kernel
// counts the overflow as lost events, which then reach the consumer as `lost` records.
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { ProcAttributor } from './attribute/proc-attributor.js';
import type { AttributionStats } from './attribute/types.js';
import type { Attributor } from './attribute/types.js';
import { onlineCpus } from './cpus.js';
import { aggregateKey } from './decode/aggregate-key.js';
import { BatchDecoder } from './decode/batch.js';
import { WallClock } from './decode/clock.js';
import type { DropEvent, LostEvent } from './decode/events.js';
import { fromNativeError, RxtraceError } from './errors.js';
import { loadNative, type NativePerfSession } from './native.js';
import { checkRingPages, defaultRingPages, sessionOptions } from './ring-sizing.js';
import { Delivery } from './tracer/delivery.js';
import { buildPlan, portScopedTables, type EventPlan, type PlanOptions } from './plan.js';
import { hasOwnerSelector, ownersMatch } from './owner-match.js';

export type TraceRecord = DropEvent | LostEvent;

export interface TracerOptions extends PlanOptions {
  /** Match each drop to its socket, owners and netns (default true). */
  resolve?: boolean;
  /** Keep only drops on sockets owned by this pid (implies resolve). */
  pid?: number;
  /** Keep only drops on sockets whose owner's container id starts with this (lowercase hex; implies resolve). */
  container?: string;
  /** Keep only drops on sockets whose owner runs in this systemd unit (`nginx` = nginx.service or .scope; implies resolve). */
  unit?: string;
  /** Keep only drops on sockets whose owner's cgroup path is this or below it (implies resolve). */
  cgroup?: string;
  /** Data pages per CPU ring, a power of two (default: 64 MiB over all CPUs, 2–8 MiB per ring). */
  ringPages?: number;
  /** Longest a quiet batch waits before delivery, ms (default 20). */
  flushMs?: number;
  /** Deliver a batch at this many bytes (default: an eighth of a ring, at least 256 KiB). */
  batchBytes?: number;
  /** Batches queued toward JS before the reader leaves data in the rings (default 8). */
  maxQueuedBatches?: number;
  /** Events buffered for a slow iterator or stream before the kernel is left to count losses (default 65536). */
  highWaterMark?: number;
  /** Close the tracer when this signal aborts. */
  signal?: AbortSignal;
  /** CPUs to trace (default: every online CPU). */
  cpus?: number[];
  /**
   * Count identical drops in the reader thread instead of delivering each (default false): one
   * event per distinct socket-identifying payload per CPU per drain of the ring, with `count`
   * saying how many drops it stands for. For consumers that count (top, metrics): at a million
   * drops a second JavaScript then sees hundreds of events, not a million.
   */
  aggregate?: boolean;
  /** Build the attributor (default: the /proc one, ProcAttributor). */
  attributor?: (plan: EventPlan) => Attributor | Promise<Attributor>;
}

export interface TracerStats {
  /** Events delivered, per tracepoint (with `aggregate`: the drops they stand for). */
  events: Record<string, number>;
  /** Events the kernel reported lost, per CPU. */
  lostPerCpu: Record<number, number>;
  lost: number;
  /** Of `lost`: hits the kernel counted but wrote no sample for (lost events with cause 'unsampled'). */
  unsampled: number;
  /** Records that could not be decoded (should stay 0). */
  malformed: number;
  /** Events decoded but filtered out in user space (--pid, --port on events without a port field). */
  filtered: number;
  /** Times the reader paused because consumers were behind. */
  pauses: number;
  /** Records the reader thread skipped in the rings (corrupt or torn, or of no use to JS); should stay 0. */
  otherRecords: number;
  /** What attribution did (source per table, whole-table reads, owner scans and waits), when it ran. */
  attribution?: AttributionStats;
}

export interface RxTracerEvents {
  drop: [DropEvent];
  lost: [LostEvent];
  error: [Error];
  warning: [Error];
  close: [];
}

export class RxTracer extends EventEmitter<RxTracerEvents> implements AsyncIterable<TraceRecord> {
  /** Decoded batches waiting for attribution, in order. */
  private readonly pending: TraceRecord[][] = [];
  private pendingCount = 0;
  private pumping = false;
  private drainWaiters: (() => void)[] = [];
  /** Every consumer (iterators, stream(), the 'drop'/'lost' emitter) takes batches from here. */
  private readonly delivery: Delivery<TraceRecord>;
  /** The loop that turns batches into 'drop'/'lost' events, once anyone listens for them. */
  private emitting?: Promise<void>;
  private closing?: Promise<void>;
  private readonly counts: Omit<TracerStats, 'pauses'> = { events: {}, lostPerCpu: {}, lost: 0, unsampled: 0, malformed: 0, filtered: 0, otherRecords: 0 };
  private readonly portOnly = new Set<string>();
  /** --pid, --container, --unit or --cgroup was given. */
  private readonly byOwner: boolean;
  private readonly backlog: { name: 'error' | 'warning'; e: Error }[] = [];

  /** @internal use openTracer() */
  constructor(
    readonly plan: EventPlan,
    private readonly session: NativePerfSession,
    private readonly decoder: BatchDecoder,
    private readonly attributor: Attributor | undefined,
    private readonly opts: TracerOptions,
  ) {
    super();
    this.delivery = new Delivery<TraceRecord>(opts.highWaterMark ?? 65536, (paused) => session.setPaused(paused));
    this.byOwner = hasOwnerSelector(opts);
    for (const e of plan.events) if (e.portInUserSpace) this.portOnly.add(e.compiled.event);
    // Reports from before anyone listened (attribution's first read happens inside openTracer)
    // wait for the first listener rather than vanish.
    (this as EventEmitter).on('newListener', (name: string | symbol) => {
      if ((name === 'error' || name === 'warning') && this.backlog.length > 0) queueMicrotask(() => this.flushReports());
      if (name === 'drop' || name === 'lost') this.startEmitting();
    });
    attributor?.setErrorHandler?.(
      (e) => this.report('error', e),
      (e) => this.report('warning', e),
    );
  }

  /** @internal the addon's batch callback */
  onBatch(buf: ArrayBuffer | undefined, failure?: Error): void {
    if (!buf) {
      // The reader thread failed (e.g. out of memory) and stopped tracing: say so, and end the
      // trace as close() would, so that iterators finish instead of waiting for ever.
      this.report('error', failure ?? new Error('the reader thread stopped'));
      void this.close();
      return;
    }
    const items: TraceRecord[] = [];
    this.decoder.decode(buf, { drop: (e) => items.push(e), lost: (e) => items.push(e) });
    this.counts.malformed = this.decoder.counters.malformed;
    if (items.length === 0) return;
    this.pending.push(items);
    this.pendingCount += items.length;
    this.delivery.setUpstream(this.pendingCount);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.pending.length > 0) {
        const items = this.pending.shift()!;
        if (this.attributor) {
          const drops = items.filter((i): i is DropEvent => i.event !== 'lost');
          try {
            const p = this.attributor.attribute(drops, items);
            if (p) await p;
          } catch (e) {
            // Attribution must never lose events: deliver them unattributed and say why.
            for (const d of drops) if (d.match === undefined) Object.assign(d, { match: 'none', socket: null });
            this.emitError(e);
          }
        }
        this.pendingCount -= items.length;
        this.delivery.setUpstream(this.pendingCount);
        this.delivery.push(this.count(items));
      }
    } finally {
      this.pumping = false;
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /** Count a batch's records and drop those the user-space filters reject: what is delivered. */
  private count(items: TraceRecord[]): TraceRecord[] {
    const out: TraceRecord[] = [];
    for (const item of items) {
      if (item.event === 'lost') {
        const l = item as LostEvent;
        this.counts.lost += l.lost;
        this.counts.lostPerCpu[l.cpu] = (this.counts.lostPerCpu[l.cpu] ?? 0) + l.lost;
        if (l.cause === 'unsampled') this.counts.unsampled += l.lost;
      } else {
        const d = item as DropEvent;
        const n = d.count ?? 1;
        if (!this.keep(d)) {
          this.counts.filtered += n;
          continue;
        }
        this.counts.events[d.event] = (this.counts.events[d.event] ?? 0) + n;
      }
      out.push(item);
    }
    return out;
  }

  /**
   * 'drop' and 'lost' are one more consumer of the batches: from the first listener on, a loop
   * emits each record of each batch, until close() (which waits for it, so that every record
   * delivered reaches the listeners before 'close'). It never falls behind, so it never pauses.
   */
  private startEmitting(): void {
    if (this.emitting || this.closed) return;
    const batches = this.delivery.batches();
    this.emitting = (async () => {
      for await (const batch of batches) {
        for (const r of batch) {
          if (r.event === 'lost') this.emit('lost', r as LostEvent);
          else this.emit('drop', r as DropEvent);
        }
      }
    })();
  }

  /** User-space filters that the kernel could not apply. */
  private keep(d: DropEvent): boolean {
    if (this.byOwner) {
      if (!d.socket || !ownersMatch(d.socket.owners, this.opts)) return false;
    }
    if (this.plan.port !== undefined && this.portOnly.has(d.event)) {
      if (!d.socket || !d.socket.local.endsWith(`:${this.plan.port}`)) return false;
    }
    return true;
  }

  private emitError(e: unknown): void {
    this.report('error', e instanceof Error ? e : new Error(String(e)));
  }

  /**
   * 'error': something rxtrace could not do while tracing goes on (attribution failed, a table
   * it cannot parse); 'warning': a result is less certain than usual (owners it cannot read).
   * Never thrown at a tracer nobody listens to; kept (the first 16) until someone does.
   */
  private report(name: 'error' | 'warning', e: Error): void {
    if (this.listenerCount(name) > 0) this.emit(name, e);
    else if (this.backlog.length < 16) this.backlog.push({ name, e });
  }

  private flushReports(): void {
    const keep: { name: 'error' | 'warning'; e: Error }[] = [];
    for (const r of this.backlog.splice(0)) {
      if (this.listenerCount(r.name) > 0) this.emit(r.name, r.e);
      else keep.push(r);
    }
    this.backlog.push(...keep);
  }

  /**
   * Every batch of drop and lost records from now on, in order, until close(): the primitive
   * every other way of consuming builds on. A consumer that falls behind pauses the reader (the
   * kernel then counts the overflow as lost records); leave with return() or a `break`.
   */
  batches(): AsyncIterableIterator<TraceRecord[]> {
    return this.delivery.batches();
  }

  /** Every drop and lost record from now on, in order, until close(). */
  [Symbol.asyncIterator](): AsyncIterator<TraceRecord> {
    return this.delivery.records();
  }

  /** An object-mode Readable of drop and lost records, with backpressure. */
  stream(): Readable {
    return Readable.from(this.delivery.records(), { objectMode: true, highWaterMark: 1024 });
  }

  private closed = false;

  /** Stop tracing: final drain, join the reader thread, close every fd. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        try {
          this.delivery.startClosing();
          this.session.setPaused(false);
          await this.session.close();
          await this.drained();
        } finally {
          this.attributor?.close();
          this.closed = true;
          this.delivery.end();
          // A listener that threw has already failed loudly (an unhandled rejection, as an
          // emit would); close still ends.
          await this.emitting?.catch(() => undefined);
          this.emit('close');
        }
      })();
    }
    return this.closing;
  }

  private drained(): Promise<void> {
    if (!this.pumping && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Let the process exit while tracing (a daemon's background tracer). */
  unref(): this {
    this.session.unref();
    return this;
  }

  ref(): this {
    this.session.ref();
    return this;
  }

  stats(): TracerStats {
    return {
      ...this.counts,
      pauses: this.delivery.pauses,
      events: { ...this.counts.events },
      lostPerCpu: { ...this.counts.lostPerCpu },
      malformed: this.decoder.counters.malformed,
      otherRecords: this.session.stats().otherRecords,
      ...(this.attributor?.stats ? { attribution: this.attributor.stats() } : {}),
    };
  }

  /** The addon's own counters (samples copied, batches, stalls). */
  nativeStats(): ReturnType<NativePerfSession['stats']> {
    return this.session.stats();
  }
}

export { checkRingPages, defaultRingPages, sessionOptions } from './ring-sizing.js';

/**
 * Open a live tracer. Resolves once every perf event is open and the reader thread runs.
 * Rejects with RxtraceError (code, errno, syscall, hint) when tracing is impossible.
 */
export async function openTracer(options: TracerOptions = {}): Promise<RxTracer> {
  if (options.signal?.aborted) throw new RxtraceError('ABORT_ERR', 'the signal was already aborted', { hint: 'pass a fresh AbortSignal' });
  // An abort during the start-up is checked after each step that waits, and undoes what the
  // steps before made (buildPlan undoes its own tracefs mount before it returns).
  const abortedDuringOpen = (): RxtraceError =>
    new RxtraceError('ABORT_ERR', 'the signal aborted while the tracer was starting', { hint: 'nothing was left open; pass a fresh AbortSignal to trace' });
  const plan = await buildPlan(options);
  if (options.signal?.aborted) throw abortedDuringOpen();
  const native = loadNative();
  const cpus = options.cpus ?? onlineCpus();
  const byId = new Map(plan.events.map((e) => [e.compiled.schema.id, e]));
  const ringPages = options.ringPages ?? defaultRingPages(cpus.length);
  checkRingPages(ringPages);
  const decoder = new BatchDecoder(
    plan.events.map((e) => e.compiled),
    new WallClock(native.clockOffsetNs()),
  );
  const resolve = options.resolve !== false || hasOwnerSelector(options);
  let attributor: Attributor | undefined;
  // --port applied in the kernel to the UDP event: only that port's UDP sockets can be asked about
  // (the port-less events concern ping/raw sockets, which are read whole; kfree_skb: plan.ts).
  const portTables = portScopedTables(plan);
  const onlyPort = plan.port !== undefined && portTables.length > 0 ? [plan.port] : undefined;
  if (resolve) attributor = options.attributor ? await options.attributor(plan) : await ProcAttributor.create({ ports: onlyPort, portTables, tcp: plan.events.some((e) => e.compiled.event === 'skb:kfree_skb') });
  if (options.signal?.aborted) {
    attributor?.close();
    throw abortedDuringOpen();
  }
  let tracer: RxTracer | undefined;
  let session: NativePerfSession;
  try {
    session = new native.PerfSession(
      sessionOptions(
        plan.events.map((e) => ({ id: e.compiled.schema.id, filter: e.filter, aggregateKey: options.aggregate ? aggregateKey(e.compiled.schema) : undefined })),
        cpus,
        ringPages,
        options,
      ),
      (buf, failure) => tracer?.onBatch(buf, failure),
    );
  } catch (e) {
    attributor?.close();
    throw fromNativeError(e, {
      eventName: (id) => byId.get(id)?.compiled.event,
      filterFor: (id) => byId.get(id)?.filter,
      fieldsOf: (id) => byId.get(id)?.compiled.schema.fields.filter((f) => !f.common).map((f) => f.name) ?? [],
      fdCount: plan.events.length * cpus.length,
    });
  }
  tracer = new RxTracer(plan, session, decoder, attributor, options);
  try {
    await session.start();
  } catch (e) {
    await tracer.close().catch(() => undefined);
    throw fromNativeError(e, { eventName: () => undefined, filterFor: () => undefined, fieldsOf: () => [], fdCount: 0 });
  }
  if (options.signal?.aborted) {
    await tracer.close().catch(() => undefined);
    throw abortedDuringOpen();
  }
  if (options.signal) {
    const t = tracer;
    options.signal.addEventListener('abort', () => void t.close(), { once: true });
  }
  if (plan.startNotice) (options.notice ?? ((m: string) => process.stderr.write(`rxtrace: ${m}\n`)))(plan.startNotice);
  return tracer;
}
