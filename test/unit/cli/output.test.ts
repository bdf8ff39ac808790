// LineWriter (src/cli/output.ts): every line reaches a destination that takes it, at most one
// chunk is in the stream's hands, and after a stop signal a stdout that takes nothing for the
// bound is given up, with an exact count of the lines that never reached it (docs/faults.md): a
// pipe gets whole lines in writes of at most PIPE_BUF, each taken whole or not at all. The bound
// runs on fake timers, so the tests do not race the machine's load.
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LineWriter, Outputs } from '../../../src/cli/output.js';

/**
 * A destination like a pipe whose reader stopped: it takes the first `takes` writes at once
 * (as a pipe with room does), then holds each write until release() or take().
 */
class StuckPipe extends Writable {
  chunks: Buffer[] = [];
  pending: (() => void)[] = [];
  constructor(private takes = 0) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    if (this.takes > 0) {
      this.takes--;
      cb();
    } else this.pending.push(() => cb());
  }
  /** The reader reads: what is held is taken, and the next `n` writes at once. */
  take(n = 0): void {
    this.takes = n;
    const p = this.pending;
    this.pending = [];
    for (const f of p) f();
  }
  release(): void {
    this.take(0);
  }
}

const line = (i: number): string => `${String(i).padStart(6, '0')} ${'x'.repeat(993)}`; // 1000 bytes + \n

let stderr: string[];
beforeEach(() => {
  stderr = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr.push(String(s));
    return true;
  });
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Fake setTimeout and Date only: the writer's setImmediate flushes stay real. */
const fakeTimers = (): void => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
};

describe('LineWriter', () => {
  it('a destination that takes every write: all lines, in order, nothing said', async () => {
    const got: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _e, cb) {
        got.push(Buffer.from(chunk));
        cb();
      },
    });
    const w = new LineWriter(out, { unit: 'records' });
    for (let i = 0; i < 500; i++) expect(w.line(line(i))).toBeUndefined();
    await w.end();
    const lines = Buffer.concat(got).toString().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toEqual(Array.from({ length: 500 }, (_, i) => line(i)));
    expect(stderr).toEqual([]);
    expect(w.cutShort).toBe(false);
  });

  it('a destination that fails at once (ENOSPC): end() waits for the error, which is remembered and said once', async () => {
    const out = new Writable({
      write(_chunk, _e, cb) {
        cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      },
    });
    const w = new LineWriter(out);
    w.line('one');
    await w.end();
    expect(w.failed).toBe(true);
    expect(w.outputEnded).toBe(true);
    expect(stderr).toEqual(['rxtrace: cannot write output: ENOSPC (check the disk or the destination of stdout)\n']);
  });

  it('a stuck destination: one chunk in its hands, the rest waits in the writer; all of it once it moves', async () => {
    const out = new StuckPipe();
    const w = new LineWriter(out, { unit: 'records' });
    let waits = 0;
    for (let i = 0; i < 200; i++) {
      const p = w.line(line(i));
      if (p) waits++;
    }
    expect(out.chunks).toHaveLength(1); // the first 64 KiB; the rest stays in the writer
    expect(waits).toBeGreaterThan(0);
    const ended = w.end();
    for (let k = 0; k < 10 && out.pending.length; k++) {
      out.release();
      await new Promise((r) => setImmediate(r));
    }
    await ended;
    const lines = Buffer.concat(out.chunks).toString().split('\n');
    lines.pop();
    expect(lines).toHaveLength(200);
    expect(stderr).toEqual([]);
  });

  it('a pipe gets whole lines in writes of at most PIPE_BUF, one at a time; a longer line alone', async () => {
    const out = new StuckPipe(1000);
    const w = new LineWriter(out, { pieceBytes: 4096 });
    for (let i = 0; i < 10; i++) w.line(line(i));
    w.line('y'.repeat(9000));
    w.line(line(10));
    await w.end();
    expect(out.chunks.map((c) => c.length)).toEqual([4004, 4004, 2002, 9001, 1001]);
    for (const c of out.chunks) expect(c[c.length - 1]).toBe(10);
  });

  it('after a stop signal, a destination that takes nothing is given up after the bound, counting every line not written', async () => {
    fakeTimers();
    // The pipe takes two writes of 4 lines each, then nothing.
    const out = new StuckPipe(2);
    const w = new LineWriter(out, { unit: 'records', pieceBytes: 4096 });
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 200; i++) wait = w.line(line(i)) ?? wait;
    expect(wait).toBeDefined();
    expect(out.chunks).toHaveLength(3); // two taken, the third held; no more handed over
    let released = false;
    void wait!.then(() => (released = true));
    w.boundFinalFlush('after SIGTERM', 100);
    await vi.advanceTimersByTimeAsync(99);
    expect(released, 'not given up before the bound').toBe(false);
    expect(w.cutShort).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await wait;
    expect(w.cutShort).toBe(true);
    // Lines offered afterwards are counted, not written.
    for (let i = 200; i < 205; i++) expect(w.line(line(i))).toBeUndefined();
    w.skipLine();
    await w.end();
    await w.end();
    // 200 offered - 8 taken + 5 + 1 afterwards.
    expect(stderr).toEqual([
      'rxtrace: output cut short after SIGTERM: stdout took nothing for 0.1 s, 198 records not written (is the reader of stdout stuck?)\n',
    ]);
  });

  it('after a stop signal, a slow destination that keeps taking writes is not given up', async () => {
    fakeTimers();
    const out = new StuckPipe();
    const w = new LineWriter(out, { unit: 'records', pieceBytes: 4096 });
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 100; i++) wait = w.line(line(i)) ?? wait;
    w.boundFinalFlush('after SIGINT', 100);
    // A write taken every 60 ms (less than the bound).
    for (let k = 1; k <= 4; k++) {
      await vi.advanceTimersByTimeAsync(60);
      out.take();
    }
    expect(w.cutShort).toBe(false);
    out.take(1000);
    await wait;
    await w.end();
    expect(w.cutShort).toBe(false);
    expect(Buffer.concat(out.chunks).toString().split('\n')).toHaveLength(101);
    expect(stderr).toEqual([]);
  });
});

describe('Outputs', () => {
  it("a stop signal bounds every writer's flush, those opened before and after; failed and cutShort are any writer's", async () => {
    fakeTimers();
    const outputs = new Outputs();
    const a = outputs.open(new StuckPipe(), { pieceBytes: 4096 });
    for (let i = 0; i < 100; i++) a.line(line(i));
    outputs.boundFinalFlush('after SIGHUP');
    const b = outputs.open(new StuckPipe(), { pieceBytes: 4096 });
    for (let i = 0; i < 100; i++) b.line(line(i));
    expect(outputs.cutShort).toBe(false);
    await vi.advanceTimersByTimeAsync(2000);
    expect([a.cutShort, b.cutShort, outputs.cutShort, outputs.failed]).toEqual([true, true, true, false]);
    const c = outputs.open(
      new Writable({
        write(_chunk, _e, cb) {
          cb(Object.assign(new Error('EIO'), { code: 'EIO' }));
        },
      }),
    );
    c.line('x');
    await c.end();
    expect(outputs.failed).toBe(true);
  });
});
