// Line output to stdout with backpressure, and a quiet end when the reader goes away (EPIPE,
// `rxtrace trace | head -1`): we stop tracing and exit 0 instead of crashing.
import type { Writable } from 'node:stream';

export class LineWriter {
  private buf = '';
  private closedByReader = false;
  private onGone: (() => void)[] = [];

  constructor(private readonly out: Writable = process.stdout) {
    out.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || e.code === 'EBADF') this.gone();
      else throw e;
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

  /** Queue a line; flushes in 64 KiB chunks. Resolves when the stream can take more. */
  line(s: string): Promise<void> | undefined {
    if (this.closedByReader) return undefined;
    this.buf += s + '\n';
    if (this.buf.length >= 65536) return this.flush();
    return undefined;
  }

  flush(): Promise<void> | undefined {
    if (this.closedByReader || this.buf.length === 0) return undefined;
    const chunk = this.buf;
    this.buf = '';
    if (this.out.write(chunk)) return undefined;
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
