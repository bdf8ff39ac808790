// IP address bytes in network order → text: dotted quad, and RFC 5952 canonical IPv6 (so equal
// addresses compare equal as strings). A leaf: decode (tracepoint fields) and procnet (/proc
// tables) both print addresses through it, and neither needs to import the other for it.
import { RxtraceError } from './errors.js';

function checkRange(u8: Uint8Array, off: number, len: number): void {
  if (!Number.isInteger(off) || off < 0 || off + len > u8.length) {
    throw new RxtraceError('EINVAL', `need ${len} address bytes at offset ${off}, buffer has ${u8.length}`);
  }
}

/** Four bytes in network order (as in `struct in_addr`) → `127.0.0.1`. */
export function ipv4FromBytes(u8: Uint8Array, off = 0): string {
  checkRange(u8, off, 4);
  return `${u8[off]}.${u8[off + 1]}.${u8[off + 2]}.${u8[off + 3]}`;
}

/**
 * Sixteen bytes in network order (as in `struct in6_addr`) → RFC 5952 text: lower case, no
 * leading zeros, the longest run (≥ 2) of zero groups as `::` (the first on a tie), and
 * IPv4-mapped addresses in mixed notation (`::ffff:127.0.0.1`).
 */
export function ipv6FromBytes(u8: Uint8Array, off = 0): string {
  checkRange(u8, off, 16);
  const g: number[] = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (u8[off + 2 * i] << 8) | u8[off + 2 * i + 1];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${ipv4FromBytes(u8, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    if (g[i] !== 0) {
      runStart = -1;
      continue;
    }
    if (runStart < 0) runStart = i;
    const len = i - runStart + 1;
    if (len > bestLen) {
      bestLen = len;
      bestStart = runStart;
    }
  }
  if (bestLen < 2) return g.map(hex16).join(':');
  const head = g.slice(0, bestStart).map(hex16).join(':');
  const tail = g.slice(bestStart + bestLen).map(hex16).join(':');
  return `${head}::${tail}`;
}

function hex16(v: number): string {
  return v.toString(16);
}
