// Compile one EventSchema into a field reader: generated JS that reads every payload field at
// its offset with DataView calls into one object literal (a fixed shape V8 can optimise).
// Built once per schema; the per-event cost is the reads and nothing else.
import { endianness } from 'node:os';
import { ipv4FromBytes, ipv6FromBytes } from '../procnet/addr.js';
import type { EventSchema, FieldSchema } from '../format/schema.js';

export type FieldReader = (dv: DataView, u8: Uint8Array, base: number, rawSize: number) => Record<string, unknown>;

export interface CompiledEvent {
  schema: EventSchema;
  /** `system:name`, the `event` of every DropEvent it decodes. */
  event: string;
  read: FieldReader;
  /** Raw bytes a record must have for every fixed field to be in bounds. */
  minRawSize: number;
  /** The generated source, for debugging (`RXTRACE_DEBUG_DECODER=1`). */
  source: string;
}

const LE = endianness() === 'LE';

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
  u64(dv: DataView, off: number, le: boolean): number {
    return dv.getUint32(off + (le ? 4 : 0), le) * 4294967296 + dv.getUint32(off + (le ? 0 : 4), le);
  },
  s64(dv: DataView, off: number, le: boolean): number {
    return dv.getInt32(off + (le ? 4 : 0), le) * 4294967296 + dv.getUint32(off + (le ? 0 : 4), le);
  },
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
  const fnName = `read_${schema.system}_${schema.name}`.replace(/[^A-Za-z0-9_]/g, "_");
  const source = `return function ${fnName}(dv, u8, base, rawSize) {\n  ${body}\n};`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from a parsed schema, never from user text
  const factory = new Function(...params, source) as (...a: unknown[]) => FieldReader;
  const read = factory(helpers, LE, ipv4FromBytes, ipv6FromBytes, ...symTables);
  return { schema, event: `${schema.system}:${schema.name}`, read, minRawSize, source };
}
