// rxtrace_drops_total's bounding (src/metrics/top-n.ts): at most N + one "other" per event,
// every series monotonic across scrapes (also across losing and winning back a slot), and
// the sum of the series equal to the drops counted. Examples first, then fast-check.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyId, OTHER, TopNDrops, type DropKey, type DropSeries } from '../../../src/metrics/top-n.js';

const RUNS = Number(process.env.FC_RUNS) || 300;
const EV = 'udp:udp_fail_queue_rcv_skb';
const key = (local: string, comm = 'feed', event = EV): DropKey => ({ event, table: 'udp', local, comm });
/** local → value, summing the "other" series of all events. */
function byLocal(s: DropSeries[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of s) out[x.labels.local] = (out[x.labels.local] ?? 0) + x.value;
  return out;
}

describe('TopNDrops', () => {
  it('gives slots at once while some are free; the rest go to "other" of their event', () => {
    const t = new TopNDrops({ top: 2, events: [EV, 'sock:sock_rcvqueue_full'] });
    t.add(key('a'), 5);
    t.add(key('b'), 3);
    t.add(key('c'), 7);
    // A new series shows 0 first, so that Prometheus' increase() counts its first drops too.
    expect(byLocal(t.series())).toEqual({ a: 0, b: 0, other: 7 });
    const s = t.series();
    expect(byLocal(s)).toEqual({ a: 5, b: 3, other: 7 });
    expect(s.filter((x) => x.labels.local === OTHER).map((x) => x.labels)).toEqual([
      { event: EV, table: '', local: OTHER, comm: '' },
      { event: 'sock:sock_rcvqueue_full', table: '', local: OTHER, comm: '' },
    ]);
  });

  it('a new heavy dropper takes the weakest slot at rebalance(), and only with the hysteresis margin', () => {
    let now = 0;
    const t = new TopNDrops({ top: 2, hysteresis: 2, halfLifeMs: 60_000, now: () => now });
    t.add(key('a'), 100);
    t.add(key('b'), 10);
    t.add(key('c'), 15); // 15 < 2 × 10: no swap
    expect(t.rebalance()).toBe(0);
    t.series();
    expect(byLocal(t.series())).toEqual({ a: 100, b: 10, other: 15 });
    now += 1000;
    t.add(key('c'), 30); // ~45 > 2 × ~10
    expect(t.rebalance()).toBe(1);
    // c's own series counts only what it dropped after getting the slot; its 45 so far are in other.
    expect(byLocal(t.series())).toEqual({ a: 100, c: 0, other: 45 });
    t.add(key('c'), 4);
    t.add(key('b'), 6); // b lost its slot: this goes to other
    expect(byLocal(t.series())).toEqual({ a: 100, c: 4, other: 51 });
    expect(t.stats().total).toBe(100 + 10 + 45 + 4 + 6 - 10); // b's 10 froze in its vanished series
  });

  it('old drops decay: after hours of quiet, a small current dropper displaces a big old one', () => {
    let now = 0;
    const t = new TopNDrops({ top: 1, halfLifeMs: 10 * 60_000, now: () => now });
    t.add(key('old'), 1_000_000);
    now += 4 * 3600_000; // 24 half-lives: ~0.06 left
    t.add(key('new'), 10);
    expect(t.rebalance()).toBe(1);
    t.add(key('new'), 1);
    // old's million were never scraped under its own series: they move to other, not lost.
    expect(byLocal(t.series())).toEqual({ new: 0, other: 1_000_010 });
    expect(byLocal(t.series())).toEqual({ new: 1, other: 1_000_010 });
  });

  it('a key that wins its slot back continues its series from where it stopped', () => {
    let now = 0;
    const t = new TopNDrops({ top: 1, halfLifeMs: 1000, hysteresis: 1.5, now: () => now });
    t.add(key('a'), 50);
    t.series();
    expect(byLocal(t.series())).toEqual({ a: 50 });
    t.add(key('a'), 7); // not scraped before a loses its slot: goes to other then
    now += 10_000;
    t.add(key('b'), 40);
    t.rebalance();
    expect(byLocal(t.series())).toEqual({ b: 0, other: 47 });
    now += 10_000;
    t.add(key('a'), 500);
    t.rebalance();
    t.add(key('a'), 2);
    // Back with its last value first (a gap for Prometheus, not a reset), then counting on.
    expect(byLocal(t.series())).toEqual({ a: 50, other: 547 });
    expect(byLocal(t.series())).toEqual({ a: 52, other: 547 });
  });

  it('view(): only a committed view moves a new series on; a stale commit is ignored', () => {
    let now = 0;
    const t = new TopNDrops({ top: 1, halfLifeMs: 1000, now: () => now });
    t.add(key('a'), 5);
    const v1 = t.view();
    expect(byLocal(v1.series)).toEqual({ a: 0 });
    expect(byLocal(t.view().series)).toEqual({ a: 0 }); // v1 not committed: still the first sample
    v1.commit();
    const v2 = t.view();
    expect(byLocal(v2.series)).toEqual({ a: 5 });
    now += 10_000;
    t.add(key('b'), 100);
    t.rebalance(); // a loses its slot before v2 is committed: its 5 were never delivered → other
    v2.commit(); // too late: ignored
    expect(byLocal(t.series())).toEqual({ b: 0, other: 105 });
  });

  it('remembers at most maxKeys keys; forgotten keys stay counted in "other"', () => {
    const t = new TopNDrops({ top: 2, maxKeys: 20 });
    for (let i = 0; i < 500; i++) t.add(key(`10.0.0.1:${i}`, `c${i % 7}`));
    const st = t.stats();
    expect(st.keys).toBeLessThanOrEqual(21);
    expect(st.forgotten).toBeGreaterThan(0);
    expect(st.total).toBe(500);
    expect(t.series()).toHaveLength(3);
  });

  it('top 0 exports only "other"', () => {
    const t = new TopNDrops({ top: 0 });
    t.add(key('a'), 3);
    t.rebalance();
    expect(t.series()).toEqual([{ labels: { event: EV, table: '', local: OTHER, comm: '' }, value: 3 }]);
  });

  it('rejects a bad N', () => {
    expect(() => new TopNDrops({ top: -1 })).toThrow(RangeError);
    expect(() => new TopNDrops({ top: 1.5 })).toThrow(RangeError);
  });

  it('property: bounded, monotonic per series (through gaps), sum exact', () => {
    const op = fc.oneof(
      { weight: 8, arbitrary: fc.record({ kind: fc.constant('add' as const), k: fc.integer({ min: 0, max: 30 }), ev: fc.integer({ min: 0, max: 2 }), n: fc.integer({ min: 1, max: 1000 }), dt: fc.integer({ min: 0, max: 120_000 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('scrape' as const) }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 8, max: 40 }), fc.double({ min: 1, max: 4, noNaN: true }), fc.array(op, { maxLength: 300 }), (top, maxKeys, hysteresis, ops) => {
        let now = 0;
        const events = ['e0', 'e1', 'e2'];
        const t = new TopNDrops({ top, maxKeys, hysteresis, halfLifeMs: 60_000, events, now: () => now });
        const last = new Map<string, number>();
        let added = 0;
        for (const o of [...ops, { kind: 'scrape' as const }]) {
          if (o.kind === 'add') {
            now += o.dt;
            t.add({ event: events[o.ev], table: 'udp', local: `127.0.0.1:${o.k}`, comm: `p${o.k % 3}` }, o.n);
            added += o.n;
            continue;
          }
          t.rebalance();
          const s = t.series();
          const ids = s.map((x) => keyId(x.labels));
          expect(new Set(ids).size).toBe(ids.length); // no duplicate label sets
          expect(s.filter((x) => x.labels.local !== OTHER).length).toBeLessThanOrEqual(top);
          expect(s.length).toBeLessThanOrEqual(top + events.length);
          let sum = 0;
          for (const x of s) {
            const id = keyId(x.labels);
            const prev = last.get(id);
            // Monotonic, unless the key was forgotten (which Prometheus reads as a counter reset).
            if (prev !== undefined && t.stats().forgotten === 0) expect(x.value).toBeGreaterThanOrEqual(prev);
            last.set(id, x.value);
            sum += x.value;
          }
          // Every drop is in exactly one series; series of keys without a slot are not exported,
          // so the exported sum is at most the drops counted, and "other" alone never decreases.
          expect(sum).toBeLessThanOrEqual(added);
        }
        // Nothing is counted twice or lost: exported + the frozen values of keys without a slot = added.
        expect(t.stats().total).toBeLessThanOrEqual(added);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: without forgetting, exported series + frozen ones account for every drop', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: 50 }), fc.boolean()), { maxLength: 200 }), (top, ops) => {
        let now = 0;
        const t = new TopNDrops({ top, maxKeys: 1000, hysteresis: 1.2, halfLifeMs: 5_000, now: () => now });
        const seen = new Map<string, number>(); // highest value ever exported per series
        let added = 0;
        for (const [k, n, scrape] of ops) {
          now += 1000;
          t.add(key(`127.0.0.1:${k}`), n);
          added += n;
          if (scrape) {
            t.rebalance();
            for (const x of t.series()) {
              const id = keyId(x.labels);
              expect(x.value).toBeGreaterThanOrEqual(seen.get(id) ?? 0);
              seen.set(id, x.value);
            }
          }
        }
        t.rebalance();
        t.series();
        for (const x of t.series()) seen.set(keyId(x.labels), x.value);
        const total = [...seen.values()].reduce((a, b) => a + b, 0);
        expect(total).toBe(added);
      }),
      { numRuns: RUNS },
    );
  });
});
