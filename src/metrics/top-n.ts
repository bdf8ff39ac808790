// Bounded, monotonic drop counters for `rxtrace_drops_total`: at most N keys get a series of
// their own, the rest are summed per event under local="other". Pure (the clock is injected).
//
// The rule that keeps every series a true counter: each drop is counted exactly once, in the
// series its key had at the moment it happened, and a series' value is never recomputed.
//  - A key holds a slot or not. While it holds one, its drops go to its own series; otherwise
//    to its event's "other" series. Nothing ever moves between series, so no series decreases
//    and the sum of all series is exactly the number of drops seen.
//  - Slots are given at once while some are free. When they are all taken, the keys are ranked
//    by a decayed drop count (half-life 10 min by default) at scrape time (rebalance()), and a
//    key takes the weakest holder's slot only when it scores `hysteresis` times higher, so a
//    series does not flap in and out between scrapes.
//  - A series first shows 0 (at the first scrape after its key got a slot; a key that wins a
//    slot back shows its old value) and its count from the next scrape on: increase()/rate()
//    ignore a series' first value, so a new key's first burst would otherwise be invisible to
//    "which process dropped in the last hour". The price is one scrape interval of delay. Only
//    a scrape whose response was delivered counts (view().commit()): a storm that makes the
//    host slow enough for a scrape to time out must not cost its own first sample.
//  - A key that loses its slot keeps the value its series had at the last scrape (what it
//    dropped since goes to "other": its series vanishes, and nothing may go unseen). If it wins
//    a slot back, its series continues from there (Prometheus sees a gap, not a reset).
// The price (docs/serve.md): a key's own series counts only the drops it made while it held a
// slot; what it dropped before (when all N were taken by bigger droppers) stays in "other".
// Keys tracked without a slot are bounded too (maxKeys): the weakest are forgotten, and one that
// comes back starts again from 0, which Prometheus reads as an ordinary counter reset.

export interface DropKey {
  /** `system:name` of the tracepoint. */
  event: string;
  /** Socket table (udp, udp6, icmp…), '' when the drop was not matched to one socket. */
  table: string;
  /** Local address `addr:port`, or 'other', 'global', 'unknown'. */
  local: string;
  /** Owners' process names, sorted and comma-joined; '' when unknown. */
  comm: string;
  /** With `serve --labels`: the owners' unit, container short id, pod (owner-labels.ts). */
  unit?: string;
  container?: string;
  pod?: string;
}

export interface DropSeries {
  labels: DropKey;
  value: number;
}

export interface TopNOptions {
  /** Keys with a series of their own (N). */
  top: number;
  /** Half-life of the ranking score, ms (default 10 minutes). */
  halfLifeMs?: number;
  /** A challenger must score this many times the weakest holder to take its slot (default 2). */
  hysteresis?: number;
  /** Keys remembered in all, with or without a slot (default max(1000, 50 × top)). */
  maxKeys?: number;
  /** Events whose "other" series exist from the start, at 0 (so the first increase is seen). */
  events?: readonly string[];
  /** Clock, ms (default performance.now). */
  now?: () => number;
}

interface Entry {
  key: DropKey;
  /** Decayed drop count, as of `at`. */
  score: number;
  at: number;
  /** The key's own series: drops counted while it held a slot. */
  exported: number;
  /** The value its series showed at the last delivered scrape. */
  scraped: number;
  /** Its series has been delivered (at its old value, 0 when new) since it last got a slot. */
  announced: boolean;
  /** Bumped at every slot change, so a late commit cannot touch a newer tenure. */
  tenure: number;
  /** Every drop of the key since it was first seen (or last forgotten). */
  total: number;
  slot: boolean;
}

export function keyId(k: DropKey): string {
  return `${k.event}\u0000${k.table}\u0000${k.local}\u0000${k.comm}\u0000${k.unit ?? ''}\u0000${k.container ?? ''}\u0000${k.pod ?? ''}`;
}

export const OTHER = 'other';

export class TopNDrops {
  readonly top: number;
  private readonly halfLifeMs: number;
  private readonly hysteresis: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly slots = new Set<Entry>();
  private readonly other = new Map<string, number>();
  private forgotten = 0;
  private swaps = 0;

  constructor(opts: TopNOptions) {
    if (!Number.isInteger(opts.top) || opts.top < 0) throw new RangeError(`top must be a non-negative integer, got ${opts.top}`);
    this.top = opts.top;
    this.halfLifeMs = opts.halfLifeMs ?? 10 * 60_000;
    this.hysteresis = opts.hysteresis ?? 2;
    this.maxKeys = Math.max(opts.maxKeys ?? Math.max(1000, 50 * opts.top), opts.top);
    this.now = opts.now ?? (() => performance.now());
    for (const e of opts.events ?? []) this.other.set(e, 0);
  }

  /** Count `n` drops of `key`. O(1) amortised: called once per traced drop. */
  add(key: DropKey, n = 1): void {
    const id = keyId(key);
    const t = this.now();
    let e = this.entries.get(id);
    if (!e) {
      if (this.entries.size >= this.maxKeys) this.forget();
      e = { key: { ...key }, score: 0, at: t, exported: 0, scraped: 0, announced: false, tenure: 0, total: 0, slot: false };
      this.entries.set(id, e);
    }
    e.score = this.decayed(e, t) + n;
    e.at = t;
    e.total += n;
    if (!e.slot && this.slots.size < this.top) this.give(e);
    if (e.slot) e.exported += n;
    else this.other.set(key.event, (this.other.get(key.event) ?? 0) + n);
  }

  /**
   * Hand slots to the keys that now drop the most (call once per scrape, before series()).
   * Returns the number of slots that changed hands.
   */
  rebalance(): number {
    if (this.slots.size < this.top || this.entries.size === this.slots.size) return 0;
    const t = this.now();
    const challengers = [...this.entries.values()].filter((e) => !e.slot).map((e) => ({ e, s: this.decayed(e, t) }));
    challengers.sort((a, b) => b.s - a.s);
    const holders = [...this.slots].map((e) => ({ e, s: this.decayed(e, t) }));
    holders.sort((a, b) => a.s - b.s); // weakest first
    let changed = 0;
    let h = 0;
    for (const c of challengers) {
      if (h >= holders.length) break;
      const weakest = holders[h];
      if (!(c.s > 0 && c.s > weakest.s * this.hysteresis)) break; // challengers are sorted: none further wins
      this.take(weakest.e);
      this.give(c.e);
      h++;
      changed++;
    }
    this.swaps += changed;
    return changed;
  }

  /**
   * The series to export now: one per key holding a slot, plus "other" per event. `commit()`
   * records that they reached the scraper: only then does a new series move on from its first
   * value, and only a delivered value counts as seen when its key loses its slot. A scrape that
   * fails or times out is not committed, so its first sample is shown again next time.
   */
  view(): { series: DropSeries[]; commit: () => void } {
    const series: DropSeries[] = [];
    const shown: { e: Entry; value: number; tenure: number }[] = [];
    for (const e of this.slots) {
      // The first sample after a key gets a slot repeats the last one its series had (0 for a
      // new key): Prometheus' increase() and rate() count only what follows a first sample.
      const value = e.announced ? e.exported : e.scraped;
      shown.push({ e, value, tenure: e.tenure });
      series.push({ labels: { ...e.key }, value });
    }
    for (const [event, value] of this.other) series.push({ labels: { event, table: '', local: OTHER, comm: '' }, value });
    const commit = (): void => {
      for (const { e, value, tenure } of shown) {
        if (e.tenure !== tenure || !e.slot || value < e.scraped) continue;
        e.announced = true;
        e.scraped = value;
      }
    };
    return { series, commit };
  }

  /** view(), committed at once (a scraper that always receives what it asked for). */
  series(): DropSeries[] {
    const v = this.view();
    v.commit();
    return v.series;
  }

  /** Bookkeeping: keys remembered, holding slots, forgotten, slot changes; `total`: drops counted in the exported series and "other" (a new series shows its share one scrape later). */
  stats(): { keys: number; slots: number; forgotten: number; swaps: number; total: number } {
    let total = 0;
    for (const e of this.slots) total += e.exported;
    for (const v of this.other.values()) total += v;
    return { keys: this.entries.size, slots: this.slots.size, forgotten: this.forgotten, swaps: this.swaps, total };
  }

  private give(e: Entry): void {
    e.slot = true;
    e.announced = false;
    e.tenure++;
    this.slots.add(e);
  }

  /**
   * Take a key's slot. What it dropped since the last scrape was never exported under its own
   * series, which now vanishes: count that in "other" instead, so that no drop goes unseen.
   */
  private take(e: Entry): void {
    e.slot = false;
    e.tenure++;
    this.slots.delete(e);
    const unseen = e.exported - e.scraped;
    if (unseen > 0) {
      this.other.set(e.key.event, (this.other.get(e.key.event) ?? 0) + unseen);
      e.exported = e.scraped;
    }
  }

  private decayed(e: Entry, t: number): number {
    const dt = t - e.at;
    return dt <= 0 || !Number.isFinite(this.halfLifeMs) ? e.score : e.score * Math.pow(2, -dt / this.halfLifeMs);
  }

  /** Forget the weakest tenth of the keys without a slot (their drops stay counted in "other"). */
  private forget(): void {
    const t = this.now();
    const free = [...this.entries].filter(([, e]) => !e.slot).map(([id, e]) => ({ id, s: this.decayed(e, t) }));
    free.sort((a, b) => a.s - b.s);
    const n = Math.max(1, Math.ceil(this.maxKeys / 10));
    for (const { id } of free.slice(0, n)) this.entries.delete(id);
    this.forgotten += Math.min(n, free.length);
  }
}
