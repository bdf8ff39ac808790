// sameSlots()/slotKey(): attribution memoizes per distinct payload on them, so they must agree
// with each other, imply equal `fields`, and give up once `fields` has been handed out.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchDecoder } from '../../../src/decode/batch.js';
import { WallClock } from '../../../src/decode/clock.js';
import { compileSchema, type CompiledEvent } from '../../../src/decode/compile.js';
import { dropEncoding, type DecodedDrop } from '../../../src/decode/drop.js';
import { parseFormat } from '../../../src/format/parse.js';
import { concat, sampleRecord } from '../../helpers/batch.js';

const RUNS = Number(process.env.FC_RUNS ?? 300);
const fx = (p: string): string => readFileSync(new URL(`../../fixtures/format/${p}`, import.meta.url), 'utf8');
const layouts: [string, string][] = [
  ['6.18/udp_fail_queue_rcv_skb.format', 'udp'],
  ['6.9/udp_fail_queue_rcv_skb.format', 'udp'],
  ['6.18/kfree_skb.format', 'skb'],
  ['6.18/sock_exceed_buf_limit.format', 'sock'],
  ['6.18/sock_rcvqueue_full.format', 'sock'],
];
const compiled: CompiledEvent[] = layouts.map(([f, sys]) => compileSchema(parseFormat(fx(f), sys)));
const decoder = new BatchDecoder(compiled, new WallClock(0n));

function decode(ev: CompiledEvent, bytes: Uint8Array, family: number): DecodedDrop {
  const raw = Uint8Array.from(bytes);
  const dv = new DataView(raw.buffer);
  dv.setUint16(0, ev.schema.id, true);
  for (const f of ev.schema.fields) if (ev.schema.display.get(f.name) === 'sockaddr') dv.setUint16(f.offset, family, true);
  const out: DecodedDrop[] = [];
  decoder.decode(concat([sampleRecord({ cpu: 0, pid: 1, timeNs: 5, raw })]), { drop: (d) => out.push(d as DecodedDrop), lost: () => {} });
  expect(out).toHaveLength(1);
  return out[0];
}

describe('DecodedDrop payload identity (sameSlots, slotKey)', () => {
  for (const [i, ev] of compiled.entries()) {
    it(`${layouts[i][0]}: sameSlots ⇔ equal slotKey, and either implies equal fields`, () => {
      const size = ev.minRawSize + 8;
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: size, maxLength: size }),
          fc.option(fc.record({ at: fc.nat(size - 1), byte: fc.nat(255) }), { nil: undefined }),
          fc.constantFrom(0, 2, 10),
          (bytes, flip, family) => {
            const other = Uint8Array.from(bytes);
            if (flip) other[flip.at] = flip.byte;
            const a = decode(ev, bytes, family);
            const b = decode(ev, other, family);
            const same = a.sameSlots(b);
            expect(b.sameSlots(a)).toBe(same);
            expect(a.slotKey() === b.slotKey()).toBe(same);
            if (same) expect(a.readFields()).toEqual(b.readFields());
            // An identical payload is always the same.
            expect(a.sameSlots(decode(ev, bytes, family))).toBe(true);
          },
        ),
        { numRuns: RUNS },
      );
    });
  }

  it('different layouts are never the same, even with identical bytes', () => {
    const bytes = new Uint8Array(200);
    const a = decode(compiled[0], bytes, 2);
    const b = decode(compiled[1], bytes, 2);
    expect(a.sameSlots(b)).toBe(false);
    expect(a.slotKey()).not.toBe(b.slotKey());
  });

  it('reading `fields` keeps the identity (it is frozen); assigning it ends it', () => {
    const bytes = new Uint8Array(200);
    const a = decode(compiled[0], bytes, 2);
    const b = decode(compiled[0], bytes, 2);
    const f = a.fields;
    expect(Object.isFrozen(f)).toBe(true);
    expect(() => {
      (f as Record<string, unknown>).x = 1;
    }).toThrow(TypeError);
    expect(a.sameSlots(b)).toBe(true);
    expect(a.slotKey()).toBe(b.slotKey());
    expect(dropEncoding.identityKey(a)).toBe(b.slotKey());
    a.fields = { ...f };
    expect(a.slotKey()).toBeUndefined();
    expect(dropEncoding.identityKey(a)).toBeUndefined();
    expect(a.sameSlots(b)).toBe(false);
    expect(b.sameSlots(a)).toBe(false);
  });

  it('dropEncoding on an event decode did not make: no key, never the same, its own fields', () => {
    const plain = { time: 't', cpu: 0, pid: 1, tid: 1, event: 'udp:x', monoNs: 0, fields: { a: 1 } };
    expect(dropEncoding.identityKey(plain)).toBeUndefined();
    expect(dropEncoding.sameIdentity(plain, plain)).toBe(false);
    expect(dropEncoding.fieldsOf(plain)).toBe(plain.fields);
  });
});
