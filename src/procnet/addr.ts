// IP address codecs: the hex text of /proc/net/{udp,udp6,raw,raw6,icmp,icmp6}, raw sockaddr bytes
// from tracepoints, and the `addr:port` / `[addr]:port` text rxtrace prints everywhere.
// IPv6 text is always the RFC 5952 canonical form, so equal addresses compare equal as strings.
import { endianness } from 'node:os';
import { ipv4FromBytes, ipv6FromBytes } from '../addr-text.js';
import { RxtraceError } from '../errors.js';
import { ProcParseError } from './errors.js';

/** Byte order of the u32 words the kernel prints with %08X (its own, i.e. the host's). */
export type Endianness = 'LE' | 'BE';
export const HOST_ENDIANNESS: Endianness = endianness();

export type IpFamily = 4 | 6;

export interface Endpoint {
  /** Canonical text: dotted quad, or RFC 5952 IPv6 (`::ffff:1.2.3.4` for IPv4-mapped). */
  addr: string;
  /** Host-order port; in raw tables the protocol number. */
  port: number;
}

export interface FamilyEndpoint extends Endpoint {
  family: IpFamily;
}

export { ipv4FromBytes, ipv6FromBytes };

function invalid(what: string, text: string): RxtraceError {
  return new RxtraceError('EINVAL', `not ${what}: ${JSON.stringify(text)}`);
}

const IPV4_OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** `127.0.0.1` → 4 bytes. Rejects leading zeros (inet_aton would read them as octal). */
export function ipv4ToBytes(text: string): Uint8Array {
  const parts = text.split('.');
  if (parts.length !== 4) throw invalid('an IPv4 address', text);
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!IPV4_OCTET.test(p)) throw invalid('an IPv4 address', text);
    const v = Number(p);
    if (v > 255) throw invalid('an IPv4 address', text);
    out[i] = v;
  }
  return out;
}

const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Any RFC 4291 text form (`::1`, `2001:DB8:0:0::1`, `::ffff:1.2.3.4`) → 16 bytes. No zone ids. */
export function ipv6ToBytes(text: string): Uint8Array {
  const halves = text.split('::');
  if (halves.length > 2) throw invalid('an IPv6 address', text);
  const groups: number[][] = [];
  for (let h = 0; h < halves.length; h++) {
    const half = halves[h];
    const out: number[] = [];
    if (half !== '') {
      const parts = half.split(':');
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        const lastOfText = i === parts.length - 1 && h === halves.length - 1;
        if (lastOfText && p.includes('.')) {
          const v4 = ipv4ToBytes(p);
          out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        } else if (IPV6_GROUP.test(p)) {
          out.push(parseInt(p, 16));
        } else {
          throw invalid('an IPv6 address', text);
        }
      }
    }
    groups.push(out);
  }
  let words: number[];
  if (groups.length === 1) {
    if (groups[0].length !== 8) throw invalid('an IPv6 address', text);
    words = groups[0];
  } else {
    const n = groups[0].length + groups[1].length;
    if (n > 7) throw invalid('an IPv6 address', text);
    words = [...groups[0], ...new Array<number>(8 - n).fill(0), ...groups[1]];
  }
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = words[i] >> 8;
    bytes[2 * i + 1] = words[i] & 0xff;
  }
  return bytes;
}

/** IPv4 or IPv6 text → 4 or 16 bytes. */
export function ipToBytes(text: string): Uint8Array {
  return text.includes(':') ? ipv6ToBytes(text) : ipv4ToBytes(text);
}

/** Any IPv4/IPv6 text → the canonical text rxtrace prints (RFC 5952 for IPv6). */
export function normalizeIp(text: string): string {
  const b = ipToBytes(text);
  return b.length === 4 ? ipv4FromBytes(b) : ipv6FromBytes(b);
}

const PROC_HEX = /^[0-9A-Fa-f]+$/;

/**
 * One address of /proc/net/{udp,raw,icmp}[6]: 8 hex digits (IPv4) or 32 (IPv6), printed by
 * the kernel as %08X of host-order u32 words. On little-endian `0100007F` is 127.0.0.1.
 * Throws ProcParseError (without a file or line: the table parsers add them).
 */
export function decodeProcAddr(hex: string, endian: Endianness = HOST_ENDIANNESS): string {
  if ((hex.length !== 8 && hex.length !== 32) || !PROC_HEX.test(hex)) {
    throw new ProcParseError('', 0, 'expected an address of 8 or 32 hex digits', hex);
  }
  const words = hex.length / 8;
  const bytes = new Uint8Array(words * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < words; i++) {
    view.setUint32(i * 4, parseInt(hex.slice(i * 8, i * 8 + 8), 16), endian === 'LE');
  }
  return words === 1 ? ipv4FromBytes(bytes) : ipv6FromBytes(bytes);
}

/** The inverse of decodeProcAddr: `127.0.0.1` → `0100007F` on little-endian. */
export function encodeProcAddr(addr: string, endian: Endianness = HOST_ENDIANNESS): string {
  const bytes = ipToBytes(addr);
  const view = new DataView(bytes.buffer);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    out += view.getUint32(i, endian === 'LE').toString(16).toUpperCase().padStart(8, '0');
  }
  return out;
}

const PROC_PORT = /^[0-9A-Fa-f]{1,4}$/;

/** `0100007F:1388` → `{ addr: '127.0.0.1', port: 5000, family: 4 }`. Throws ProcParseError. */
export function decodeProcEndpoint(token: string, endian: Endianness = HOST_ENDIANNESS): FamilyEndpoint {
  const colon = token.indexOf(':');
  const portHex = token.slice(colon + 1);
  if (colon < 0 || !PROC_PORT.test(portHex)) {
    throw new ProcParseError('', 0, 'expected ADDR:PORT in hex', token);
  }
  const hex = token.slice(0, colon);
  return { addr: decodeProcAddr(hex, endian), port: parseInt(portHex, 16), family: hex.length === 8 ? 4 : 6 };
}

/** The inverse of decodeProcEndpoint: `{127.0.0.1, 5000}` → `0100007F:1388` on little-endian. */
export function encodeProcEndpoint(ep: Endpoint, endian: Endianness = HOST_ENDIANNESS): string {
  checkPort(ep.port, String(ep.port));
  return `${encodeProcAddr(ep.addr, endian)}:${ep.port.toString(16).toUpperCase().padStart(4, '0')}`;
}

function checkPort(port: number, text: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw invalid('a port (0-65535)', text);
}

/**
 * `127.0.0.1:5000`, `[::1]:5000`. `addr` must already be canonical text (as every decoder here
 * returns; use normalizeIp for foreign text): this runs per event and does not re-parse.
 * IPv6 text is always bracketed. `family` 6 with IPv4 text gives the IPv4-mapped form
 * (`[::ffff:127.0.0.1]:5000`), which is how an AF_INET6 socket sees an IPv4 peer.
 */
export function formatSockaddr(addr: string, port: number, family?: IpFamily): string {
  if (addr.includes(':')) return `[${addr}]:${port}`;
  if (family === 6) return `[::ffff:${addr}]:${port}`;
  return `${addr}:${port}`;
}

/** The inverse of formatSockaddr: `[::1]:5000` → `{ addr: '::1', port: 5000, family: 6 }`. */
export function parseSockaddr(text: string): FamilyEndpoint {
  let addrText: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']:');
    if (close < 0) throw invalid('[IPv6]:port', text);
    addrText = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!addrText.includes(':')) throw invalid('[IPv6]:port', text);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw invalid('addr:port', text);
    addrText = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (addrText.includes(':')) throw invalid('addr:port (IPv6 needs brackets)', text);
  }
  if (!/^(0|[1-9][0-9]{0,4})$/.test(portText)) throw invalid('addr:port', text);
  const port = Number(portText);
  checkPort(port, text);
  const bytes = ipToBytes(addrText);
  return bytes.length === 4
    ? { addr: ipv4FromBytes(bytes), port, family: 4 }
    : { addr: ipv6FromBytes(bytes), port, family: 6 };
}
