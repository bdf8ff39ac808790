// The schedule of `stats` and `top`: the k-th interval ends at start + k·period, so the time a
// read takes does not drift the schedule, and a stop (a signal, the reader of stdout gone)
// ends the wait at once instead of after the rest of the interval.

export class IntervalClock {
  private start = performance.now();
  private k = 0;
  private wake?: () => void;
  private stoppedFlag = false;

  constructor(private readonly periodMs: number) {}

  /** Whether stop() was called. */
  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** Intervals begun so far (1 during the first). */
  get count(): number {
    return this.k;
  }

  /** Count intervals from `monoMs` (performance.now() time of the first read). */
  startAt(monoMs: number): void {
    this.start = monoMs;
    this.k = 0;
  }

  /** End any wait now; next() returns false from now on. */
  stop(): void {
    this.stoppedFlag = true;
    this.wake?.();
  }

  /** Wait until the next interval ends. False when stopped (before or during the wait). */
  async next(): Promise<boolean> {
    if (this.stoppedFlag) return false;
    const k = ++this.k;
    let due = this.start + k * this.periodMs;
    const now = performance.now();
    if (now > due + this.periodMs) {
      // Reading took longer than an interval (a slow /proc): restart the schedule from now
      // rather than fire a burst of catch-up intervals.
      this.start = now - (k - 1) * this.periodMs;
      due = now + this.periodMs;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(0, due - performance.now()));
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
    return !this.stoppedFlag;
  }
}
