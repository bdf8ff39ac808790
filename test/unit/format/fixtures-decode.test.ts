// Every format fixture (one directory per kernel) decodes a record built at ITS offsets: the
// values come back through the product's parser and compiled reader, with names from `print fmt`.
// A kernel's layout is only ever read from its format file, never from a table of our own.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WallClock } from '../../../src/decode/clock.js';
import { compileSchema } from '../../../src/decode/compile.js';
import { parseFormat, type EventSchema, type FieldSchema } from '../../../src/format/index.js';

const DIR = new URL('../../fixtures/format/', import.meta.url);
const fixtures = readdirSync(DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => readdirSync(new URL(`${d.name}/`, DIR)).filter((f) => f.endsWith('.format')).map((f) => `${d.name}/${f}`));

const systemOf = (file: string): string => (file.includes('udp_') ? 'udp' : file.includes('kfree_skb') ? 'skb' : 'sock');

/** Write `v` into field `f` of a raw record (little-endian, as x86 writes it). */
function put(dv: DataView, u8: Uint8Array, f: FieldSchema, v: number | bigint | string): void {
  if (typeof v === 'string') {
    u8.set(new TextEncoder().encode(v).subarray(0, f.size - 1), f.offset);
    return;
  }
  if (f.elementSize === 8) dv.setBigInt64(f.offset, BigInt(v), true);
  else if (f.elementSize === 4) dv.setInt32(f.offset, Number(v), true);
  else if (f.elementSize === 2) dv.setUint16(f.offset, Number(v), true);
  else dv.setUint8(f.offset, Number(v));
}

/** Values a test can recognise, for the fields these four tracepoints have had. */
function sample(s: EventSchema): Map<string, number | bigint | string> {
  const v = new Map<string, number | bigint | string>();
  for (const f of s.fields) {
    if (f.common || f.dynamic) continue;
    if (f.name === 'rc') v.set(f.name, -12);
    else if (f.name === 'lport' || f.name === 'dport') v.set(f.name, 5000);
    else if (f.name === 'name' && f.text) v.set(f.name, 'UDP');
    else if (s.symbols.get(f.name)?.size || f.name === 'reason' || f.name === 'kind') {
      const names = s.symbols.get(f.name);
      // the highest number print fmt names: a wrong offset or table would not give its name back
      v.set(f.name, names && names.size ? Math.max(...names.keys()) : 1);
    } else if (f.pointer) v.set(f.name, 0xffff888812345678n);
    else if (f.arrayLength === undefined && !f.text) v.set(f.name, f.offset + 1); // distinct per field
  }
  return v;
}

describe('format fixtures: a record at each kernel\'s offsets decodes to what was written', () => {
  it('finds the fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(19);
  });

  it.each(fixtures)('%s', (file) => {
    const schema = parseFormat(readFileSync(new URL(file, DIR), 'utf8'), systemOf(file), file);
    const c = compileSchema(schema);
    const u8 = new Uint8Array(c.minRawSize + 16);
    const dv = new DataView(u8.buffer);
    dv.setUint16(0, schema.id, true);
    const want = sample(schema);
    for (const f of schema.fields) if (want.has(f.name)) put(dv, u8, f, want.get(f.name)!);
    const got = new c.Drop(new WallClock(0n), 0, 1, 1, 0, dv, u8, 0, u8.length).fields;
    for (const [name, v] of want) {
      const f = schema.fields.find((x) => x.name === name)!;
      const names = schema.symbols.get(name);
      if (names?.size) expect(got[name], name).toBe(names.get(Number(v)));
      else if (f.pointer) expect(String(got[name]), name).toBe(`0x${(v as bigint).toString(16)}`);
      else if (typeof v === 'string') expect(got[name], name).toBe(v);
      else expect(got[name], name).toBe(Number(v));
    }
  });
});

describe('Debian 6.12 (real format files): the 6.10+ udp layout and 6.11+ kfree_skb, its own reason numbers', () => {
  const fx = (f: string, sys: string): EventSchema => parseFormat(readFileSync(new URL(`6.12/${f}.format`, DIR), 'utf8'), sys, f);
  it('udp dport/daddr, kfree_skb rx_sk, NOT_SPECIFIED = 2, sysctl_mem long[3] at 40', () => {
    expect(fx('udp_fail_queue_rcv_skb', 'udp').fields.find((f) => f.name === 'dport')?.offset).toBe(14);
    const k = fx('kfree_skb', 'skb');
    expect(k.fields.find((f) => f.name === 'rx_sk')?.offset).toBe(24);
    expect(k.symbols.get('reason')?.get(2)).toBe('NOT_SPECIFIED');
    expect(k.symbols.get('reason')?.get(6)).toBe('SOCKET_RCVBUFF');
    expect(fx('sock_exceed_buf_limit', 'sock').fields.find((f) => f.name === 'sysctl_mem')).toMatchObject({ offset: 40, size: 24, arrayLength: 3 });
  });
});

describe('Debian 6.1.0-57 (real format files): lport only, no rx_sk, a stable backport in the reasons', () => {
  const fx = (f: string, sys: string): EventSchema => parseFormat(readFileSync(new URL(`6.1.0-57/${f}.format`, DIR), 'utf8'), sys, f);
  it('udp rc@8 lport@12; kfree_skb reason@28 with NOT_SPECIFIED = 1 and TC_CHAIN_NOTFOUND = 65; sysctl_mem long[3]', () => {
    expect(fx('udp_fail_queue_rcv_skb', 'udp').fields.filter((f) => !f.common).map((f) => [f.name, f.offset])).toEqual([['rc', 8], ['lport', 12]]);
    const k = fx('kfree_skb', 'skb');
    expect(k.fields.map((f) => f.name)).not.toContain('rx_sk');
    expect(k.fields.find((f) => f.name === 'reason')?.offset).toBe(28);
    expect(k.symbols.get('reason')?.get(1)).toBe('NOT_SPECIFIED');
    expect(k.symbols.get('reason')?.get(65)).toBe('TC_CHAIN_NOTFOUND');
    expect(fx('sock_exceed_buf_limit', 'sock').fields.find((f) => f.name === 'sysctl_mem')).toMatchObject({ offset: 40, size: 24, arrayLength: 3 });
  });
});
