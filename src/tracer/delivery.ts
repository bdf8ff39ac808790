// The one way records leave an RxTracer: batch-granular async iterators, each with its own queue
// of batches. Back-pressure lives here and only here: when the records waiting (for attribution
// upstream, or in the fullest consumer's queue) pass the high-water mark, the reader is paused
// and the kernel counts the overflow as lost events; below half of it, the reader resumes. The
// 'drop'/'lost' emitter, the record iterator and stream() are all consumers of this (tracer.ts).

/** An async iterator of batches that is also iterable (for `for await`). */
export type BatchIterator<T> = AsyncIterableIterator<T[]>;

interface Consumer<T> {
  batches: T[][];
  head: number;
  /** Records in `batches[head..]`. */
  queued: number;
  wake?: () => void;
  done: boolean;
}

export class Delivery<T> {
  private readonly consumers = new Set<Consumer<T>>();
  /** Records decoded but not yet handed to the consumers (attribution is on them). */
  private upstream = 0;
  private paused = false;
  private ended = false;
  /** Set once the tracer is closing: the reader is never paused again after that. */
  private closing = false;
  /** Times the reader was paused because a consumer was behind. */
  pauses = 0;

  constructor(
    private readonly highWaterMark: number,
    private readonly setPaused: (paused: boolean) => void,
  ) {}

  /** Records waiting upstream of the consumers (they count toward the back-pressure). */
  setUpstream(records: number): void {
    this.upstream = records;
    this.update();
  }

  /** Hand a batch to every consumer. */
  push(batch: T[]): void {
    if (batch.length === 0) return;
    for (const c of this.consumers) {
      c.batches.push(batch);
      c.queued += batch.length;
      const w = c.wake;
      c.wake = undefined;
      w?.();
    }
    this.update();
  }

  /** From now on the reader stays as it is (a closing session is resumed for its final drain). */
  startClosing(): void {
    this.closing = true;
  }

  /** No more batches: each consumer ends once it has taken what is queued for it. */
  end(): void {
    this.ended = true;
    for (const c of this.consumers) {
      const w = c.wake;
      c.wake = undefined;
      w?.();
    }
  }

  /**
   * Every batch from now on (the consumer is registered before this returns, not at the first
   * next()), in order, until end(). A consumer that does not take its batches holds the reader
   * paused: leave early with return() (a `for await` that breaks does).
   */
  batches(): BatchIterator<T> {
    const c: Consumer<T> = { batches: [], head: 0, queued: 0, done: false };
    this.consumers.add(c);
    const finish = (): IteratorResult<T[]> => {
      c.done = true;
      c.batches = [];
      c.queued = 0;
      this.consumers.delete(c);
      const w = c.wake;
      c.wake = undefined;
      w?.();
      this.update();
      return { done: true, value: undefined };
    };
    const it: BatchIterator<T> = {
      next: async (): Promise<IteratorResult<T[]>> => {
        for (;;) {
          if (c.done) return { done: true, value: undefined };
          if (c.head < c.batches.length) {
            const value = c.batches[c.head];
            c.batches[c.head++] = [];
            c.queued -= value.length;
            if (c.head > 64 && c.head * 2 > c.batches.length) {
              c.batches = c.batches.slice(c.head);
              c.head = 0;
            }
            if (this.paused) this.update();
            return { done: false, value };
          }
          if (this.ended) return finish();
          await new Promise<void>((resolve) => (c.wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<T[]>> => finish(),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Records one at a time, on top of batches(): the same registration, order and end. */
  records(): AsyncIterableIterator<T> {
    const b = this.batches();
    let cur: T[] = [];
    let i = 0;
    const it: AsyncIterableIterator<T> = {
      next: async (): Promise<IteratorResult<T>> => {
        while (i >= cur.length) {
          const r = await b.next();
          if (r.done) return { done: true, value: undefined };
          cur = r.value;
          i = 0;
        }
        return { done: false, value: cur[i++] };
      },
      return: async (): Promise<IteratorResult<T>> => {
        cur = [];
        await b.return!();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  private update(): void {
    let backlog = this.upstream;
    for (const c of this.consumers) backlog = Math.max(backlog, c.queued);
    if (!this.paused && backlog > this.highWaterMark) {
      this.paused = true;
      this.pauses++;
      this.setPaused(true);
    } else if (this.paused && backlog < this.highWaterMark / 2 && !this.closing) {
      this.paused = false;
      this.setPaused(false);
    }
  }
}
