// LineWriter (src/cli/output.ts): every line reaches a destination that takes it, at most one
// chunk is in the stream's hands, and after a stop signal a stdout that takes nothing for the
// bound is given up, with an exact count of the lines that never reached it (docs/faults.md). The
// bound runs on fake timers, so the tests do not race the machine's load.
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

type OutputModule = typeof import('../../../src/cli/output.js');

/** A fresh module each time: the final-flush bound is process-wide once set. */
async function load(): Promise<OutputModule> {
  vi.resetModules();
  return import('../../../src/cli/output.js');
}

/** A destination that takes nothing until release(); `_handle.writeQueueSize` as net.Socket has. */
class StuckPipe extends Writable {
  chunks: Buffer[] = [];
  pending: (() => void)[] = [];
  _handle = { writeQueueSize: 0 };
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    this._handle.writeQueueSize = chunk.length;
    this.pending.push(() => {
      this._handle.writeQueueSize = 0;
      cb();
    });
  }
  release(): void {
    const p = this.pending;
    this.pending = [];
    for (const f of p) f();
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
    const { LineWriter, outputCutShort } = await load();
    const got: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _e, cb) {
        got.push(Buffer.from(chunk));
        cb();
      },
    });
    const w = new LineWriter(out, 'records');
    for (let i = 0; i < 500; i++) expect(w.line(line(i))).toBeUndefined();
    await w.end();
    const lines = Buffer.concat(got).toString().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toEqual(Array.from({ length: 500 }, (_, i) => line(i)));
    expect(stderr).toEqual([]);
    expect(outputCutShort()).toBe(false);
  });

  it('a destination that fails at once (ENOSPC): end() waits for the error, which is remembered and said once', async () => {
    const { LineWriter, outputFailed } = await load();
    const out = new Writable({
      write(_chunk, _e, cb) {
        cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      },
    });
    const w = new LineWriter(out);
    w.line('one');
    await w.end();
    expect(outputFailed()).toBe(true);
    expect(w.outputEnded).toBe(true);
    expect(stderr).toEqual(['rxtrace: cannot write output: ENOSPC (check the disk or the destination of stdout)\n']);
  });

  it('a stuck destination: one chunk in its hands, the rest waits in the writer; all of it once it moves', async () => {
    const { LineWriter } = await load();
    const out = new StuckPipe();
    const w = new LineWriter(out, 'records');
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

  it('after a stop signal, a destination that takes nothing is given up after the bound, counting every line not written', async () => {
    const { LineWriter, boundFinalFlush, outputCutShort } = await load();
    fakeTimers();
    const out = new StuckPipe();
    const w = new LineWriter(out, 'records');
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 200; i++) wait = w.line(line(i)) ?? wait;
    expect(wait).toBeDefined();
    let released = false;
    void wait!.then(() => (released = true));
    // The kernel took 10 lines and a half of the chunk in flight.
    out._handle.writeQueueSize = out.chunks[0].length - 10_500;
    boundFinalFlush('after SIGTERM', 100);
    await vi.advanceTimersByTimeAsync(99);
    expect(released, 'not given up before the bound').toBe(false);
    expect(w.cutShort).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await wait;
    expect(w.cutShort).toBe(true);
    expect(outputCutShort()).toBe(true);
    // Lines offered afterwards are counted, not written.
    for (let i = 200; i < 205; i++) expect(w.line(line(i))).toBeUndefined();
    w.skipLine();
    await w.end();
    await w.end();
    expect(stderr).toEqual([
      'rxtrace: output cut short after SIGTERM: stdout took nothing for 0.1 s, 196 records not written (is the reader of stdout stuck?)\n',
    ]);
  });

  it('after a stop signal, a slow destination that keeps taking bytes is not given up', async () => {
    const { LineWriter, boundFinalFlush } = await load();
    fakeTimers();
    const out = new StuckPipe();
    const w = new LineWriter(out, 'records');
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 100; i++) wait = w.line(line(i)) ?? wait;
    boundFinalFlush('after SIGINT', 100);
    // Progress every 60 ms (less than the bound), the chunk taken after 4 of them.
    const total = out.chunks[0].length;
    for (let k = 1; k <= 4; k++) {
      await vi.advanceTimersByTimeAsync(60);
      out._handle.writeQueueSize = Math.max(0, total - k * 16384);
    }
    expect(w.cutShort).toBe(false);
    out.release();
    await wait;
    const ended = w.end();
    for (let k = 0; k < 10; k++) {
      out.release();
      await new Promise((r) => setImmediate(r));
    }
    await ended;
    expect(w.cutShort).toBe(false);
    expect(Buffer.concat(out.chunks).toString().split('\n')).toHaveLength(101);
    expect(stderr).toEqual([]);
  });
});
