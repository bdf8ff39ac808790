// The helpers that compile.ts's generated readers and Drop classes call: C strings, hex, 64-bit
// integers, sockaddrs, symbolic values, and their JSON writers. Kept small and monomorphic.
import { ipv4FromBytes, ipv6FromBytes } from '../addr-text.js';
import { DIGITS2, s64, u64 } from './bytes.js';
import type { JsonBytes } from './json-bytes.js';

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

/** An IPv4 address held as a big-endian u32, written as `a.b.c.d` (no quotes). */
function writeDottedQuad(w: JsonBytes, a: number): void {
  w.uint(a >>> 24);
  w.byte(46);
  w.uint((a >>> 16) & 255);
  w.byte(46);
  w.uint((a >>> 8) & 255);
  w.byte(46);
  w.uint(a & 255);
}

/** Helpers the generated code calls; kept small and monomorphic. */
export const helpers = {
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
      w.byte(34);
      writeDottedQuad(w, addr as number);
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
    writeDottedQuad(w, a);
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
