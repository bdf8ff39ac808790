// Deltas: u32 wraps, u64 resets, counters a kernel lacks, and devices, CPUs and sockets that
// appear or vanish, as examples and as fast-check properties (FC_RUNS raises the runs).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  counterDelta,
  deltaCounters,
  deltaEntities,
  deltaSockets,
  deltaSoftnet,
  newNotes,
  SOFTNET_COUNTERS,
  U32_RANGE,
  type SocketCounter,
} from '../../../src/counters/delta.js';
import { parseSoftnetStat, type SoftnetRow } from '../../../src/procnet/softnet.js';

const RUNS = Number(process.env.FC_RUNS) || 200;
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

describe('counterDelta', () => {
  it('examples', () => {
    expect(counterDelta(5, 8, 'u64')).toEqual({ value: 3, kind: 'ok' });
    expect(counterDelta(0xfffffff0, 0x10, 'u32')).toEqual({ value: 0x20, kind: 'wrap' });
    expect(counterDelta(100, 7, 'u64')).toEqual({ value: 7, kind: 'reset' });
    expect(counterDelta(7, 7, 'u32')).toEqual({ value: 0, kind: 'ok' });
  });

  it('u32: the delta is the increase modulo 2^32, whatever the start', () => {
    fc.assert(
      fc.property(u32, u32, (prev, inc) => {
        const cur = (prev + inc) % U32_RANGE;
        const d = counterDelta(prev, cur, 'u32');
        expect(d.value).toBe(inc);
        expect(d.kind).toBe(prev + inc >= U32_RANGE ? 'wrap' : 'ok');
      }),
      { numRuns: RUNS },
    );
  });

  it('u64: never negative; a decrease is a reset whose delta is the new value', () => {
    fc.assert(
      fc.property(u53, u53, (prev, cur) => {
        const d = counterDelta(prev, cur, 'u64');
        expect(d.value).toBeGreaterThanOrEqual(0);
        if (cur >= prev) expect(d).toEqual({ value: cur - prev, kind: 'ok' });
        else expect(d).toEqual({ value: cur, kind: 'reset' });
      }),
      { numRuns: RUNS },
    );
  });

  it('u32 deltas telescope: their sum over a run of reads is the total increase', () => {
    fc.assert(
      fc.property(u32, fc.array(u32, { minLength: 1, maxLength: 50 }), (start, incs) => {
        let v = start;
        let sum = 0;
        for (const inc of incs) {
          const next = (v + inc) % U32_RANGE;
          sum += counterDelta(v, next, 'u32').value;
          v = next;
        }
        expect(sum).toBe(incs.reduce((a, b) => a + b, 0));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('deltaCounters / deltaEntities', () => {
  it('a counter in only one read (a kernel without MemErrors) has no delta, not 0', () => {
    const notes = newNotes();
    const d = deltaCounters({ InErrors: 1, RcvbufErrors: 1 }, { InErrors: 4, RcvbufErrors: 2, MemErrors: 9 }, 'u64', 'snmp.Udp', notes);
    expect(d).toEqual({ InErrors: 3, RcvbufErrors: 1 });
    expect('MemErrors' in d).toBe(false);
  });

  it('records resets by path; keep() filters names', () => {
    const notes = newNotes();
    const d = deltaCounters({ rx_dropped: 10, tx_dropped: 1 }, { rx_dropped: 2, tx_dropped: 5 }, 'u64', 'dev.eth0', notes, (n) => n.startsWith('rx_'));
    expect(d).toEqual({ rx_dropped: 2 });
    expect(notes.resets).toEqual(['dev.eth0.rx_dropped']);
  });

  it('undefined on either side → {}', () => {
    expect(deltaCounters(undefined, { a: 1 }, 'u64', 'x', newNotes())).toEqual({});
    expect(deltaCounters({ a: 1 }, undefined, 'u64', 'x', newNotes())).toEqual({});
  });

  it('property: entities in both reads get deltas; the others are noted as appeared or vanished', () => {
    const names = fc.uniqueArray(fc.constantFrom('lo', 'eth0', 'eth1', 'veth0', 'veth1', 'bond0', 'wg0'), { maxLength: 7 });
    const counters = fc.dictionary(fc.constantFrom('rx_packets', 'rx_dropped', 'rx_errors'), u53);
    fc.assert(
      fc.property(names, names, counters, counters, (before, after, c1, c2) => {
        const prev = Object.fromEntries(before.map((n) => [n, c1]));
        const cur = Object.fromEntries(after.map((n) => [n, c2]));
        const notes = newNotes();
        const d = deltaEntities(prev, cur, 'u64', 'dev', notes);
        expect(Object.keys(d).sort()).toEqual(after.filter((n) => before.includes(n)).sort());
        expect(notes.appeared.sort()).toEqual(after.filter((n) => !before.includes(n)).map((n) => `dev.${n}`).sort());
        expect(notes.vanished.sort()).toEqual(before.filter((n) => !after.includes(n)).map((n) => `dev.${n}`).sort());
        for (const dev of Object.keys(d)) {
          for (const [k, v] of Object.entries(d[dev])) expect(v).toBe(c2[k] >= c1[k] ? c2[k] - c1[k] : c2[k]);
          expect(Object.keys(d[dev]).sort()).toEqual(Object.keys(c2).filter((k) => k in c1).sort());
        }
      }),
      { numRuns: RUNS },
    );
  });
});

function row(cpu: number, v: Partial<SoftnetRow> = {}, exact = true): SoftnetRow {
  return { cpu, cpu_exact: exact, processed: 0, dropped: 0, time_squeeze: 0, received_rps: 0, flow_limit_count: 0, ...v };
}

/** softnet_stat text of `columns` columns for rows with exact CPU numbers (13, 15) or not (11). */
function softnetText(rows: SoftnetRow[], columns: 11 | 13 | 15): string {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  return rows
    .map((r) => {
      const v = [r.processed, r.dropped, r.time_squeeze, 0, 0, 0, 0, 0, 0, r.received_rps ?? 0, r.flow_limit_count ?? 0];
      if (columns >= 13) v.push(r.backlog_len ?? 0, r.cpu);
      if (columns >= 15) v.push(r.input_pkt_queue_len ?? 0, r.process_queue_len ?? 0);
      return v.map(hex).join(' ');
    })
    .join('\n');
}

describe('deltaSoftnet', () => {
  it('a CPU that comes online has no delta (its counters predate the interval)', () => {
    const notes = newNotes();
    const d = deltaSoftnet([row(0, { processed: 5 })], [row(0, { processed: 9 }), row(1, { processed: 1000 })], notes);
    expect(d.cpu).toEqual({ '0': { processed: 4, dropped: 0, time_squeeze: 0, received_rps: 0, flow_limit_count: 0 } });
    expect(d.total.processed).toBe(4);
    expect(notes.appeared).toEqual(['softnet_stat.cpu.1']);
  });

  it('11 columns with the same number of lines: line i is CPU i on both sides', () => {
    const notes = newNotes();
    const d = deltaSoftnet([row(0, {}, false), row(1, { dropped: 3 }, false)], [row(0, {}, false), row(1, { dropped: 10 }, false)], notes);
    expect(d.total.dropped).toBe(7);
  });

  it('10 columns (before 3.11): no flow_limit_count delta, none made up as 0', () => {
    const notes = newNotes();
    const ten = (rps: number): string => `00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 ${rps.toString(16).padStart(8, '0')}`;
    const d = deltaSoftnet(parseSoftnetStat(ten(2)), parseSoftnetStat(ten(9)), notes);
    expect(d.total).toEqual({ processed: 0, dropped: 0, time_squeeze: 0, received_rps: 7 });
    expect(d.cpu['0']).toEqual({ processed: 0, dropped: 0, time_squeeze: 0, received_rps: 7 });
  });

  const layout = fc.constantFrom<11 | 13 | 15>(11, 13, 15);
  const cpuSet = fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { minLength: 1, maxLength: 8 }).map((a) => a.sort((x, y) => x - y));
  const counters = fc.record({ processed: u32, dropped: u32, time_squeeze: u32, received_rps: u32, flow_limit_count: u32 });

  it('property (through the parser, every layout): per-CPU deltas are the increases mod 2^32 and the total is their sum', () => {
    fc.assert(
      fc.property(layout, cpuSet, fc.array(fc.tuple(counters, counters), { minLength: 8, maxLength: 8 }), (columns, cpus, values) => {
        const exact = columns !== 11;
        // Without a cpu column the lines are CPUs 0..n-1.
        const ids = exact ? cpus : cpus.map((_, i) => i);
        const before = ids.map((c, i) => row(c, values[i][0], exact));
        const after = ids.map((c, i) => {
          const v = { ...values[i][0] };
          for (const k of SOFTNET_COUNTERS) v[k] = (v[k] + values[i][1][k]) % U32_RANGE;
          return row(c, v, exact);
        });
        const prev = parseSoftnetStat(softnetText(before, columns));
        const cur = parseSoftnetStat(softnetText(after, columns));
        const notes = newNotes();
        const d = deltaSoftnet(prev, cur, notes);
        expect(Object.keys(d.cpu).map(Number).sort((a, b) => a - b)).toEqual(ids);
        for (let i = 0; i < ids.length; i++) {
          for (const k of SOFTNET_COUNTERS) expect(d.cpu[String(ids[i])][k]).toBe(values[i][1][k]);
        }
        for (const k of SOFTNET_COUNTERS) expect(d.total[k]).toBe(ids.reduce((s, _, i) => s + values[i][1][k], 0));
        expect(notes.appeared).toEqual([]);
        expect(notes.vanished).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('property: CPUs that come and go (13/15 columns) are noted, never given a delta, and kept out of the total', () => {
    fc.assert(
      fc.property(cpuSet, cpuSet, (before, after) => {
        const notes = newNotes();
        const d = deltaSoftnet(
          before.map((c) => row(c, { processed: 10 })),
          after.map((c) => row(c, { processed: 15 })),
          notes,
        );
        const both = after.filter((c) => before.includes(c));
        expect(Object.keys(d.cpu).map(Number)).toEqual(both);
        expect(d.total.processed).toBe(5 * both.length);
        expect(notes.appeared).toEqual(after.filter((c) => !before.includes(c)).map((c) => `softnet_stat.cpu.${c}`));
        expect(notes.vanished).toEqual(before.filter((c) => !after.includes(c)).map((c) => `softnet_stat.cpu.${c}`));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('deltaSockets', () => {
  const s = (inode: number, drops: number | null, netns: number | null = 1): SocketCounter => ({ inode, drops, netns });

  it('examples: wrap, new, closed, unknown drops, namespace not read before', () => {
    const notes = newNotes();
    const prev = new Map([
      [1, s(1, 4294967295)],
      [2, s(2, 5)],
      [3, s(3, null)],
    ]);
    const cur = new Map([
      [1, s(1, 9)],
      [3, s(3, 10)],
      [4, s(4, 6)],
      [5, s(5, 8, 2)],
    ]);
    const d = deltaSockets(prev, cur, notes, new Set([1]));
    expect([...d]).toEqual([
      [1, 10],
      [4, 6],
    ]);
    expect(notes.sockets).toEqual({ appeared: 2, vanished: 1 });
    expect(notes.wraps).toEqual(['sockets.1.drops']);
  });

  it('property: deltas only for sockets in both reads or new in a namespace read before; counts of the rest', () => {
    const entry = fc.record({ drops: fc.option(u32, { nil: null }), inc: u32, netns: fc.constantFrom(1, 2, 3) });
    fc.assert(
      fc.property(
        fc.dictionary(fc.integer({ min: 1, max: 40 }).map(String), entry),
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 40 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 40 }),
        (sockets, inBefore, inAfter) => {
          const prev = new Map<number, SocketCounter>();
          const cur = new Map<number, SocketCounter>();
          for (const [k, e] of Object.entries(sockets)) {
            const inode = Number(k);
            if (inBefore.includes(inode)) prev.set(inode, s(inode, e.drops, e.netns));
            if (inAfter.includes(inode)) cur.set(inode, s(inode, e.drops === null ? null : (e.drops + e.inc) % U32_RANGE, e.netns));
          }
          const notes = newNotes();
          const d = deltaSockets(prev, cur, notes, new Set([1, 2]));
          for (const [inode, c] of cur) {
            const p = prev.get(inode);
            const e = sockets[String(inode)];
            if (p) {
              if (c.drops === null) expect(d.has(inode)).toBe(false);
              else expect(d.get(inode)).toBe(e.inc);
            } else if (c.netns === 3 || c.drops === null) {
              expect(d.has(inode)).toBe(false);
            } else expect(d.get(inode)).toBe(c.drops);
          }
          for (const inode of d.keys()) expect(cur.has(inode)).toBe(true);
          expect(notes.sockets.appeared).toBe([...cur.keys()].filter((i) => !prev.has(i)).length);
          expect(notes.sockets.vanished).toBe([...prev.keys()].filter((i) => !cur.has(i)).length);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
