// Compile one EventSchema into generated JS, built once per schema: `read`, a field reader that
// reads every payload field at its offset into one object literal, and `Drop`, a DecodedDrop
// subclass that reads the same fields into private number slots at decode time and makes the
// object literal (`fields`) or its JSON text (writeFields) only when asked.
import { endianness } from 'node:os';
import { ipv4FromBytes, ipv6FromBytes } from '../addr-text.js';
import type { EventSchema, FieldSchema } from '../format/schema.js';
import { DecodedDrop, type DropClass } from './drop.js';
import { DIGITS2, s64, u64 } from './bytes.js';
import { utf8Bytes, type JsonBytes } from './json-bytes.js';

export type FieldReader = (dv: DataView, u8: Uint8Array, base: number, rawSize: number) => Record<string, unknown>;

export interface CompiledEvent {
  schema: EventSchema;
  /** `system:name`, the `event` of every DropEvent it decodes. */
  event: string;
  read: FieldReader;
  /** Raw bytes a record must have for every fixed field to be in bounds. */
  minRawSize: number;
  /** The DropEvent class of this schema: `new Drop(clock, cpu, pid, tid, monoNs, dv, u8, base, rawSize)`. */
  Drop: DropClass;
  /** The generated source of the reader (print it when debugging a decoder). */
  source: string;
  dropSource: string;
}

const LE = endianness() === 'LE';
const v4cache = new Map<number, string>();
/** Each octet 0..255 as [length, d0, d1, d2]. */
const OCTETS = new Uint8Array(256 * 4);
for (let i = 0; i < 256; i++) {
  const t = String(i);
  OCTETS[4 * i] = t.length;
  for (let j = 0; j < t.length; j++) OCTETS[4 * i + 1 + j] = t.charCodeAt(j);
}

function octetAt(b: Uint8Array, p: number, v: number): number {
  const o = v << 2;
  const n = OCTETS[o];
  b[p] = OCTETS[o + 1];
  if (n > 1) {
    b[p + 1] = OCTETS[o + 2];
    if (n > 2) b[p + 2] = OCTETS[o + 3];
  }
  return p + n;
}

/** Helpers the generated code calls; kept small and monomorphic. */
const helpers = {
  cstr(u8: Uint8Array, off: number, len: number): string {
    let end = off;
    const max = off + len;
    while (end < max && u8[end] !== 0) end++;
    return Buffer.from(u8.buffer, u8.byteOffset + off, end - off).toString('latin1');
  },
  hex64(dv: DataView, off: number, le: boolean): string {
    const lo = dv.getUint32(off + (le ? 0 : 4), le);
    const hi = dv.getUint32(off + (le ? 4 : 0), le);
    return '0x' + (hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0'));
  },
  hex32(dv: DataView, off: number, le: boolean): string {
    return '0x' + dv.getUint32(off, le).toString(16);
  },
  u64,
  s64,
  /**
   * A zeroed sockaddr_in / sockaddr_in6 copied into the event: family (host order) at +0,
   * port (network order) at +2, IPv4 at +4 or IPv6 at +8. Family 0 means "not filled in".
   */
  sockaddr(dv: DataView, u8: Uint8Array, off: number, size: number, le: boolean): string | null {
    const family = dv.getUint16(off, le);
    const port = dv.getUint16(off + 2, false);
    if (family === 2 && size >= 8) return `${ipv4FromBytes(u8, off + 4)}:${port}`;
    if (family === 10 && size >= 24) return `[${ipv6FromBytes(u8, off + 8)}]:${port}`;
    return null;
  },
  /** A uint32 in decimal at b[p]; returns the new p. The caller reserved 10 bytes. */
  uintAt(b: Uint8Array, p: number, x: number): number {
    const d = x < 10 ? 1 : x < 100 ? 2 : x < 1000 ? 3 : x < 10000 ? 4 : x < 100000 ? 5 : x < 1000000 ? 6 : x < 10000000 ? 7 : x < 100000000 ? 8 : x < 1000000000 ? 9 : 10;
    const end = p + d;
    let q = end;
    let v = x;
    // Two digits per division, from a table of "00".."99".
    while (v >= 100) {
      const t = (v / 100) >>> 0;
      const r = (v - t * 100) << 1;
      b[--q] = DIGITS2[r + 1];
      b[--q] = DIGITS2[r];
      v = t;
    }
    if (v >= 10) {
      b[q - 1] = DIGITS2[(v << 1) + 1];
      b[q - 2] = DIGITS2[v << 1];
    } else b[q - 1] = 48 + v;
    return end;
  },
  /** An int32 or uint32 at b[p] (11 bytes reserved). */
  intAt(b: Uint8Array, p: number, x: number): number {
    if (x < 0) {
      b[p] = 45;
      return helpers.uintAt(b, p + 1, -x);
    }
    return helpers.uintAt(b, p, x);
  },
  /** Pre-encoded bytes at b[p]. */
  copyAt(b: Uint8Array, p: number, k: Uint8Array): number {
    const n = k.length;
    if (n <= 16) for (let i = 0; i < n; i++) b[p + i] = k[i];
    else b.set(k, p);
    return p + n;
  },
  symAt(b: Uint8Array, p: number, encoded: Map<number, Uint8Array>, v: number): number {
    const k = encoded.get(v);
    return k === undefined ? helpers.intAt(b, p, v) : helpers.copyAt(b, p, k);
  },
  /** `"a.b.c.d:port"` at b[p] (23 bytes reserved); addr is the address as a big-endian i32. */
  v4At(b: Uint8Array, p: number, addr: number, port: number): number {
    b[p] = 34;
    let q = octetAt(b, p + 1, addr >>> 24);
    b[q] = 46;
    q = octetAt(b, q + 1, (addr >>> 16) & 255);
    b[q] = 46;
    q = octetAt(b, q + 1, (addr >>> 8) & 255);
    b[q] = 46;
    q = octetAt(b, q + 1, addr & 255);
    b[q] = 58;
    q = helpers.uintAt(b, q + 1, port);
    b[q] = 34;
    return q + 1;
  },
  /** `addr:port` of an IPv4 sockaddr (addr = the address as a big-endian i32), cached: a storm has few peers. */
  v4text(addr: number, port: number): string {
    const key = (addr >>> 0) * 65536 + port;
    let t = v4cache.get(key);
    if (t === undefined) {
      if (v4cache.size >= 4096) v4cache.clear();
      t = `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}:${port}`;
      v4cache.set(key, t);
    }
    return t;
  },
  /** sockaddr() from the slots a DecodedDrop keeps: family, port, and the address (i32 or 16 bytes). */
  sockaddrText(family: number, port: number, addr: number | Uint8Array, size: number): string | null {
    if (family === 2 && size >= 8) return helpers.v4text(addr as number, port);
    if (family === 10 && size >= 24 && typeof addr !== 'number') return `[${ipv6FromBytes(addr, 0)}]:${port}`;
    return null;
  },
  writeSockaddr(w: JsonBytes, family: number, port: number, addr: number | Uint8Array, size: number): void {
    if (family === 2 && size >= 8) {
      const a = addr as number;
      w.byte(34);
      w.uint(a >>> 24);
      w.byte(46);
      w.uint((a >>> 16) & 255);
      w.byte(46);
      w.uint((a >>> 8) & 255);
      w.byte(46);
      w.uint(a & 255);
      w.byte(58);
      w.uint(port);
      w.byte(34);
    } else {
      const t = helpers.sockaddrText(family, port, addr, size);
      if (t === null) w.ascii('null');
      else w.str(t);
    }
  },
  ipv4Text(a: number): string {
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  },
  writeIpv4(w: JsonBytes, a: number): void {
    w.byte(34);
    w.uint(a >>> 24);
    w.byte(46);
    w.uint((a >>> 16) & 255);
    w.byte(46);
    w.uint((a >>> 8) & 255);
    w.byte(46);
    w.uint(a & 255);
    w.byte(34);
  },
  ptrText(lo: number, hi: number): string {
    const l = lo >>> 0;
    const h = hi >>> 0;
    return '0x' + (h === 0 ? l.toString(16) : h.toString(16) + l.toString(16).padStart(8, '0'));
  },
  writePtr(w: JsonBytes, lo: number, hi: number): void {
    w.ascii('"0x');
    if (hi === 0) w.hex32(lo);
    else {
      w.hex32(hi);
      w.hex32(lo, 8);
    }
    w.byte(34);
  },
  symText(table: Map<number, string>, v: number): string | number {
    const n = table.get(v);
    return n === undefined ? v : n;
  },
  /** A symbolic field: its name's JSON, pre-encoded per value, or the number when unnamed. */
  writeSym(w: JsonBytes, encoded: Map<number, Uint8Array>, v: number): void {
    const k = encoded.get(v);
    if (k === undefined) w.jsonNum(v);
    else w.bytes(k);
  },
  /** Slot equality for sameSlots(): numbers and strings by value, arrays (IPv6 bytes, array fields) element-wise. */
  eqv(a: unknown, b: unknown): boolean {
    if (a === b) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    const x = a as ArrayLike<unknown>;
    const y = b as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  },
  /** One slot's part of slotKey(): typed, so a string can never read as a number or an array. */
  kv(v: unknown): string {
    if (typeof v === 'number') return '' + v;
    if (typeof v === 'string') return 's' + JSON.stringify(v);
    if (v === null || v === undefined) return 'n';
    return 'a' + Array.prototype.join.call(v as ArrayLike<unknown>, '.');
  },
  /** __data_loc: u32 = offset (low 16) | length (high 16); __rel_loc offsets from after the field. */
  dyn(dv: DataView, u8: Uint8Array, base: number, fieldOff: number, rawSize: number, rel: boolean, le: boolean): string | null {
    const v = dv.getUint32(base + fieldOff, le);
    const len = v >>> 16;
    const off = (v & 0xffff) + (rel ? fieldOff + 4 : 0);
    if (off + len > rawSize) return null;
    return helpers.cstr(u8, base + off, len);
  },
};

function scalarExpr(f: FieldSchema, at: string): string {
  const s = f.signed;
  switch (f.elementSize) {
    case 1:
      return s ? `dv.getInt8(${at})` : `dv.getUint8(${at})`;
    case 2:
      return s ? `dv.getInt16(${at}, LE)` : `dv.getUint16(${at}, LE)`;
    case 4:
      return s ? `dv.getInt32(${at}, LE)` : `dv.getUint32(${at}, LE)`;
    case 8:
      return s ? `h.s64(dv, ${at}, LE)` : `h.u64(dv, ${at}, LE)`;
    default:
      return `null`;
  }
}

function fieldExpr(schema: EventSchema, f: FieldSchema, symIndex: Map<string, number>): string {
  const at = `base + ${f.offset}`;
  const display = schema.display.get(f.name);
  if (f.dynamic) return `h.dyn(dv, u8, base, ${f.offset}, rawSize, ${f.dynamic === 'rel_loc'}, LE)`;
  if (f.text) return `h.cstr(u8, ${at}, ${f.size})`;
  if (display === 'sockaddr' && f.size >= 8) return `h.sockaddr(dv, u8, ${at}, ${f.size}, LE)`;
  if (display === 'ipv4' && f.size === 4) return `ipv4FromBytes(u8, ${at})`;
  if (display === 'ipv6' && f.size === 16) return `ipv6FromBytes(u8, ${at})`;
  if (f.pointer) return f.size === 8 ? `h.hex64(dv, ${at}, LE)` : `h.hex32(dv, ${at}, LE)`;
  if (f.arrayLength !== undefined) {
    if (![1, 2, 4, 8].includes(f.elementSize)) return 'null';
    const items: string[] = [];
    for (let i = 0; i < f.arrayLength; i++) items.push(scalarExpr(f, `base + ${f.offset + i * f.elementSize}`));
    return `[${items.join(', ')}]`;
  }
  if (f.size !== f.elementSize || ![1, 2, 4, 8].includes(f.size)) return 'null';
  const value = scalarExpr(f, at);
  const sym = symIndex.get(f.name);
  if (display === 'symbolic' && sym !== undefined) {
    // An unknown number stays a number: honest, and still filterable by jq.
    return `((v) => { const n = s${sym}.get(v); return n === undefined ? v : n; })(${value})`;
  }
  return value;
}

/** How a DecodedDrop subclass keeps one field: which slots, how to read, make and write it. */
interface SlotPlan {
  /** Statements for the constructor (`this.#sN = …`). */
  read: string[];
  /** Expression of the field's value in `fields`. */
  value: string;
  /** Statements writing the value's JSON to `w`. */
  write: string;
  /**
   * The same at a raw position, for the line writer: statements that write at `b[p]` and move
   * `p`, using at most `max` bytes. Absent: the line writer goes through `write`.
   */
  fast?: { max: number; code: string };
}

function slotPlan(schema: EventSchema, f: FieldSchema, symIndex: Map<string, number>, slot: () => string): SlotPlan {
  const at = `base + ${f.offset}`;
  const display = schema.display.get(f.name);
  const eager = (): SlotPlan => {
    // Rare or variable-size fields (strings, arrays, IPv6): their value is made at decode time.
    const s = slot();
    return { read: [`this.${s} = ${fieldExpr(schema, f, symIndex)};`], value: `this.${s}`, write: `w.value(this.${s});` };
  };
  if (f.dynamic || f.text) return eager();
  if (display === 'sockaddr' && f.size >= 8) {
    // Two slots: family * 65536 + port (a small integer), and the address.
    const fp = slot();
    const addr = slot();
    const v6 = f.size >= 24 ? `fam === 10 ? u8.slice(${at} + 8, ${at} + 24) : ` : '';
    const args = `this.${fp} >>> 16, this.${fp} & 65535, this.${addr}, ${f.size}`;
    return {
      read: [
        `{ const fam = dv.getUint16(${at}, LE); this.${fp} = fam * 65536 + dv.getUint16(${at} + 2, false);`,
        `  this.${addr} = fam === 2 ? dv.getInt32(${at} + 4, false) : ${v6}0; }`,
      ],
      value: `h.sockaddrText(${args})`,
      write: `h.writeSockaddr(w, ${args});`,
      // IPv4 at a raw position; anything else (IPv6, unset) through the JsonBytes path.
      fast: {
        max: 23,
        code: `if (this.${fp} >>> 16 === 2) p = h.v4At(b, p, this.${addr}, this.${fp} & 65535); else { w.pos = p; h.writeSockaddr(w, ${args}); w.reserve(REST); b = w.buf; p = w.pos; }`,
      },
    };
  }
  if (display === 'ipv4' && f.size === 4) {
    const s = slot();
    return { read: [`this.${s} = dv.getInt32(${at}, false);`], value: `h.ipv4Text(this.${s})`, write: `h.writeIpv4(w, this.${s});` };
  }
  if (display === 'ipv6' && f.size === 16) return eager();
  if (f.pointer) {
    const lo = slot();
    const hi = slot();
    const read =
      f.size === 8
        ? [`this.${lo} = dv.getInt32(${at} + (LE ? 0 : 4), LE);`, `this.${hi} = dv.getInt32(${at} + (LE ? 4 : 0), LE);`]
        : [`this.${lo} = dv.getInt32(${at}, LE);`, `this.${hi} = 0;`];
    return { read, value: `h.ptrText(this.${lo}, this.${hi})`, write: `h.writePtr(w, this.${lo}, this.${hi});` };
  }
  if (f.arrayLength !== undefined || f.size !== f.elementSize || ![1, 2, 4, 8].includes(f.size)) return eager();
  const s = slot();
  const read = [`this.${s} = ${scalarExpr(f, at)};`];
  const sym = symIndex.get(f.name);
  // Up to 4 bytes a field is an int32 or a uint32: at most 11 characters.
  const small = f.size <= 4;
  if (display === 'symbolic' && sym !== undefined) {
    const longest = Math.max(0, ...[...(schema.symbols.get(f.name)?.values() ?? [])].map((n) => Buffer.byteLength(JSON.stringify(n))));
    return {
      read,
      value: `h.symText(s${sym}, this.${s})`,
      write: `h.writeSym(w, j${sym}, this.${s});`,
      fast: small ? { max: Math.max(11, longest), code: `p = h.symAt(b, p, j${sym}, this.${s});` } : undefined,
    };
  }
  return { read, value: `this.${s}`, write: `w.jsonNum(this.${s});`, fast: small ? { max: 11, code: `p = h.intAt(b, p, this.${s});` } : undefined };
}

/**
 * `writeHead(w)`: the NDJSON line from `{"time":` to the end of `fields`, as straight-line code:
 * constants are byte stores, numbers go in at a raw position, and only rare values (IPv6,
 * strings, 64-bit numbers) take the JsonBytes path. It declines (returns false) when a
 * consumer has replaced time, fields, event, cpu, pid or tid: the caller's generic path runs.
 */
function lineWriter(event: string, plans: { f: FieldSchema; p: SlotPlan }[], K: Uint8Array[]): string {
  // Pieces in order: constant text, or a field's fast code, or a field's JsonBytes path.
  type Piece = { text: string } | { code: string; max: number } | { slow: string };
  const pieces: Piece[] = [{ text: '{"time":"' }, { code: 'p = this.timeAt(b, p);', max: 30 }, { text: '","cpu":' }];
  pieces.push({ code: 'p = h.uintAt(b, p, this.cpu);', max: 10 }, { text: ',"pid":' });
  pieces.push({ code: 'p = h.uintAt(b, p, this.pid);', max: 10 }, { text: ',"tid":' });
  pieces.push({ code: 'p = h.uintAt(b, p, this.tid);', max: 10 }, { text: `,"event":${JSON.stringify(event)},"fields":` });
  plans.forEach(({ f, p }, i) => {
    pieces.push({ text: `${i === 0 ? '{' : ','}${JSON.stringify(f.name)}:` });
    pieces.push(p.fast ? { code: p.fast.code, max: p.fast.max } : { slow: p.write });
  });
  pieces.push({ text: plans.length === 0 ? '{}' : '}' });
  // Merge neighbouring constants, then size everything after each point (what to reserve).
  const merged: Piece[] = [];
  for (const pc of pieces) {
    const last = merged[merged.length - 1];
    if ('text' in pc && last && 'text' in last) last.text += pc.text;
    else merged.push('text' in pc ? { text: pc.text } : pc);
  }
  const size = (pc: Piece): number => ('text' in pc ? Buffer.byteLength(pc.text) : 'max' in pc ? pc.max : 0);
  const rest: number[] = new Array<number>(merged.length + 1).fill(0);
  for (let i = merged.length - 1; i >= 0; i--) rest[i] = rest[i + 1] + size(merged[i]);
  const code: string[] = [
    `  writeHead(w) {`,
    `    const cpu = this.cpu, pid = this.pid, tid = this.tid;`,
    `    if (!this.pristine() || this.event !== EVENT || (cpu >>> 0) !== cpu || (pid >>> 0) !== pid || (tid >>> 0) !== tid) return false;`,
    `    w.reserve(${rest[0]});`,
    `    let b = w.buf;`,
    `    let p = w.pos;`,
  ];
  merged.forEach((pc, i) => {
    if ('text' in pc) {
      const bytes = utf8Bytes(pc.text);
      if (bytes.length <= 24) {
        const stores = [...bytes].map((c, j) => `b[p${j ? ` + ${j}` : ''}] = ${c};`);
        code.push(`    ${stores.join(' ')} p += ${bytes.length}; // ${JSON.stringify(pc.text).replace(/\*\//g, '*\\/')}`);
      } else {
        code.push(`    p = h.copyAt(b, p, K[${K.push(bytes) - 1}]);`);
      }
    } else if ('code' in pc) {
      code.push(`    ${pc.code.replace(/REST/g, String(rest[i + 1]))}`);
    } else {
      code.push(`    w.pos = p; ${pc.slow} w.reserve(${rest[i + 1]}); b = w.buf; p = w.pos;`);
    }
  });
  code.push(`    w.pos = p;`, `    return true;`, `  }`);
  return code.join('\n');
}

export function compileSchema(schema: EventSchema): CompiledEvent {
  const symIndex = new Map<string, number>();
  const symTables: Map<number, string>[] = [];
  for (const [field, table] of schema.symbols) {
    symIndex.set(field, symTables.length);
    symTables.push(table);
  }
  const payload = schema.fields.filter((f) => !f.common);
  let minRawSize = 0;
  for (const f of schema.fields) minRawSize = Math.max(minRawSize, f.offset + f.size);
  const props = payload.map((f) => `    ${JSON.stringify(f.name)}: ${fieldExpr(schema, f, symIndex)},`);
  const body = `return {\n${props.join('\n')}\n  };`;
  const params = ['h', 'LE', 'ipv4FromBytes', 'ipv6FromBytes', ...symTables.map((_, i) => `s${i}`)];
  const ident = `${schema.system}_${schema.name}`.replace(/[^A-Za-z0-9_]/g, '_');
  const source = `return function read_${ident}(dv, u8, base, rawSize) {\n  ${body}\n};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from a parsed schema, never from user text
  const factory = new Function(...params, source) as (...a: unknown[]) => FieldReader;
  const read = factory(helpers, LE, ipv4FromBytes, ipv6FromBytes, ...symTables);
  const event = `${schema.system}:${schema.name}`;

  let slots = 0;
  const slotNames: string[] = [];
  const nextSlot = (): string => {
    const n = `#s${slots++}`;
    slotNames.push(n);
    return n;
  };
  // Constant text (keys, punctuation) is encoded once and copied per event: K[i].
  const K: Uint8Array[] = [];
  const konst = (text: string): string => `w.bytes(K[${K.push(utf8Bytes(text)) - 1}]);`;
  const plans = payload.map((f) => ({ f, p: slotPlan(schema, f, symIndex, nextSlot) }));
  const writes: string[] = [];
  plans.forEach(({ f, p }, i) => writes.push(konst(`${i === 0 ? '{' : ','}${JSON.stringify(f.name)}:`), p.write));
  writes.push(plans.length === 0 ? konst('{}') : `w.byte(125);`);
  let dropSource = [
    `return class Drop_${ident} {`,
    // Own enumerable data, in the order the plain-object events had them.
    `  cpu; pid; tid; event; monoNs;`,
    `  #clock; #time = undefined; #fields = undefined;`,
    ...slotNames.map((n) => `  ${n} = 0;`),
    `  constructor(clock, cpu, pid, tid, monoNs, dv, u8, base, rawSize) {`,
    `    this.cpu = cpu; this.pid = pid; this.tid = tid; this.event = EVENT; this.monoNs = monoNs;`,
    `    this.#clock = clock;`,
    ...plans.flatMap(({ p }) => p.read.map((l) => `    ${l}`)),
    `  }`,
    `  get time() { return this.#time ?? (this.#time = this.#clock.iso(this.monoNs)); }`,
    `  set time(v) { this.#time = v; }`,
    `  get fields() { return this.#fields ?? (this.#fields = this.readFields()); }`,
    `  set fields(v) { this.#fields = v; }`,
    `  readFields() {`,
    `    return {`,
    ...plans.map(({ f, p }) => `      ${JSON.stringify(f.name)}: ${p.value},`),
    `    };`,
    `  }`,
    `  writeTime(w) {`,
    `    if (this.#time !== undefined) w.utf8(this.#time);`,
    `    else this.#clock.writeIso(w, this.monoNs);`,
    `  }`,
    `  writeFields(w) {`,
    `    if (this.#fields !== undefined) { w.value(this.#fields); return; }`,
    ...writes.map((l) => `    ${l}`),
    `  }`,
    `  writeEventFields(w) {`,
    `    if (this.event === EVENT) ${konst(`,"event":${JSON.stringify(event)},"fields":`)}`,
    `    else {`,
    `      ${konst(',"event":')}`,
    `      w.str(this.event);`,
    `      ${konst(',"fields":')}`,
    `    }`,
    `    this.writeFields(w);`,
    `  }`,
    `  pristine() { return this.#time === undefined && this.#fields === undefined; }`,
    // Identity of the payload, for consumers that memoize per distinct event (attribution): only
    // while nobody has been handed `fields` (which they may have changed).
    `  sameSlots(o) {`,
    `    if (this.#fields !== undefined || !(#clock in o) || o.#fields !== undefined) return false;`,
    `    return ${slotNames.length === 0 ? 'true' : slotNames.map((n) => `(this.${n} === o.${n} || h.eqv(this.${n}, o.${n}))`).join(' && ')};`,
    `  }`,
    `  slotKey() {`,
    `    if (this.#fields !== undefined) return undefined;`,
    `    return EVENT${slotNames.map((n) => ` + ',' + h.kv(this.${n})`).join('')};`,
    `  }`,
    `  timeAt(b, p) { return this.#clock.isoAt(b, p, this.monoNs); }`,
    `};`,
  ].join('\n');
  const lineSource = lineWriter(event, plans, K);
  dropSource = dropSource.replace(/\n};$/, `\n${lineSource}\n};`);
  // JSON text of every symbolic name, per table: j0, j1…
  const symJson = symTables.map((t) => new Map([...t].map(([v, name]) => [v, utf8Bytes(JSON.stringify(name))])));
  const jParams = symJson.map((_, i) => `j${i}`);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from a parsed schema, never from user text
  const dropFactory = new Function('EVENT', 'K', ...params, ...jParams, dropSource) as (...a: unknown[]) => DropClass;
  const Drop = dropFactory(event, K, helpers, LE, ipv4FromBytes, ipv6FromBytes, ...symTables, ...symJson);
  // DecodedDrop.prototype behind the generated methods: instanceof, toJSON, inspect.
  Object.setPrototypeOf(Drop.prototype, DecodedDrop.prototype);
  return { schema, event, read, minRawSize, Drop, source, dropSource };
}
