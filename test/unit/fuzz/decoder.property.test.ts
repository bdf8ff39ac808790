// Property tests of the sample decoder (src/decode): batches in the addon's format (src/native.ts)
// that are random bytes, valid, truncated at any point, or with flipped bytes, through every
// fixture schema. The decoder never throws (bad records are counted as malformed); a valid batch
// decodes exactly; every decoded record renders as NDJSON equal to what JSON.stringify gives for
// the same values, and as text.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchDecoder } from '../../../src/decode/batch.js';
import { WallClock } from '../../../src/decode/clock.js';
import { compileSchema, type CompiledEvent } from '../../../src/decode/compile.js';
import type { DropEvent, LostEvent } from '../../../src/decode/events.js';
import { parseFormat } from '../../../src/format/parse.js';
import { recordToJson } from '../../../src/render/ndjson.js';
import { recordToText } from '../../../src/render/text.js';
import { aggregateRecord, concat, lostRecord, sampleRecord } from '../../helpers/batch.js';
import { check } from './fuzz-runs.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/format/', import.meta.url));

/** One compiled event per distinct id, from every fixture kernel. */
const EVENTS: CompiledEvent[] = (() => {
  const byId = new Map<number, CompiledEvent>();
  for (const dir of readdirSync(FIXTURES, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const f of readdirSync(join(FIXTURES, dir.name))) {
      if (!f.endsWith('.format')) continue;
      const text = readFileSync(join(FIXTURES, dir.name, f), 'latin1');
      const system = f.startsWith('udp') ? 'udp' : f.startsWith('kfree') ? 'skb' : 'sock';
      const schema = parseFormat(text, system, f);
      if (!byId.has(schema.id)) byId.set(schema.id, compileSchema(schema));
    }
  }
  return [...byId.values()];
})();

const CLOCK = new WallClock(1_700_000_000_123_456_789n);

function decode(buf: ArrayBuffer) {
  const dec = new BatchDecoder(EVENTS, CLOCK);
  const drops: DropEvent[] = [];
  const lost: LostEvent[] = [];
  dec.decode(buf, { drop: (e) => drops.push(e), lost: (e) => lost.push(e) });
  return { drops, lost, counters: dec.counters };
}

/** Every record renders: NDJSON equal to JSON.stringify of the same values, and text. */
function assertRenders(r: DropEvent | LostEvent): void {
  const line = recordToJson(r);
  const parsed = JSON.parse(line) as Record<string, unknown>;
  if (r.event === 'lost') {
    const l = r as LostEvent;
    // a flipped byte can turn a lost record into an unsampled one (cause, since 1d77195): it must render too
    expect(parsed).toEqual({ event: 'lost', time: l.time, cpu: l.cpu, lost: l.lost, ...(l.cause ? { cause: l.cause } : {}) });
  } else {
    const d = r as DropEvent;
    const want: Record<string, unknown> = { time: d.time, cpu: d.cpu, pid: d.pid, tid: d.tid, event: d.event, fields: JSON.parse(JSON.stringify(d.fields)) };
    if (d.count !== undefined) want.count = d.count; // an aggregate says how many drops it stands for
    expect(parsed).toEqual(want);
    // Several fixture kernels share an event name: the keys are those of one of them, in order.
    const layouts = EVENTS.filter((e) => e.event === d.event).map((e) => e.schema.fields.filter((f) => !f.common).map((f) => f.name).join(','));
    expect(layouts).toContain(Object.keys(d.fields).join(','));
  }
  expect(typeof recordToText(r)).toBe('string');
}

function assertCounters(c: { samples: number; lost: number; malformed: number }): void {
  // (A garbage LOST record can carry any u64: finite, not necessarily exact.)
  for (const v of [c.samples, c.malformed]) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
  expect(Number.isFinite(c.lost) && c.lost >= 0).toBe(true);
}

/** A record that frames correctly: a sample of a known event (raw of any size ≥ 2), or a loss. */
const record = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        ev: fc.constantFrom(...EVENTS),
        extra: fc.integer({ min: -8, max: 64 }),
        fill: fc.uint8Array({ minLength: 256, maxLength: 256 }),
        cpu: fc.integer({ min: 0, max: 1023 }),
        pid: fc.nat(),
        timeNs: fc.integer({ min: 0, max: 2 ** 53 - 1 }),
      })
      .map(({ ev, extra, fill, cpu, pid, timeNs }) => {
        const size = Math.max(2, Math.min(256, ev.minRawSize + extra));
        const raw = fill.slice(0, size);
        new DataView(raw.buffer).setUint16(0, ev.schema.id, true);
        return { kind: 'sample' as const, ok: size >= ev.minRawSize, bytes: sampleRecord({ cpu, pid, tid: pid, timeNs, raw }) };
      }),
  },
  { weight: 1, arbitrary: fc.record({ cpu: fc.integer({ min: 0, max: 1023 }), lost: fc.integer({ min: 0, max: 2 ** 40 }) }).map(({ cpu, lost }) => ({ kind: 'lost' as const, ok: true, lost, bytes: lostRecord(cpu, lost) })) },
);

/** The addon's aggregate around a sample record (which may itself be too short for its schema). */
const aggregated = fc.record({ inner: record, count: fc.integer({ min: 1, max: 2 ** 40 }), last: fc.nat() }).map(({ inner, count, last }) =>
  inner.kind === 'sample' ? { kind: 'aggregate' as const, ok: inner.ok, count, bytes: aggregateRecord(1, count, last, inner.bytes) } : inner,
);
const anyRecord = fc.oneof({ weight: 3, arbitrary: record }, { weight: 1, arbitrary: aggregated });

describe('sample decoder (fuzz)', () => {
  it('compiles every fixture schema', () => {
    expect(EVENTS.length).toBeGreaterThanOrEqual(8);
  });

  it('random bytes: never throws, counters sane, whatever decodes renders', () => {
    check('decoder: random bytes', fc.uint8Array({ maxLength: 2048 }), (bytes) => {
      const { drops, lost, counters } = decode(new Uint8Array(bytes).buffer);
      assertCounters(counters);
      for (const r of [...drops, ...lost]) assertRenders(r);
    });
  });

  it('random bytes behind a valid record header (type SAMPLE or LOST, any size): never throws', () => {
    check(
      'decoder: random records',
      fc.array(fc.tuple(fc.constantFrom(2, 9, 1, 0, 0xffffffff, 0x10001), fc.integer({ min: 0, max: 600 }), fc.uint8Array({ maxLength: 600 })), { maxLength: 8 }),
      (recs) => {
        const parts = recs.map(([type, size, body]) => {
          const b = new Uint8Array(16 + body.length);
          const dv = new DataView(b.buffer);
          dv.setUint32(0, 1, true);
          dv.setUint32(8, type, true);
          dv.setUint16(14, size & 0xffff, true);
          b.set(body, 16);
          return b;
        });
        const { drops, lost, counters } = decode(concat(parts));
        assertCounters(counters);
        for (const r of [...drops, ...lost]) assertRenders(r);
      },
    );
  });

  it('valid batches decode exactly: one drop per sample big enough for its schema, every loss summed, the rest malformed', () => {
    check('decoder: valid batches', fc.array(anyRecord, { maxLength: 24 }), (recs) => {
      const { drops, lost, counters } = decode(concat(recs.map((r) => r.bytes)));
      const samples = recs.filter((r) => r.kind === 'sample' || r.kind === 'aggregate');
      expect(drops.length).toBe(samples.filter((r) => r.ok).length);
      expect(counters.malformed).toBe(samples.filter((r) => !r.ok).length);
      // An aggregate stands for its count, a sample for one.
      const want = samples.filter((r) => r.ok).reduce((a, r) => a + (r.kind === 'aggregate' ? r.count : 1), 0);
      expect(drops.reduce((a, d) => a + (d.count ?? 1), 0)).toBe(want);
      expect(counters.samples).toBe(want);
      expect(lost.reduce((a, l) => a + l.lost, 0)).toBe(recs.reduce((a, r) => a + (r.kind === 'lost' ? r.lost : 0), 0));
      for (const r of [...drops, ...lost]) assertRenders(r);
    });
  });

  it('valid batches truncated at any byte: never throws; the records before the cut decode, nothing after', () => {
    check('decoder: truncated batches', fc.tuple(fc.array(anyRecord, { minLength: 1, maxLength: 12 }), fc.nat()), ([recs, cutAt]) => {
      const whole = new Uint8Array(concat(recs.map((r) => r.bytes)));
      const cut = cutAt % (whole.length + 1);
      const { drops, lost, counters } = decode(whole.slice(0, cut).buffer);
      assertCounters(counters);
      // Records wholly before the cut.
      let end = 0;
      let complete = 0;
      let completeOkSamples = 0;
      for (const r of recs) {
        if (end + r.bytes.length > cut) break;
        end += r.bytes.length;
        complete++;
        if ((r.kind === 'sample' || r.kind === 'aggregate') && r.ok) completeOkSamples++;
      }
      expect(drops.length).toBe(completeOkSamples);
      expect(lost.length).toBe(recs.slice(0, complete).filter((r) => r.kind === 'lost').length);
      if (cut > end) expect(counters.malformed).toBeGreaterThan(0); // the cut record is counted, not dropped silently
      for (const r of [...drops, ...lost]) assertRenders(r);
    });
  });

  it('valid batches with flipped bytes: never throws, whatever decodes renders', () => {
    check(
      'decoder: flipped bytes',
      fc.tuple(fc.array(anyRecord, { minLength: 1, maxLength: 12 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 })),
      ([recs, flips]) => {
        const b = new Uint8Array(concat(recs.map((r) => r.bytes)));
        for (const [at, v] of flips) b[at % b.length] = v;
        const { drops, lost, counters } = decode(b.buffer);
        assertCounters(counters);
        for (const r of [...drops, ...lost]) assertRenders(r);
      },
    );
  });
});
