// Property tests of the tracefs `format` parser (src/format): random text, every kind of
// truncation and mutation of real format files (test/fixtures/format, several kernels). The only
// allowed failure is FormatParseError; whatever parses must be a schema the decoder can compile
// and run on any bytes without throwing, and whose NDJSON is valid JSON.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchDecoder } from '../../../src/decode/batch.js';
import { WallClock } from '../../../src/decode/clock.js';
import { compileSchema } from '../../../src/decode/compile.js';
import type { DropEvent, LostEvent } from '../../../src/decode/events.js';
import { parseFormat } from '../../../src/format/parse.js';
import { parsePrintFmt } from '../../../src/format/print-fmt.js';
import { FormatParseError, type EventSchema } from '../../../src/format/schema.js';
import { recordToJson } from '../../../src/render/ndjson.js';
import { recordToText } from '../../../src/render/text.js';
import { concat, sampleRecord } from '../../helpers/batch.js';
import { anyText, check, mutate, mutation } from './fuzz-runs.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/format/', import.meta.url));
const TRACEFS_FIXTURES = fileURLToPath(new URL('../../fixtures/tracefs/', import.meta.url));

function formatFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...formatFiles(p));
    else if (e.name === 'format' || e.name.endsWith('.format')) out.push(p);
  }
  return out;
}

// The truncated tree's format is broken on purpose (it is a fault case, not a sample).
const SAMPLES = [...formatFiles(FIXTURES), ...formatFiles(TRACEFS_FIXTURES).filter((p) => !p.includes('truncated'))].map((p) => ({ path: p, text: readFileSync(p, 'latin1') }));
const TOKENS = [
  'name: ', 'ID: ', 'format:\n', '\tfield:', 'int ', 'unsigned short ', '__u8 ', 'char ', 'void * ', '__data_loc char[] ', 'long ',
  'rc', 'dport', 'saddr[28]', 'name[32]', 'x[sizeof(struct sockaddr_in6)]', ';', '\t', '\n', 'offset:', 'size:', 'signed:', '0', '1',
  '4', '8', '28', '65537', '-1', 'print fmt: ', '"', '%d', '%pISpc', '%s', ', ', 'REC->', '__print_symbolic(', '{ 2, "AF_INET" }', ')',
];
const ALPHABET = ' \n\t:;[]{}(),"%0123456789-xX_abczAZé\u0000';

/** Whatever parses is a sane schema. */
function assertSchema(s: EventSchema): void {
  expect(typeof s.name).toBe('string');
  expect(s.name.length).toBeGreaterThan(0);
  expect(Number.isInteger(s.id) && s.id >= 0).toBe(true); // (the id file, not this line, gives the id used)
  expect(s.fields.length).toBeGreaterThan(0);
  expect(new Set(s.fields.map((f) => f.name)).size).toBe(s.fields.length);
  for (const f of s.fields) {
    expect(f.name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
    expect(Number.isSafeInteger(f.offset) && f.offset >= 0 && f.offset <= 65536).toBe(true);
    expect(Number.isSafeInteger(f.size) && f.size > 0 && f.size <= 65536).toBe(true);
    expect(Number.isSafeInteger(f.elementSize) && f.elementSize > 0).toBe(true);
    if (f.arrayLength !== undefined) expect(Number.isSafeInteger(f.arrayLength) && f.arrayLength > 0).toBe(true);
  }
  for (const table of s.symbols.values()) for (const [n, name] of table) expect(Number.isFinite(n) && typeof name === 'string').toBe(true);
}

/** parseFormat, allowing only FormatParseError; the schema when it parses. */
function parseOrTyped(text: string, system = 'fuzz'): EventSchema | undefined {
  try {
    const s = parseFormat(text, system, 'fuzz/format');
    assertSchema(s);
    return s;
  } catch (e) {
    if (e instanceof FormatParseError) return undefined;
    throw e;
  }
}

/** Compile the schema and decode `raw` (any bytes) with it: must not throw; NDJSON must be JSON. */
function decodeAny(schema: EventSchema, raw: Uint8Array, timeNs: number): void {
  const id = schema.id & 0xffff;
  const compiled = compileSchema({ ...schema, id });
  const bytes = new Uint8Array(raw);
  if (bytes.length >= 2) new DataView(bytes.buffer).setUint16(0, id, true); // common_type = the id
  const dec = new BatchDecoder([compiled], new WallClock(1_700_000_000_000_000_000n));
  const out: (DropEvent | LostEvent)[] = [];
  dec.decode(concat([sampleRecord({ cpu: 1, raw: bytes, timeNs })]), { drop: (e) => out.push(e), lost: (e) => out.push(e) });
  expect(dec.counters.samples + dec.counters.malformed).toBe(1);
  for (const e of out) {
    const json = JSON.parse(recordToJson(e)) as { fields: Record<string, unknown> };
    expect(Object.keys(json.fields)).toEqual(schema.fields.filter((f) => !f.common).map((f) => f.name));
    expect(typeof recordToText(e)).toBe('string');
  }
}

describe('format parser (fuzz)', () => {
  it('has samples from several kernels', () => {
    expect(SAMPLES.length).toBeGreaterThanOrEqual(10);
    for (const s of SAMPLES) expect(parseOrTyped(s.text), s.path).toBeDefined();
  });

  it('random text: a schema or FormatParseError', () => {
    check('format: random text', anyText(TOKENS), (text) => void parseOrTyped(text));
  });

  it('every truncation point of every sample: a schema or FormatParseError', () => {
    check('format: truncation', fc.tuple(fc.constantFrom(...SAMPLES), fc.nat()), ([s, at]) => void parseOrTyped(s.text.slice(0, at % (s.text.length + 1))));
  });

  it('mutated samples: a schema or FormatParseError', () => {
    check('format: mutations', fc.tuple(fc.constantFrom(...SAMPLES), fc.array(mutation(ALPHABET), { minLength: 1, maxLength: 6 })), ([s, ms]) =>
      void parseOrTyped(ms.reduce(mutate, s.text)),
    );
  });

  it('whatever parses compiles, decodes any bytes (short, long, garbage) without throwing, and renders as JSON', () => {
    check(
      'format: compile + decode',
      fc.tuple(
        fc.constantFrom(...SAMPLES),
        fc.array(mutation(ALPHABET), { maxLength: 4 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.oneof(fc.nat(), fc.constant(2 ** 53 - 1), fc.integer({ min: 0, max: 2 ** 48 })),
      ),
      ([s, ms, raw, t]) => {
        const schema = parseOrTyped(ms.reduce(mutate, s.text));
        if (schema) decodeAny(schema, raw, t);
      },
    );
  });

  it('print fmt: any text gives display and symbol maps, never a throw', () => {
    check('format: print fmt', fc.oneof(anyText(TOKENS), fc.constantFrom(...SAMPLES).map((s) => s.text.slice(s.text.indexOf('print fmt:') + 10))), (text) => {
      const info = parsePrintFmt(text);
      expect(info.display).toBeInstanceOf(Map);
      expect(info.symbols).toBeInstanceOf(Map);
    });
  });
});
