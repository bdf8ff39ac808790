// Shared by the property tests in this folder: how many runs each property gets (FC_RUNS, default
// 500 so `npm test` stays fast; scripts/fuzz.sh raises it so the total passes 10^5), the
// mutations applied to real samples, and a tally of the cases run, appended to $FUZZ_REPORT
// (one `name<TAB>cases` line per property) for scripts/fuzz.sh to add up.
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';

export const RUNS = Number(process.env.FC_RUNS) || 500;

/**
 * fc.assert over `arb` with RUNS runs, counting the cases that actually ran. The predicate
 * throws (an expect) on a violation; fast-check then shrinks and reports the smallest input.
 */
export function check<T>(name: string, arb: fc.Arbitrary<T>, predicate: (value: T) => void, runs = RUNS): void {
  let cases = 0;
  try {
    fc.assert(
      fc.property(arb, (v) => {
        cases++;
        predicate(v);
      }),
      { numRuns: runs },
    );
  } finally {
    if (process.env.FUZZ_REPORT) appendFileSync(process.env.FUZZ_REPORT, `${name}\t${cases}\n`);
  }
}

export type Mutation =
  | { kind: 'cut'; at: number }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'char'; at: number; ch: string }
  | { kind: 'dupLine'; at: number }
  | { kind: 'dropLine'; at: number }
  | { kind: 'swapLines'; at: number; other: number }
  | { kind: 'digits'; at: number; digits: string };

/** Edits that keep most of a sample intact, so the parser gets past its first checks. */
export const mutation = (alphabet: string): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 24 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ maxLength: 12 }) }),
    fc.record({ kind: fc.constant('char' as const), at: fc.nat(), ch: fc.constantFrom(...alphabet) }),
    fc.record({ kind: fc.constant('dupLine' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('dropLine' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swapLines' as const), at: fc.nat(), other: fc.nat() }),
    fc.record({ kind: fc.constant('digits' as const), at: fc.nat(), digits: fc.constantFrom('0', '-1', '4294967295', '99999999999999999999', '65536', '1e3', '0x10', '') }),
  );

export function mutate(text: string, m: Mutation): string {
  const at = m.at % (text.length + 1);
  const lines = text.split('\n');
  const li = m.at % lines.length;
  switch (m.kind) {
    case 'cut':
      return text.slice(0, at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.len);
    case 'insert':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'char':
      return text.slice(0, at) + m.ch + text.slice(at + 1);
    case 'dupLine':
      lines.splice(li, 0, lines[li]);
      return lines.join('\n');
    case 'dropLine':
      lines.splice(li, 1);
      return lines.join('\n');
    case 'swapLines': {
      const j = m.other % lines.length;
      [lines[li], lines[j]] = [lines[j], lines[li]];
      return lines.join('\n');
    }
    case 'digits': {
      // Replace the run of digits nearest `at` (a number in the text) with another number.
      const re = /\d+/g;
      let best: RegExpExecArray | undefined;
      for (let r = re.exec(text); r; r = re.exec(text)) {
        best = r;
        if (r.index >= at) break;
      }
      return best ? text.slice(0, best.index) + m.digits + text.slice(best.index + best[0].length) : text;
    }
  }
}

/** Text from `tokens`, so random input often looks like the real thing. */
export const tokenText = (tokens: string[], maxLength = 80): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...tokens), { maxLength }).map((t) => t.join(''));

/** Random text of three flavours: any code units, printable ASCII, and `tokens` soup. */
export const anyText = (tokens: string[]): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ unit: 'grapheme-ascii', maxLength: 400 }), tokenText(tokens));
