// Sample times are CLOCK_MONOTONIC ns; users want wall-clock time. Doubles hold monotonic ns
// exactly (for 104 days of uptime), not epoch ns, so seconds and nanoseconds are kept apart.
import { DIGITS2, utf8Bytes } from './bytes.js';

export class WallClock {
  private readonly offSec: number;
  private readonly offNs: number;
  private lastSec = -1;
  private lastPrefix = '';
  private lastPrefixBytes: Uint8Array = new Uint8Array(0);

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
    return this.prefix(sec) + String(ns).padStart(9, '0') + 'Z';
  }

  /** iso(monoNs) at b[p] for the line writer (30 bytes reserved); returns the new p. */
  isoAt(b: Uint8Array, p: number, monoNs: number): number {
    const t = monoNs + this.offNs;
    const sec = this.offSec + Math.floor(t / 1e9);
    let ns = t - Math.floor(t / 1e9) * 1e9;
    this.prefix(sec);
    const k = this.lastPrefixBytes;
    if (!(Number.isInteger(ns) && ns >= 0 && ns < 1e9 && k.length === 20)) {
      // Never for decoded samples; a year past 9999 or a hand-made monoNs lands here.
      const s = this.iso(monoNs);
      const e = Buffer.from(s, 'utf8');
      if (e.length > 30) throw new RangeError(`time text too long: ${s}`);
      b.set(e, p);
      return p + e.length;
    }
    for (let i = 0; i < 20; i++) b[p + i] = k[i];
    // Nine digits: four pairs from the "00".."99" table, then one.
    for (let q = p + 28; q > p + 20; q -= 2) {
      const d = (ns / 100) | 0;
      const r = (ns - d * 100) << 1;
      b[q] = DIGITS2[r + 1];
      b[q - 1] = DIGITS2[r];
      ns = d;
    }
    b[p + 20] = 48 + ns;
    b[p + 29] = 90; // Z
    return p + 30;
  }

  /** "YYYY-MM-DDTHH:MM:SS." of a second, cached: events arrive a second at a time. */
  private prefix(sec: number): string {
    if (sec !== this.lastSec) {
      this.lastSec = sec;
      this.lastPrefix = new Date(sec * 1000).toISOString().slice(0, 19) + '.';
      this.lastPrefixBytes = utf8Bytes(this.lastPrefix);
    }
    return this.lastPrefix;
  }

  /** Wall-clock ms (for Date and intervals). */
  ms(monoNs: number): number {
    return this.offSec * 1000 + (monoNs + this.offNs) / 1e6;
  }
}
