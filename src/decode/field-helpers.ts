// The helpers that compile.ts's generated Drop classes call: C strings, 64-bit integers, hex
// pointers, sockaddrs, symbolic values, and the identity key. Kept small and monomorphic. (Their JSON
// writers are render/json-fields.ts'.)
import { ipv6FromBytes } from '../addr-text.js';
import { s64, u64 } from './bytes.js';

const v4cache = new Map<number, string>();

/** Helpers the generated code calls; kept small and monomorphic. */
export const helpers = {
  cstr(u8: Uint8Array, off: number, len: number): string {
    let end = off;
    const max = off + len;
    while (end < max && u8[end] !== 0) end++;
    return Buffer.from(u8.buffer, u8.byteOffset + off, end - off).toString('latin1');
  },
  u64,
  s64,
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
  /**
   * A sockaddr_in / sockaddr_in6 copied into the event, from the slots a DecodedDrop keeps:
   * family, port, and the address (IPv4 as a big-endian i32, IPv6 as 16 bytes). Family 0 means
   * "not filled in": null.
   */
  sockaddrText(family: number, port: number, addr: number | Uint8Array, size: number): string | null {
    if (family === 2 && size >= 8) return helpers.v4text(addr as number, port);
    if (family === 10 && size >= 24 && typeof addr !== 'number') return `[${ipv6FromBytes(addr, 0)}]:${port}`;
    return null;
  },
  ipv4Text(a: number): string {
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  },
  ptrText(lo: number, hi: number): string {
    const l = lo >>> 0;
    const h = hi >>> 0;
    return '0x' + (h === 0 ? l.toString(16) : h.toString(16) + l.toString(16).padStart(8, '0'));
  },
  symText(table: Map<number, string>, v: number): string | number {
    const n = table.get(v);
    return n === undefined ? v : n;
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
