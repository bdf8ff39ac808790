// The helpers render/json-head.ts' generated writers call: the JSON of each kind of decoded
// field (decode/slot-spec.ts), through JsonBytes or straight into its buffer at a raw position
// the caller reserved. Kept small and monomorphic: they run once per field per event.
import { DIGITS2 } from '../decode/bytes.js';
import { helpers as decoded } from '../decode/field-helpers.js';
import type { JsonBytes } from './json-bytes.js';

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

export const jsonFields = {
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
      return jsonFields.uintAt(b, p + 1, -x);
    }
    return jsonFields.uintAt(b, p, x);
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
    return k === undefined ? jsonFields.intAt(b, p, v) : jsonFields.copyAt(b, p, k);
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
    q = jsonFields.uintAt(b, q + 1, port);
    b[q] = 34;
    return q + 1;
  },
  writeSockaddr(w: JsonBytes, family: number, port: number, addr: number | Uint8Array, size: number): void {
    if (family === 2 && size >= 8) {
      w.byte(34);
      writeDottedQuad(w, addr as number);
      w.byte(58);
      w.uint(port);
      w.byte(34);
    } else {
      const t = decoded.sockaddrText(family, port, addr, size);
      if (t === null) w.ascii('null');
      else w.str(t);
    }
  },
  writeIpv4(w: JsonBytes, a: number): void {
    w.byte(34);
    writeDottedQuad(w, a);
    w.byte(34);
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
  /** A symbolic field: its name's JSON, pre-encoded per value, or the number when unnamed. */
  writeSym(w: JsonBytes, encoded: Map<number, Uint8Array>, v: number): void {
    const k = encoded.get(v);
    if (k === undefined) w.jsonNum(v);
    else w.bytes(k);
  },
};
