// The tracer behind `rxtrace top`, run in a worker thread. During a drop storm the tracer
// decodes and attributes hundreds of thousands of events a second; on the main thread that
// work starved the screen (refreshes seconds late: docs/bench.md). In a
// worker it can only delay its own counts: the screen keeps its pace, and the counters fill in.
// The worker sums drops per socket inode in 100 ms slots of sample time and posts the slots
// every 250 ms; this file is the main thread's side and the message types.
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../workers.js';
import type { DropSlot } from '../counters/top-model.js';
import type { SocketInfo } from '../decode/events.js';
import { RxtraceError } from '../errors.js';

/** Drops in one slot of sample time (CLOCK_MONOTONIC ns; the slot ends at `endNs`). */
export type SlotCounts = DropSlot;

export type FeedMessage =
  | { type: 'ready'; events: string[] }
  | { type: 'failed'; code: string; message: string; hint?: string }
  | {
      type: 'counts';
      /** Every sample taken before this time (CLOCK_MONOTONIC ns) is in this or an earlier message. */
      doneNs: number;
      slots: SlotCounts[];
      /** Socket details for inodes not sent before (or changed owners). */
      sockets: SocketInfo[];
      /** [inode, sk_rcvbuf] from sock_rcvqueue_full events. */
      rcvbuf: [number, number][];
      lost: number;
      errors: number;
      lastError?: string;
    }
  | { type: 'notice'; message: string }
  | { type: 'closed' };

export interface FeedSink {
  onSlot(slot: SlotCounts): void;
  onSocket(s: SocketInfo): void;
  onRcvbuf(inode: number, rcvbuf: number): void;
  onLost(lost: number): void;
  onErrors(total: number, last?: string): void;
  /** Something the tracer wants the user to know (it mounted tracefs, a tracepoint is missing). */
  onNotice(message: string): void;
  /** The worker died: the view goes on with counters only. */
  onFailure(message: string): void;
}

/** A tracer running in a worker; start() resolves once it traces, or rejects with why it cannot. */
export class WorkerFeed {
  /** The worker's latest `doneNs`: counts are complete up to this sample time. */
  doneNs = 0;
  private waiters: { ns: number; resolve: (ok: boolean) => void }[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly events: string[],
  ) {}

  private advance(ns: number): void {
    this.doneNs = Math.max(this.doneNs, ns);
    this.waiters = this.waiters.filter((w) => {
      if (w.ns > this.doneNs) return true;
      w.resolve(true);
      return false;
    });
  }

  /**
   * Resolves true once the counts are complete up to sample time `ns`, or false after
   * `timeoutMs` (the tracer is behind: a drop storm, or a lost worker).
   */
  completeUntil(ns: number, timeoutMs: number): Promise<boolean> {
    if (this.doneNs >= ns) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = { ns, resolve };
      this.waiters.push(w);
      setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, timeoutMs);
    });
  }

  /**
   * `signal` aborts the start (a stop signal during top's start-up): the worker undoes what it
   * did and exits, and start() rejects with ABORT_ERR.
   */
  static start(sink: FeedSink, timeoutMs = 30_000, signal?: AbortSignal): Promise<WorkerFeed> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new RxtraceError('ABORT_ERR', 'stopped before the tracer started'));
        return;
      }
      const worker = startWorker('top-feed-worker', () => new URL('./top-feed-worker.js', import.meta.url));
      let feed: WorkerFeed | undefined;
      const onAbort = (): void => {
        if (!feed) worker.postMessage('close');
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.once('exit', () => signal?.removeEventListener('abort', onAbort));
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(new RxtraceError('ETIMEDOUT', `the tracer did not start within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      worker.on('message', (m: FeedMessage) => {
        switch (m.type) {
          case 'ready':
            clearTimeout(timer);
            feed = new WorkerFeed(worker, m.events);
            resolve(feed);
            break;
          case 'failed':
            clearTimeout(timer);
            reject(new RxtraceError(m.code, m.message, { hint: m.hint }));
            break;
          case 'counts':
            for (const s of m.sockets) sink.onSocket(s);
            for (const [inode, rb] of m.rcvbuf) sink.onRcvbuf(inode, rb);
            for (const slot of m.slots) sink.onSlot(slot);
            if (m.lost) sink.onLost(m.lost);
            if (m.errors) sink.onErrors(m.errors, m.lastError);
            feed?.advance(m.doneNs);
            break;
          case 'notice':
            sink.onNotice(m.message);
            break;
          case 'closed':
            break;
        }
      });
      worker.on('error', (e) => {
        clearTimeout(timer);
        if (feed) sink.onFailure(`tracer worker failed: ${e.message}`);
        else reject(e);
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        if (!feed) reject(new RxtraceError('EIO', `the tracer worker exited (code ${code}) before tracing`));
      });
    });
  }

  /** Stops tracing (the worker closes the tracer: fds, rings, thread) and ends the worker. */
  async close(timeoutMs = 5000): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    const timer = setTimeout(() => void this.worker.terminate(), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
