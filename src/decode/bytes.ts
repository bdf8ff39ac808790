// Small readers and tables shared by the decoders and the renderers: 64-bit integers out of a
// DataView as doubles, text as UTF-8 bytes, and the ASCII digit pairs that number rendering
// uses. One home each.

/** "00".."99" as ASCII pairs: DIGITS2[2n], DIGITS2[2n + 1] are the digits of n. */
export const DIGITS2 = new Uint8Array(200);
for (let i = 0; i < 100; i++) {
  DIGITS2[2 * i] = 48 + Math.floor(i / 10);
  DIGITS2[2 * i + 1] = 48 + (i % 10);
}

/** Text as UTF-8 bytes (constants encoded once, written many times). */
export function utf8Bytes(s: string): Uint8Array {
  const b = Buffer.from(s, 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * An unsigned 64-bit integer at `off`, as a double: exact up to 2^53 (104 days of monotonic
 * ns, 9e15 counts), which is why it is not a BigInt (one allocation per read).
 */
export function u64(dv: DataView, off: number, le: boolean): number {
  return dv.getUint32(off + (le ? 4 : 0), le) * 4294967296 + dv.getUint32(off + (le ? 0 : 4), le);
}

/** A signed 64-bit integer at `off`, as a double (exact within ±2^53). */
export function s64(dv: DataView, off: number, le: boolean): number {
  return dv.getInt32(off + (le ? 4 : 0), le) * 4294967296 + dv.getUint32(off + (le ? 0 : 4), le);
}
