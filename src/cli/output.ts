// Line output to stdout with backpressure, and a quiet end when the reader goes away (EPIPE,
// `rxtrace trace | head -1`): we stop tracing and exit 0 instead of crashing. Lines are written
// as bytes into one reusable buffer (`w`) and handed to the stream in 64 KiB chunks.
//
// At most one chunk is ever in the stream's hands: while it is still on its way (a pipe that is
// full), new lines wait in `w`. So after a stop signal, when stdout makes no progress for
// FINAL_FLUSH_MS, the writer can give the output up and say exactly how many lines never
// reached stdout: the lines in `w`, those of the chunk in flight that the kernel did not take,
// and any offered afterwards (docs/faults.md B10).
import type { Writable } from 'node:stream';
import { JsonBytes } from '../decode/json-bytes.js';
import { onFirstStopSignal } from './lifecycle.js';

const CHUNK = 65536;

/** After a stop signal, how long stdout may take nothing before its output is given up. */
export const FINAL_FLUSH_MS = 2000;

let outputError = false;
let outputCut = false;

/** Whether a write to stdout failed (other than the reader going away): main() exits 71. */
export const outputFailed = (): boolean => outputError;

/**
 * Whether output was given up after a stop signal. A write to a stuck pipe stays pending in
 * libuv and would keep the process alive: main() then ends it with process.exit().
 */
export const outputCutShort = (): boolean => outputCut;

/** Writers waiting for stdout to take a chunk; a stop signal bounds their wait. */
const waiting = new Set<LineWriter>();
let finalFlush: { ms: number; why: string } | undefined;

/** From now on, no writer waits on stdout longer than `ms` without progress. */
export function boundFinalFlush(why: string, ms = FINAL_FLUSH_MS): void {
  if (finalFlush) return;
  finalFlush = { ms, why };
  for (const w of waiting) w.armStall();
}

onFirstStopSignal((signal) => boundFinalFlush(`after ${signal}`));

interface Inflight {
  chunk: Buffer;
  lines: number;
}

function countNewlines(b: Buffer, end: number): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1 && i < end; i = b.indexOf(10, i + 1)) n++;
  return n;
}

export class LineWriter {
  /** Write a line's bytes here, then call endLine(). */
  readonly w = new JsonBytes(CHUNK * 2);
  /** Complete lines in `w`. */
  private lines = 0;
  /** Nothing more can be written: the reader went away (EPIPE, closed) or a write failed (ENOSPC, EIO). */
  private ended = false;
  private onEnd: (() => void)[] = [];
  private flushQueued = false;
  /** The chunk the stream holds (not yet fully taken by the OS), if any. */
  private inflight?: Inflight;
  private room?: Promise<void>;
  private releaseRoom?: () => void;
  private stallTimer?: NodeJS.Timeout;
  private abandoned = false;
  private notWritten = 0;
  private reported = false;
  /** Lines written in one turn of the event loop (one batch of events) leave at its end. */
  private readonly flushSoon = (): void => {
    this.flushQueued = false;
    void this.flush();
  };

  /** `unit` names a line in the message about output cut short ("records" for trace). */
  constructor(
    private readonly out: Writable = process.stdout,
    private readonly unit = 'lines',
  ) {
    out.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || e.code === 'EBADF') this.stopOutput();
      else {
        // A full disk or a broken device: stop writing, say so once, and exit 71.
        process.stderr.write(`rxtrace: cannot write output: ${e.code ?? e.message} (check the disk or the destination of stdout)\n`);
        outputError = true;
        this.stopOutput();
      }
    });
    // Closed (destroyed) without an error: nothing more can be written, as when the reader goes.
    out.once('close', () => this.stopOutput());
  }

  /** Whether output has ended: the reader went away, or a write failed (outputFailed() tells which). */
  get outputEnded(): boolean {
    return this.ended;
  }

  /** Whether output was given up (a stop signal, then stdout took nothing for a while). */
  get cutShort(): boolean {
    return this.abandoned;
  }

  /** Called once when output ends: the reader went away, or a write failed. */
  onOutputEnded(f: () => void): void {
    this.onEnd.push(f);
  }

  private stopOutput(): void {
    if (this.ended) return;
    this.ended = true;
    this.wake();
    for (const f of this.onEnd) f();
  }

  /** Queue a line (see endLine). Resolves when the stream can take more. */
  line(s: string): Promise<void> | undefined {
    if (this.ended) return undefined;
    if (this.abandoned) {
      this.notWritten++;
      return undefined;
    }
    this.w.utf8(s);
    return this.endLine();
  }

  /** A line that will not be written (output given up): counted, not rendered. */
  skipLine(): void {
    if (this.abandoned) this.notWritten++;
  }

  /**
   * End the line written into `w`. Output leaves in 64 KiB chunks, and whatever is left at the
   * end of this turn of the event loop, so a trickle of drops still shows up at once. Resolves
   * when the stream can take more.
   */
  endLine(): Promise<void> | undefined {
    if (this.ended || this.abandoned) {
      if (this.abandoned) this.notWritten++;
      this.w.pos = 0;
      return undefined;
    }
    this.w.byte(10);
    this.lines++;
    if (this.w.pos >= CHUNK) return this.flush();
    this.flushLater();
    return undefined;
  }

  private flushLater(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushSoon);
    }
  }

  /**
   * Hand what is in `w` to the stream, unless the stream still holds the previous chunk: then
   * the lines stay in `w`. Resolves when the stream can take more (undefined: it can now).
   */
  flush(): Promise<void> | undefined {
    if (this.ended || this.abandoned) return undefined;
    if (this.inflight) return this.waitForRoom();
    if (this.w.pos === 0) return undefined;
    const chunk = this.w.view();
    const lines = this.lines;
    this.lines = 0;
    this.w.pos = 0;
    const entry: Inflight = { chunk, lines };
    this.out.write(chunk, (e) => this.written(entry, e));
    // A file that failed at once (ENOSPC on /dev/full): its 'error' comes on the next tick.
    // Wait for it, so that whoever awaits this knows the output failed (main exits 71).
    if (this.out.errored) {
      this.inflight = entry;
      return this.waitForRoom();
    }
    // Files and pipes with room take the bytes at once: reuse the buffer. If the stream kept
    // the chunk to write later, it is the stream's now, and the next lines wait for it.
    if (this.out.writableLength === 0) return undefined;
    this.w.buf = Buffer.allocUnsafe(this.w.buf.length);
    this.inflight = entry;
    return this.waitForRoom();
  }

  private written(entry: Inflight, e?: Error | null): void {
    if (this.inflight !== entry) return;
    this.inflight = undefined;
    if (e) return; // the 'error' event follows: stopOutput() wakes the waiters
    this.wake();
    if (this.w.pos > 0) this.flushLater();
  }

  /** A promise that resolves once the chunk in flight is taken (or output ends). */
  private waitForRoom(): Promise<void> {
    if (!this.room) {
      this.room = new Promise<void>((resolve) => (this.releaseRoom = resolve));
      waiting.add(this);
      if (finalFlush) this.armStall();
    }
    return this.room;
  }

  private wake(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    waiting.delete(this);
    const release = this.releaseRoom;
    this.room = undefined;
    this.releaseRoom = undefined;
    release?.();
  }

  /** Bytes of the chunk in flight that the OS has not taken yet (the whole chunk if unknown). */
  private unsent(): number {
    const f = this.inflight;
    if (!f) return 0;
    const q = (this.out as unknown as { _handle?: { writeQueueSize?: unknown } })._handle?.writeQueueSize;
    return typeof q === 'number' && q >= 0 ? Math.min(q, f.chunk.length) : f.chunk.length;
  }

  /** @internal start (or restart) the stall timer of the current wait. */
  armStall(): void {
    if (!finalFlush || !this.room || this.stallTimer) return;
    const { ms } = finalFlush;
    let mark = this.unsent();
    const check = (): void => {
      this.stallTimer = undefined;
      if (!this.room) return;
      const now = this.unsent();
      if (now < mark) {
        // Slow, but moving: the reader took part of the chunk. Give it another period.
        mark = now;
        this.stallTimer = setTimeout(check, ms);
        return;
      }
      this.abandon();
    };
    this.stallTimer = setTimeout(check, ms);
  }

  /** Give the output up: count what never reaches stdout, and let every waiter go on. */
  private abandon(): void {
    if (this.abandoned || this.ended) return;
    this.abandoned = true;
    outputCut = true;
    let lost = this.lines;
    const f = this.inflight;
    if (f) {
      const sent = f.chunk.length - this.unsent();
      lost += f.lines - countNewlines(f.chunk, sent);
    }
    this.notWritten += lost;
    this.lines = 0;
    this.w.pos = 0;
    this.inflight = undefined;
    this.wake();
  }

  /**
   * Flush what is left and wait for it to reach the OS. If output was cut short, says so on
   * stderr, once, with the count of lines that were not written.
   */
  async end(): Promise<void> {
    for (;;) {
      if (this.ended || this.abandoned) break;
      const wait = this.flush();
      if (wait) await wait;
      else if (this.w.pos === 0 && !this.inflight) break;
    }
    if (this.abandoned && !this.reported) {
      this.reported = true;
      const why = finalFlush?.why ?? 'after the stop';
      process.stderr.write(
        `rxtrace: output cut short ${why}: stdout took nothing for ${(finalFlush?.ms ?? FINAL_FLUSH_MS) / 1000} s, ${this.notWritten} ${this.unit} not written (is the reader of stdout stuck?)\n`,
      );
    }
  }
}
