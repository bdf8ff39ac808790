// ReadHistory.window() caches its answer per `tables` over the interval where it cannot change;
// it must answer exactly as the plain walk over the reads does, for any reads and any times.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReadHistory, type TableRead } from '../../../src/attribute/history.js';
import type { SocketTable } from '../../../src/procnet/sockets.js';

const RUNS = Number(process.env.FC_RUNS ?? 300);
const UDP: readonly SocketTable[] = ['udp'];
const ICMP: readonly SocketTable[] = ['icmp', 'icmp6'];

function naive(reads: TableRead[], t: number, tables: readonly SocketTable[]): { before?: TableRead; after?: TableRead } {
  let before: TableRead | undefined;
  let after: TableRead | undefined;
  for (const r of reads) {
    if (!tables.every((tb) => r.tables.has(tb))) continue;
    if (r.endNs <= t) before = r;
    else if (r.startNs >= t && !after) after = r;
  }
  return { before, after };
}

describe('ReadHistory.window (cached)', () => {
  it('answers as the plain walk, across adds, evictions and queries on boundaries', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('read' as const), gap: fc.nat(6), len: fc.nat(4), which: fc.constantFrom(0, 1, 2) }),
      fc.record({ kind: fc.constant('query' as const), back: fc.integer({ min: -5, max: 40 }), icmp: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), fc.integer({ min: 2, max: 8 }), (steps, keep) => {
        const h = new ReadHistory(keep);
        const kept: TableRead[] = [];
        let now = 0;
        for (const s of steps) {
          if (s.kind === 'read') {
            const tables = new Set<SocketTable>(s.which === 0 ? ['udp'] : s.which === 1 ? ['icmp', 'icmp6'] : ['udp', 'icmp', 'icmp6']);
            const r: TableRead = { startNs: now + s.gap, endNs: now + s.gap + s.len, tables, rows: new Map() };
            now = r.endNs;
            h.add(r);
            kept.push(r);
            if (kept.length > keep) kept.shift();
          } else {
            const t = now - s.back;
            const tables = s.icmp ? ICMP : UDP;
            const got = h.window(t, tables);
            const want = naive(kept, t, tables);
            expect(got.before).toBe(want.before);
            expect(got.after).toBe(want.after);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
