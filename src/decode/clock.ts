// Sample times are CLOCK_MONOTONIC ns; users want wall-clock time. Doubles hold monotonic ns
// exactly (for 104 days of uptime), not epoch ns, so seconds and nanoseconds are kept apart.

export class WallClock {
  private readonly offSec: number;
  private readonly offNs: number;
  private lastSec = -1;
  private lastPrefix = '';

  /** @param offsetNs CLOCK_REALTIME − CLOCK_MONOTONIC, from the addon's clockOffsetNs(). */
  constructor(offsetNs: bigint) {
    this.offSec = Number(offsetNs / 1_000_000_000n);
    this.offNs = Number(offsetNs % 1_000_000_000n);
  }

  /** RFC 3339 UTC with nanoseconds, e.g. 2026-11-23T23:01:02.123456789Z. */
  iso(monoNs: number): string {
    const t = monoNs + this.offNs;
    const sec = this.offSec + Math.floor(t / 1e9);
    const ns = t - Math.floor(t / 1e9) * 1e9;
    if (sec !== this.lastSec) {
      this.lastSec = sec;
      this.lastPrefix = new Date(sec * 1000).toISOString().slice(0, 19) + '.';
    }
    return this.lastPrefix + String(ns).padStart(9, '0') + 'Z';
  }

  /** Wall-clock ms (for Date and intervals). */
  ms(monoNs: number): number {
    return this.offSec * 1000 + (monoNs + this.offNs) / 1e6;
  }
}
