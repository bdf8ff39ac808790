// Line output to stdout with backpressure, and a quiet end when the reader goes away (EPIPE,
// `rxtrace trace | head -1`): we stop tracing and exit 0 instead of crashing. Lines are written
// as bytes into one reusable buffer (`w`) and handed to the stream in 64 KiB chunks.
//
// A command owns its LineWriter; main owns the `Outputs` that made them, and turns what they
// came to into the exit (71 after a failed write; an exit that does not wait for a stuck pipe).
//
// At most one chunk is ever in the stream's hands: while it is still on its way (a pipe that is
// full), new lines wait in `w`. So after a stop signal, when stdout makes no progress for
// FINAL_FLUSH_MS, the writer can give the output up and say exactly how many lines never
// reached stdout: the lines in `w`, those of the chunk in flight that the OS did not take, and
// any offered afterwards (docs/faults.md B10). To know the last exactly, a chunk goes to a pipe
// or socket as separate writes of whole lines, at most PIPE_BUF bytes each: a pipe takes such a
// write whole or not at all, and each write's callback says it was taken.
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { JsonBytes } from '../render/json-bytes.js';

const CHUNK = 65536;
/** Writes up to this size are atomic on a pipe (Linux PIPE_BUF). */
const PIPE_BUF = 4096;

/** After a stop signal, how long stdout may take nothing before its output is given up. */
export const FINAL_FLUSH_MS = 2000;

/** One write: `buf[start..stop]`, whole lines. */
interface Piece {
  start: number;
  stop: number;
}

/** A chunk on its way to the stream: `buf[pos..end]` not handed over yet, `held` the piece the stream holds. */
interface Chunk {
  buf: Buffer;
  pos: number;
  end: number;
  held?: Piece;
}

function countNewlines(b: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = b.indexOf(10, start); i !== -1 && i < end; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * The writes a chunk is cut into: pipes and sockets take part of a big write and keep the rest,
 * so there a chunk leaves as pieces of whole lines of at most PIPE_BUF bytes (a line longer than
 * that is a piece of its own), each handed over once the one before is taken (so the stream
 * never merges them into one writev). Files and terminals, which node writes synchronously,
 * take the chunk in one write.
 */
function defaultPieceBytes(out: Writable): number {
  return out instanceof Socket && !(out as Socket & { isTTY?: boolean }).isTTY ? PIPE_BUF : Infinity;
}

export interface LineWriterOptions {
  /** What a line is, in the message about output cut short ("records" for trace). */
  unit?: string;
  /** The largest single write (default: PIPE_BUF for pipes and sockets, else the whole chunk). */
  pieceBytes?: number;
}

export class LineWriter {
  /** Write a line's bytes here, then call endLine(). */
  readonly w = new JsonBytes(CHUNK * 2);
  /** Complete lines in `w`. */
  private lines = 0;
  /** Nothing more can be written: the reader went away (EPIPE, closed) or a write failed (ENOSPC, EIO). */
  private ended = false;
  private writeFailed = false;
  private onEnd: (() => void)[] = [];
  private flushQueued = false;
  /** The chunk on its way, until the OS has taken all of it. */
  private inflight?: Chunk;
  /** Pieces taken since the writer started: progress, for the stall timer. */
  private taken = 0;
  private room?: Promise<void>;
  private releaseRoom?: () => void;
  private finalFlush?: { ms: number; why: string };
  private stallTimer?: NodeJS.Timeout;
  private abandoned = false;
  private notWritten = 0;
  private reported = false;
  private readonly unit: string;
  private readonly pieceBytes: number;
  /** Lines written in one turn of the event loop (one batch of events) leave at its end. */
  private readonly flushSoon = (): void => {
    this.flushQueued = false;
    void this.flush();
  };

  constructor(
    private readonly out: Writable = process.stdout,
    opts: LineWriterOptions = {},
  ) {
    this.unit = opts.unit ?? 'lines';
    this.pieceBytes = opts.pieceBytes ?? defaultPieceBytes(out);
    out.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || e.code === 'EBADF') this.stopOutput();
      else {
        // A full disk or a broken device: stop writing, say so once, and exit 71.
        process.stderr.write(`rxtrace: cannot write output: ${e.code ?? e.message} (check the disk or the destination of stdout)\n`);
        this.writeFailed = true;
        this.stopOutput();
      }
    });
    // Closed (destroyed) without an error: nothing more can be written, as when the reader goes.
    out.once('close', () => this.stopOutput());
  }

  /** Whether output has ended: the reader went away, or a write failed (`failed` tells which). */
  get outputEnded(): boolean {
    return this.ended;
  }

  /** Whether a write failed (other than the reader going away): the command exits 71. */
  get failed(): boolean {
    return this.writeFailed;
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

  /** From now on (a stop signal came), no wait on the stream lasts `ms` without progress. */
  boundFinalFlush(why: string, ms = FINAL_FLUSH_MS): void {
    if (this.finalFlush) return;
    this.finalFlush = { ms, why };
    this.armStall();
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
    const chunk: Chunk = { buf: this.w.buf, pos: 0, end: this.w.pos };
    this.lines = 0;
    this.w.pos = 0;
    this.inflight = chunk;
    this.send(chunk);
    if (!this.inflight) return undefined; // taken at once: `w` reuses its buffer
    // A file that failed at once (ENOSPC on /dev/full): its 'error' comes on the next tick.
    // Wait for it, so that whoever awaits this knows the output failed (main exits 71).
    // Else the stream holds part of the chunk: it keeps the buffer, `w` gets a new one.
    if (!this.out.errored) this.w.buf = Buffer.allocUnsafe(this.w.buf.length);
    return this.waitForRoom();
  }

  /** Hand the chunk's pieces over, one at a time, until the stream holds one or all are taken. */
  private send(chunk: Chunk): void {
    const { buf, end } = chunk;
    while (chunk.pos < end) {
      const start = chunk.pos;
      // Whole lines up to pieceBytes; a longer line alone. A chunk ends with a newline.
      let stop = start + this.pieceBytes >= end ? end : buf.lastIndexOf(10, start + this.pieceBytes - 1) + 1;
      if (stop <= start) stop = buf.indexOf(10, start) + 1;
      chunk.pos = stop;
      const piece: Piece = { start, stop };
      chunk.held = piece;
      this.out.write(buf.subarray(start, stop), (e) => this.written(chunk, piece, e));
      if (this.out.errored) return;
      // Taken at once (the write completed synchronously): on to the next piece.
      if (this.out.writableLength > 0) return;
      chunk.held = undefined;
    }
    this.inflight = undefined;
  }

  private written(chunk: Chunk, piece: Piece, e?: Error | null): void {
    if (this.inflight !== chunk || chunk.held !== piece) return;
    if (e) return; // the 'error' event follows: stopOutput() wakes the waiters
    chunk.held = undefined;
    this.taken++;
    this.send(chunk);
    if (this.inflight) return;
    this.wake();
    if (this.w.pos > 0) this.flushLater();
  }

  /** A promise that resolves once the chunk in flight is taken (or output ends). */
  private waitForRoom(): Promise<void> {
    if (!this.room) {
      this.room = new Promise<void>((resolve) => (this.releaseRoom = resolve));
      this.armStall();
    }
    return this.room;
  }

  private wake(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    const release = this.releaseRoom;
    this.room = undefined;
    this.releaseRoom = undefined;
    release?.();
  }

  /** Start the stall timer of the current wait, once the final flush is bounded. */
  private armStall(): void {
    if (!this.finalFlush || !this.room || this.stallTimer) return;
    const { ms } = this.finalFlush;
    let mark = this.taken;
    const check = (): void => {
      this.stallTimer = undefined;
      if (!this.room) return;
      if (this.taken > mark) {
        // Slow, but moving: the reader took part of the chunk. Give it another period.
        mark = this.taken;
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
    let lost = this.lines;
    const f = this.inflight;
    // The piece the stream holds and the rest of its chunk (a piece is taken whole or not at all).
    if (f) lost += countNewlines(f.buf, f.held ? f.held.start : f.pos, f.end);
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
      const why = this.finalFlush?.why ?? 'after the stop';
      process.stderr.write(
        `rxtrace: output cut short ${why}: stdout took nothing for ${(this.finalFlush?.ms ?? FINAL_FLUSH_MS) / 1000} s, ${this.notWritten} ${this.unit} not written (is the reader of stdout stuck?)\n`,
      );
    }
  }
}

/**
 * The writers of one run of the program. main makes it, the commands open their writers from
 * it, and main reads what they came to: a failed write (exit 71), output given up (exit without
 * waiting for the stuck write), and the first stop signal bounds every writer's final flush.
 */
export class Outputs {
  private readonly writers: LineWriter[] = [];
  private bound?: string;

  open(out: Writable = process.stdout, opts: LineWriterOptions = {}): LineWriter {
    const w = new LineWriter(out, opts);
    this.writers.push(w);
    if (this.bound !== undefined) w.boundFinalFlush(this.bound);
    return w;
  }

  /** A stop signal came: from now on, no writer waits on a stream that makes no progress. */
  boundFinalFlush(why: string): void {
    this.bound ??= why;
    for (const w of this.writers) w.boundFinalFlush(why);
  }

  get failed(): boolean {
    return this.writers.some((w) => w.failed);
  }

  get cutShort(): boolean {
    return this.writers.some((w) => w.cutShort);
  }
}
