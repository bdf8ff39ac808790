// Robustness: every parser, given garbage, truncated or mutated input, either returns a value
// whose numbers are finite, or throws ProcParseError, never another error type. FC_RUNS
// raises the number of runs (default 200 per property).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { parseNetDev } from '../../../src/procnet/netdev.js';
import { parseSnmp, parseSnmp6 } from '../../../src/procnet/snmp.js';
import { parseSocketTable, type SocketTable } from '../../../src/procnet/sockets.js';
import { parseMemLimits, parseSockstat } from '../../../src/procnet/sockstat.js';
import { parseSoftnetStat } from '../../../src/procnet/softnet.js';
import { parseStatValue } from '../../../src/procnet/sysfs-stats.js';

const RUNS = Number(process.env.FC_RUNS) || 200;
const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

const table = (t: SocketTable, files: string[], endian: 'LE' | 'BE' = 'LE') => ({
  name: t,
  samples: files.map(fixture),
  parse: (s: string) => parseSocketTable(s, t, { endian }),
});

const PARSERS: { name: string; samples: string[]; parse: (text: string) => unknown }[] = [
  table('udp', ['udp-6.18.txt', 'udp-no-drops.txt', 'udp-extra-columns.txt']),
  table('udp6', ['udp6-6.18.txt', 'udp6-be.txt'], 'BE'),
  table('raw', ['raw-6.18.txt', 'udp-be.txt'], 'BE'),
  table('raw6', ['raw6-6.18.txt']),
  table('icmp', ['icmp-6.18.txt']),
  table('icmp6', ['icmp6-6.18.txt']),
  { name: 'snmp', samples: ['snmp-6.18.txt', 'snmp-5.10.txt'].map(fixture), parse: (s) => parseSnmp(s) },
  { name: 'snmp6', samples: [fixture('snmp6-6.18.txt')], parse: (s) => parseSnmp6(s) },
  {
    name: 'softnet_stat',
    samples: ['softnet_stat-6.18.txt', 'softnet_stat-13col.txt', 'softnet_stat-11col.txt'].map(fixture),
    parse: (s) => parseSoftnetStat(s),
  },
  { name: 'dev', samples: ['dev-6.18.txt', 'dev-joined.txt'].map(fixture), parse: (s) => parseNetDev(s) },
  { name: 'sockstat', samples: ['sockstat-6.18.txt', 'sockstat6-6.18.txt'].map(fixture), parse: (s) => parseSockstat(s) },
  { name: 'udp_mem', samples: ['575799\t767733\t1151598\n'], parse: (s) => parseMemLimits(s) },
  { name: 'statistics file', samples: ['123\n'], parse: (s) => parseStatValue(s) },
];

/** Every number in the result is finite (no NaN from a half-parsed token). */
function assertSane(v: unknown): void {
  if (typeof v === 'number') {
    expect(Number.isFinite(v)).toBe(true);
  } else if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) assertSane(x);
  }
}

function check(parse: (text: string) => unknown, text: string): void {
  let value: unknown;
  try {
    value = parse(text);
  } catch (e) {
    if (e instanceof ProcParseError) return;
    throw e;
  }
  assertSane(value);
}

type Mutation =
  | { kind: 'cut'; at: number }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'char'; at: number; ch: string }
  | { kind: 'dupLine'; at: number }
  | { kind: 'swapLines'; at: number; other: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 24 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ maxLength: 12 }) }),
  fc.record({ kind: fc.constant('char' as const), at: fc.nat(), ch: fc.constantFrom(...' \n\t:-.|[]0129afAFxg\u0000é') }),
  fc.record({ kind: fc.constant('dupLine' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swapLines' as const), at: fc.nat(), other: fc.nat() }),
);

function mutate(text: string, m: Mutation): string {
  const at = m.at % (text.length + 1);
  const lines = text.split('\n');
  switch (m.kind) {
    case 'cut':
      return text.slice(0, at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.len);
    case 'insert':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'char':
      return text.slice(0, at) + m.ch + text.slice(at + 1);
    case 'dupLine': {
      const i = m.at % lines.length;
      lines.splice(i, 0, lines[i]);
      return lines.join('\n');
    }
    case 'swapLines': {
      const i = m.at % lines.length;
      const j = m.other % lines.length;
      [lines[i], lines[j]] = [lines[j], lines[i]];
      return lines.join('\n');
    }
  }
}

/** Text made of the tokens these files use, so garbage often gets past the first checks. */
const procish = fc
  .array(
    fc.constantFrom(
      ' ', ' ', '  ', '\n', ':', 'sl', '0:', '13893:', '0100007F:1388', '00000000:0000', '00000000000000000000000001000000:1389',
      '07', '00000000:00000680', '00:00000000', '00000000', '0', '7674', '2', '000000003fce0fa8', '48', '-1', 'Udp:', 'Ip:',
      'InErrors', 'Udp6InErrors', 'eth0:', '|', 'UDP:', 'inuse', 'mem', 'ffffffff', '99999999999999999999999', '1e3', '0x10',
    ),
    { maxLength: 60 },
  )
  .map((t) => t.join(''));

describe.each(PARSERS)('$name parser', ({ samples, parse }) => {
  it('parses its samples', () => {
    for (const s of samples) expect(() => parse(s)).not.toThrow();
  });

  it('every truncation of a sample returns or throws ProcParseError', () => {
    for (const s of samples) for (let k = 0; k <= s.length; k++) check(parse, s.slice(0, k));
  });

  it('random text returns or throws ProcParseError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme-ascii', maxLength: 300 }), procish), (text) =>
        check(parse, text),
      ),
      { numRuns: RUNS },
    );
  });

  it('mutated samples return or throw ProcParseError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.array(mutation, { minLength: 1, maxLength: 6 }), (sample, ms) =>
        check(parse, ms.reduce(mutate, sample)),
      ),
      { numRuns: RUNS },
    );
  });
});
