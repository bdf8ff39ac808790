// Line output to stdout with backpressure, and a quiet end when the reader goes away (EPIPE,
// `rxtrace trace | head -1`): we stop tracing and exit 0 instead of crashing. Lines are written
// as bytes into one reusable buffer (`w`) and handed to the stream in 64 KiB chunks.
import type { Writable } from 'node:stream';
import { JsonBytes } from '../decode/json-bytes.js';

const CHUNK = 65536;

let outputError = false;

/** Whether a write to stdout failed (other than the reader going away): main() exits 74. */
export const outputFailed = (): boolean => outputError;

export class LineWriter {
  /** Write a line's bytes here, then call endLine(). */
  readonly w = new JsonBytes(CHUNK * 2);
  private closedByReader = false;
  private onGone: (() => void)[] = [];
  private flushQueued = false;
  /** Lines written in one turn of the event loop (one batch of events) leave at its end. */
  private readonly flushSoon = (): void => {
    this.flushQueued = false;
    void this.flush();
  };

  constructor(private readonly out: Writable = process.stdout) {
    out.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || e.code === 'EBADF') this.gone();
      else {
        // A full disk or a broken device: stop writing, say so once, and exit 71.
        process.stderr.write(`rxtrace: cannot write output: ${e.code ?? e.message} (check the disk or the destination of stdout)\n`);
        outputError = true;
        this.gone();
      }
    });
  }

  get readerGone(): boolean {
    return this.closedByReader;
  }

  /** Called once when stdout's reader has gone away. */
  onReaderGone(f: () => void): void {
    this.onGone.push(f);
  }

  private gone(): void {
    if (this.closedByReader) return;
    this.closedByReader = true;
    for (const f of this.onGone) f();
  }

  /** Queue a line (see endLine). Resolves when the stream can take more. */
  line(s: string): Promise<void> | undefined {
    if (this.closedByReader) return undefined;
    this.w.utf8(s);
    return this.endLine();
  }

  /**
   * End the line written into `w`. Output leaves in 64 KiB chunks, and whatever is left at the
   * end of this turn of the event loop, so a trickle of drops still shows up at once. Resolves
   * when the stream can take more.
   */
  endLine(): Promise<void> | undefined {
    if (this.closedByReader) {
      this.w.pos = 0;
      return undefined;
    }
    this.w.byte(10);
    if (this.w.pos >= CHUNK) return this.flush();
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushSoon);
    }
    return undefined;
  }

  flush(): Promise<void> | undefined {
    if (this.closedByReader || this.w.pos === 0) return undefined;
    const chunk = this.w.view();
    const ok = this.out.write(chunk);
    // Files and pipes take the bytes at once (stdout is synchronous there): reuse the buffer.
    // If the stream kept the chunk to write later, it is the stream's now.
    if (this.out.writableLength !== 0) this.w.buf = Buffer.allocUnsafe(this.w.buf.length);
    this.w.pos = 0;
    if (ok) return undefined;
    return new Promise((resolve) => {
      const done = (): void => {
        this.out.off('drain', done);
        this.out.off('close', done);
        resolve();
      };
      this.out.once('drain', done);
      this.out.once('close', done);
      this.onReaderGone(done);
    });
  }

  /** Flush what is left and wait for it to reach the OS. */
  async end(): Promise<void> {
    await this.flush();
    if (this.closedByReader) return;
    await new Promise<void>((resolve) => {
      if (this.out.writableNeedDrain) this.out.once('drain', () => resolve());
      else resolve();
    });
  }
}
