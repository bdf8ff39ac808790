// Compile one EventSchema into `Drop`, a DecodedDrop subclass generated once per schema: it reads
// the payload fields into private number slots at decode time and makes the object literal
// (`fields`, frozen) or its JSON text (writeHead, writeFields) only when asked.
import { endianness } from 'node:os';
import { ipv4FromBytes, ipv6FromBytes } from '../addr-text.js';
import type { EventSchema, FieldSchema } from '../format/schema.js';
import { DecodedDrop, type DropClass } from './drop.js';
import { helpers } from './field-helpers.js';
import { utf8Bytes, type JsonBytes } from './json-bytes.js';

export interface CompiledEvent {
  schema: EventSchema;
  /** `system:name`, the `event` of every DropEvent it decodes. */
  event: string;
  /** Raw bytes a record must have for every fixed field to be in bounds. */
  minRawSize: number;
  /** The DropEvent class of this schema: `new Drop(clock, cpu, pid, tid, monoNs, dv, u8, base, rawSize)`. */
  Drop: DropClass;
  /** The generated source of the Drop class (print it when debugging a decoder). */
  dropSource: string;
}

const LE = endianness() === 'LE';
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
  const params = ['h', 'LE', 'ipv4FromBytes', 'ipv6FromBytes', ...symTables.map((_, i) => `s${i}`)];
  const ident = `${schema.system}_${schema.name}`.replace(/[^A-Za-z0-9_]/g, '_');
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
    // #replaced: a consumer assigned time or fields; only then do the generated paths step aside
    // (reading them caches them, and `fields` is frozen, so the slots stay the truth).
    `  #clock; #time = undefined; #fields = undefined; #replaced = false;`,
    ...slotNames.map((n) => `  ${n} = 0;`),
    `  constructor(clock, cpu, pid, tid, monoNs, dv, u8, base, rawSize) {`,
    `    this.cpu = cpu; this.pid = pid; this.tid = tid; this.event = EVENT; this.monoNs = monoNs;`,
    `    this.#clock = clock;`,
    ...plans.flatMap(({ p }) => p.read.map((l) => `    ${l}`)),
    `  }`,
    `  get time() { return this.#time ?? (this.#time = this.#clock.iso(this.monoNs)); }`,
    `  set time(v) { this.#time = v; this.#replaced = true; }`,
    `  get fields() { return this.#fields ?? (this.#fields = Object.freeze(this.readFields())); }`,
    `  set fields(v) { this.#fields = v; this.#replaced = true; }`,
    `  readFields() {`,
    `    return {`,
    ...plans.map(({ f, p }) => `      ${JSON.stringify(f.name)}: ${p.value},`),
    `    };`,
    `  }`,
    `  writeTime(w) {`,
    `    if (this.#replaced && this.#time !== undefined) w.utf8(this.#time);`,
    `    else this.#clock.writeIso(w, this.monoNs);`,
    `  }`,
    `  writeFields(w) {`,
    `    if (this.#replaced && this.#fields !== undefined) { w.value(this.#fields); return; }`,
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
    `  pristine() { return !this.#replaced; }`,
    // Identity of the payload, for consumers that memoize per distinct event (attribution): only
    // while nobody has replaced `fields`.
    `  sameSlots(o) {`,
    `    if (this.#replaced || !(#clock in o) || o.#replaced) return false;`,
    `    return ${slotNames.length === 0 ? 'true' : slotNames.map((n) => `(this.${n} === o.${n} || h.eqv(this.${n}, o.${n}))`).join(' && ')};`,
    `  }`,
    `  slotKey() {`,
    `    if (this.#replaced) return undefined;`,
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
  return { schema, event, minRawSize, Drop, dropSource };
}
