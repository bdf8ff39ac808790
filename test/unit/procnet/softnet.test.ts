// /proc/net/softnet_stat with 9, 10 (before 3.11), 11 (≤ 5.9), 13 (5.10+) and 15 (6.4+) columns, fixtures and
// generated files. A parser that assumed one column count once crashed node_exporter.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { parseSoftnetStat, type SoftnetRow } from '../../../src/procnet/softnet.js';

const RUNS = Number(process.env.FC_RUNS) || 200;
const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

describe('parseSoftnetStat', () => {
  it('15 columns (6.18 capture)', () => {
    const rows = parseSoftnetStat(fixture('softnet_stat-6.18.txt'));
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => r.cpu)).toEqual([0, 1]);
    expect(rows[1]).toEqual({
      cpu: 1,
      cpu_exact: true,
      processed: 0x9ceb0,
      dropped: 0,
      time_squeeze: 0,
      received_rps: 0,
      flow_limit_count: 0,
      backlog_len: 0,
      input_pkt_queue_len: 0,
      process_queue_len: 0,
    });
  });

  it('13 columns: the cpu column is exact even with an offline CPU', () => {
    const rows = parseSoftnetStat(fixture('softnet_stat-13col.txt'));
    expect(rows.map((r) => r.cpu)).toEqual([0, 1, 3]);
    expect(rows[1]).toEqual({
      cpu: 1,
      cpu_exact: true,
      processed: 0x2f1a0,
      dropped: 0,
      time_squeeze: 2,
      received_rps: 5,
      flow_limit_count: 1,
      backlog_len: 7,
    });
    expect(rows[2].processed).toBe(0xffffffff);
    expect(rows[2].dropped).toBe(0xbeef);
    expect('input_pkt_queue_len' in rows[2]).toBe(false);
  });

  it('11 columns: cpu is the line index, flagged as inexact', () => {
    const rows = parseSoftnetStat(fixture('softnet_stat-11col.txt'));
    expect(rows).toEqual([
      { cpu: 0, cpu_exact: false, processed: 0x1e240, dropped: 3, time_squeeze: 0x11, received_rps: 0, flow_limit_count: 0 },
      { cpu: 1, cpu_exact: false, processed: 0x2f1a0, dropped: 0, time_squeeze: 2, received_rps: 5, flow_limit_count: 1 },
    ]);
  });

  it('9 and 10 columns (before 3.11): the columns that exist, none made up', () => {
    const ten = '0001e240 00000003 00000011 00000000 00000000 00000000 00000000 00000000 00000004 00000005\n';
    expect(parseSoftnetStat(ten)).toEqual([{ cpu: 0, cpu_exact: false, processed: 0x1e240, dropped: 3, time_squeeze: 0x11, received_rps: 5 }]);
    const nine = ten.slice(0, ten.lastIndexOf(' ')) + '\n';
    const rows = parseSoftnetStat(nine);
    expect(rows).toEqual([{ cpu: 0, cpu_exact: false, processed: 0x1e240, dropped: 3, time_squeeze: 0x11 }]);
    expect('received_rps' in rows[0]).toBe(false);
  });

  it('ignores columns a future kernel may add', () => {
    const line = `${fixture('softnet_stat-6.18.txt').split('\n')[1]} 0000abcd 00000001\n`;
    expect(parseSoftnetStat(line)[0].cpu).toBe(1);
  });

  it('rejects short lines and non-hex values', () => {
    expect(() => parseSoftnetStat('00000001 00000002\n')).toThrow(/at least 9 columns/);
    expect(() => parseSoftnetStat(`${'00000000 '.repeat(7)}\n`)).toThrow(/at least 9 columns/);
    expect(() => parseSoftnetStat(`${'00000000 '.repeat(10)}0000000g\n`)).toThrow(ProcParseError);
    expect(() => parseSoftnetStat(`${'00000000 '.repeat(10)}100000000\n`)).toThrow(/u32/);
  });

  it('empty → []', () => {
    expect(parseSoftnetStat('')).toEqual([]);
  });

  it('generated files with 9, 10, 11, 13 or 15 columns parse back to the model', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const file = fc.record({
      columns: fc.constantFrom(9, 10, 11, 13, 15),
      cpus: fc.uniqueArray(fc.integer({ min: 0, max: 4095 }), { minLength: 1, maxLength: 16 }).map((a) => a.sort((x, y) => x - y)),
      values: fc.array(fc.array(u32, { minLength: 15, maxLength: 15 }), { minLength: 16, maxLength: 16 }),
      upper: fc.boolean(),
    });
    fc.assert(
      fc.property(file, ({ columns, cpus, values, upper }) => {
        const expected: SoftnetRow[] = [];
        const lines = cpus.map((cpu, i) => {
          const v = values[i];
          const cols = [v[0], v[1], v[2], 0, 0, 0, 0, 0, 0, v[9], v[10], v[11], cpu, v[13], v[14]].slice(0, columns);
          const row: SoftnetRow = {
            cpu: columns >= 13 ? cpu : i,
            cpu_exact: columns >= 13,
            processed: v[0],
            dropped: v[1],
            time_squeeze: v[2],
          };
          if (columns >= 10) row.received_rps = v[9];
          if (columns >= 11) row.flow_limit_count = v[10];
          if (columns >= 13) row.backlog_len = v[11];
          if (columns === 15) Object.assign(row, { input_pkt_queue_len: v[13], process_queue_len: v[14] });
          expected.push(row);
          const hex = cols.map((c) => c.toString(16).padStart(8, '0')).join(' ');
          return upper ? hex.toUpperCase() : hex;
        });
        expect(parseSoftnetStat(`${lines.join('\n')}\n`)).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });
});
