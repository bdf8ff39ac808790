// What each kernel's layout can show, one row per fixture directory (test/fixtures/format: real
// tracefs copies and files written from each kernel's own headers, provenance in its README).
// Every file goes through the product's parser and compiled reader: the port field, addresses,
// rx_sk, the reason numbers and sysctl_mem's shape are all read from the format file, never from
// a table of ours, so the expectations below are what a kernel's `print fmt` says, checked here.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WallClock } from '../../../src/decode/clock.js';
import { compileSchema } from '../../../src/decode/compile.js';
import { describeLayout } from '../../../src/doctor/facts.js';
import { portField } from '../../../src/filter.js';
import { parseFormat, type EventSchema, type FieldSchema } from '../../../src/format/index.js';
import { tcpReasons } from '../../../src/plan-tcp.js';
import { udp6KfreeFilter } from '../../../src/plan-udp6.js';

const DIR = new URL('../../fixtures/format/', import.meta.url);

interface Udp {
  port: 'lport' | 'dport';
  addrs: boolean;
}
interface Kfree {
  rxSk: boolean;
  /** null: no reason field. Otherwise the numbers print fmt gives these names (undefined: not named). */
  reasons: null | { NOT_SPECIFIED: number; SOCKET_RCVBUFF?: number; PROTO_MEM?: number; MAX: number };
}
interface Sebl {
  mem: 'pointer' | 'long[3]';
  kind: boolean;
}
/** One fixture directory; an event left out has no file there. */
interface Row {
  dir: string;
  udp?: Udp;
  kfree?: Kfree;
  sebl?: Sebl;
  rcvq?: true;
}

const OLD_UDP: Udp = { port: 'lport', addrs: false };
const NO_REASON: Kfree = { rxSk: false, reasons: null };

const ROWS: Row[] = [
  { dir: '4.18', sebl: { mem: 'pointer', kind: false } },
  { dir: '4.19.222', udp: OLD_UDP, kfree: NO_REASON, sebl: { mem: 'pointer', kind: true }, rcvq: true }, // before the backport
  { dir: '4.19', udp: OLD_UDP, kfree: NO_REASON, sebl: { mem: 'long[3]', kind: true }, rcvq: true }, // 4.19.255: backport
  { dir: '5.4.206', sebl: { mem: 'pointer', kind: true } }, // the last 5.4 before the backport
  { dir: '5.4', udp: OLD_UDP, kfree: NO_REASON, sebl: { mem: 'long[3]', kind: true }, rcvq: true }, // 5.4.286: backport (from 5.4.207)
  { dir: '5.10.131', sebl: { mem: 'pointer', kind: true } }, // the last 5.10 before the backport
  { dir: '5.10', udp: OLD_UDP, kfree: NO_REASON, sebl: { mem: 'long[3]', kind: true }, rcvq: true }, // 5.10.265
  { dir: '5.15.55', kfree: NO_REASON, sebl: { mem: 'pointer', kind: true } }, // before both backports
  // 5.15.89: kfree_skb got a reason in 5.15.58 (the first 12 names, NOT_SPECIFIED = 0: no
  // NOT_DROPPED_YET yet), but no SOCKET_RCVBUFF or PROTO_MEM; sysctl_mem long[3] since 5.15.56
  { dir: '5.15', udp: OLD_UDP, kfree: { rxSk: false, reasons: { NOT_SPECIFIED: 0, MAX: 12 } }, sebl: { mem: 'long[3]', kind: true }, rcvq: true },
  { dir: '5.16', kfree: NO_REASON },
  { dir: '5.18', sebl: { mem: 'pointer', kind: true } },
  { dir: '6.1', kfree: { rxSk: false, reasons: { NOT_SPECIFIED: 1, SOCKET_RCVBUFF: 15, PROTO_MEM: 16, MAX: 65 } }, udp: { port: 'dport', addrs: true } },
  { dir: '6.1.0-57', udp: OLD_UDP, kfree: { rxSk: false, reasons: { NOT_SPECIFIED: 1, SOCKET_RCVBUFF: 15, PROTO_MEM: 16, MAX: 66 } }, sebl: { mem: 'long[3]', kind: true }, rcvq: true },
  // 6.6.57: NOT_DROPPED_YET = 0 and CONSUMED = 1 push NOT_SPECIFIED to 2 (neither is printed)
  { dir: '6.6', udp: OLD_UDP, kfree: { rxSk: false, reasons: { NOT_SPECIFIED: 2, SOCKET_RCVBUFF: 16, PROTO_MEM: 17, MAX: 78 } }, sebl: { mem: 'long[3]', kind: true }, rcvq: true },
  { dir: '6.9', udp: OLD_UDP },
  { dir: '6.12', udp: { port: 'dport', addrs: true }, kfree: { rxSk: true, reasons: { NOT_SPECIFIED: 2, SOCKET_RCVBUFF: 6, PROTO_MEM: 19, MAX: 104 } }, sebl: { mem: 'long[3]', kind: true }, rcvq: true },
  { dir: '6.18', udp: { port: 'dport', addrs: true }, kfree: { rxSk: true, reasons: { NOT_SPECIFIED: 2, SOCKET_RCVBUFF: 6, PROTO_MEM: 20, MAX: 128 } }, sebl: { mem: 'long[3]', kind: true }, rcvq: true },
];

const EVENTS = { udp: ['udp', 'udp_fail_queue_rcv_skb'], kfree: ['skb', 'kfree_skb'], sebl: ['sock', 'sock_exceed_buf_limit'], rcvq: ['sock', 'sock_rcvqueue_full'] } as const;

/** The format files of one directory for one event (6.1 has a variant: `*.sizeof-arrays.format`). */
function load(dir: string, event: string, system: string): EventSchema[] {
  return readdirSync(new URL(`${dir}/`, DIR))
    .filter((f) => f.endsWith('.format') && f.split('.')[0] === event)
    .map((f) => parseFormat(readFileSync(new URL(`${dir}/${f}`, DIR), 'utf8'), system, `${dir}/${f}`));
}

const field = (s: EventSchema, name: string): FieldSchema | undefined => s.fields.find((f) => f.name === name);
const names = (s: EventSchema): string[] => s.fields.filter((f) => !f.common).map((f) => f.name);

/** Decode one record with `values` written at the schema's own offsets, through the compiled reader. */
function decode(s: EventSchema, values: Record<string, number | bigint | number[]>): Record<string, unknown> {
  const c = compileSchema(s);
  const u8 = new Uint8Array(c.minRawSize + 8);
  const dv = new DataView(u8.buffer);
  dv.setUint16(0, s.id, true);
  for (const [name, v] of Object.entries(values)) {
    const f = field(s, name)!;
    for (let i = 0; i < (f.arrayLength ?? 1); i++) {
      const at = f.offset + i * f.elementSize;
      const x = Array.isArray(v) ? v[i] : v;
      if (f.elementSize === 8) dv.setBigInt64(at, BigInt(x), true);
      else if (f.elementSize === 4) dv.setUint32(at, Number(x), true);
      else dv.setUint16(at, Number(x), true);
    }
  }
  return new c.Drop(new WallClock(0n), 0, 1, 1, 0, dv, u8, 0, u8.length).fields as Record<string, unknown>;
}

describe('kernel layouts: what each fixture can show, read from its format file', () => {
  it('every fixture directory has a row, and every row its files', () => {
    const dirs = readdirSync(DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    expect(dirs.sort()).toEqual(ROWS.map((r) => r.dir).sort());
    for (const r of ROWS) {
      for (const [k, [sys, ev]] of Object.entries(EVENTS)) {
        expect(load(r.dir, ev, sys).length > 0, `${r.dir}/${ev}`).toBe(r[k as keyof typeof EVENTS] !== undefined);
      }
    }
  });

  describe.each(ROWS.filter((r) => r.udp))('$dir udp:udp_fail_queue_rcv_skb', (r) => {
    it(`port field ${r.udp!.port}, addresses ${r.udp!.addrs ? 'yes' : 'no'}`, () => {
      for (const s of load(r.dir, 'udp_fail_queue_rcv_skb', 'udp')) {
        expect(portField(s)).toBe(r.udp!.port);
        expect(names(s).includes('daddr')).toBe(r.udp!.addrs);
        expect(names(s).includes('saddr')).toBe(r.udp!.addrs);
        expect(describeLayout(s).layout).toBe(r.udp!.addrs ? '6.10+' : 'before 6.10');
        const got = decode(s, { rc: -12, [r.udp!.port]: 5353 });
        expect(got).toMatchObject({ rc: -12, [r.udp!.port]: 5353 });
      }
    });
  });

  describe.each(ROWS.filter((r) => r.kfree))('$dir skb:kfree_skb', (r) => {
    const k = r.kfree!;
    it(`rx_sk ${k.rxSk ? 'yes' : 'no'}, reason ${k.reasons ? `NOT_SPECIFIED = ${k.reasons.NOT_SPECIFIED}` : 'none'}`, () => {
      const [s] = load(r.dir, 'kfree_skb', 'skb');
      expect(names(s).includes('rx_sk')).toBe(k.rxSk);
      const table = s.symbols.get('reason');
      if (!k.reasons) {
        expect(names(s)).not.toContain('reason');
        expect(table).toBeUndefined();
        expect(tcpReasons(s)).toEqual([]);
        expect(udp6KfreeFilter(s)).toBeUndefined();
        expect(describeLayout(s).layout).toBe('before 5.17');
        return;
      }
      const byName = new Map([...table!].map(([n, name]) => [name, n]));
      expect(byName.get('NOT_SPECIFIED')).toBe(k.reasons.NOT_SPECIFIED);
      expect(byName.get('SOCKET_RCVBUFF')).toBe(k.reasons.SOCKET_RCVBUFF);
      expect(byName.get('PROTO_MEM')).toBe(k.reasons.PROTO_MEM);
      expect(byName.get('MAX')).toBe(k.reasons.MAX);
      // NOT_DROPPED_YET and CONSUMED are never printed: the table starts at NOT_SPECIFIED
      expect(Math.min(...table!.keys())).toBe(k.reasons.NOT_SPECIFIED);
      expect(byName.has('NOT_DROPPED_YET') || byName.has('CONSUMED')).toBe(false);
      expect(describeLayout(s).layout).toBe(k.rxSk ? '6.11+' : '5.17-6.10');
      // what --proto tcp and the IPv6 UDP fallback filter on: only reasons this kernel names
      const socketReasons = ['SOCKET_RCVBUFF', 'PROTO_MEM'].filter((n) => byName.has(n));
      expect(tcpReasons(s).filter((n) => socketReasons.includes(n)).sort()).toEqual([...socketReasons].sort());
      const f6 = udp6KfreeFilter(s);
      if (socketReasons.length === 0) expect(f6).toBeUndefined();
      else for (const n of socketReasons) expect(f6).toContain(`reason == ${byName.get(n)}`);
      // the compiled reader names a number by this kernel's table
      const probe = k.reasons.SOCKET_RCVBUFF ?? k.reasons.NOT_SPECIFIED;
      expect(decode(s, { reason: probe }).reason).toBe(table!.get(probe));
    });
  });

  describe.each(ROWS.filter((r) => r.sebl))('$dir sock:sock_exceed_buf_limit', (r) => {
    it(`sysctl_mem ${r.sebl!.mem}, kind ${r.sebl!.kind ? 'yes' : 'no'}`, () => {
      const [s] = load(r.dir, 'sock_exceed_buf_limit', 'sock');
      const mem = field(s, 'sysctl_mem')!;
      expect(mem.offset).toBe(40);
      if (r.sebl!.mem === 'pointer') {
        expect(mem).toMatchObject({ size: 8, pointer: true, arrayLength: undefined });
        expect(field(s, 'allocated')?.offset).toBe(48);
        expect(decode(s, { sysctl_mem: 0xffffffff82a1b2c0n }).sysctl_mem).toBe('0xffffffff82a1b2c0');
      } else {
        expect(mem).toMatchObject({ size: 24, pointer: false, arrayLength: 3, elementSize: 8 });
        expect(field(s, 'allocated')?.offset).toBe(64);
        expect(decode(s, { sysctl_mem: [92340, 123120, 184680] }).sysctl_mem).toEqual([92340, 123120, 184680]);
      }
      expect(names(s).includes('kind')).toBe(r.sebl!.kind);
      expect(describeLayout(s).layout).toBe(r.sebl!.kind ? '4.19+' : 'before 4.19');
      if (r.sebl!.kind) expect(decode(s, { kind: 1 }).kind).toBe('SK_MEM_RECV');
    });
  });

  describe.each(ROWS.filter((r) => r.rcvq))('$dir sock:sock_rcvqueue_full', (r) => {
    it('rmem_alloc, truesize, sk_rcvbuf and no socket identity', () => {
      const [s] = load(r.dir, 'sock_rcvqueue_full', 'sock');
      expect(s.fields.filter((f) => !f.common).map((f) => [f.name, f.offset, f.size])).toEqual([['rmem_alloc', 8, 4], ['truesize', 12, 4], ['sk_rcvbuf', 16, 4]]);
      expect(decode(s, { rmem_alloc: 212992, truesize: 768, sk_rcvbuf: 212992 })).toMatchObject({ rmem_alloc: 212992, truesize: 768, sk_rcvbuf: 212992 });
    });
  });
});
