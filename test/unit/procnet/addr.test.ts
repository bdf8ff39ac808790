// Address codecs: known vectors (little- and big-endian /proc text, RFC 5952 examples) and
// fast-check round trips. FC_RUNS raises the number of runs (a fuzz script sets it).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RxtraceError } from '../../../src/errors.js';
import {
  decodeProcAddr,
  decodeProcEndpoint,
  encodeProcAddr,
  encodeProcEndpoint,
  formatSockaddr,
  HOST_ENDIANNESS,
  ipv4FromBytes,
  ipv4ToBytes,
  ipv6FromBytes,
  ipv6ToBytes,
  normalizeIp,
  parseSockaddr,
  type Endianness,
} from '../../../src/procnet/addr.js';
import { ProcParseError } from '../../../src/procnet/errors.js';

const RUNS = Number(process.env.FC_RUNS) || 1000;
const cfg = { numRuns: RUNS };

const bytes4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
/** 16 bytes, biased toward zero groups so `::` placement and ties get exercised. */
const bytes16 = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
  fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }).map((g) => {
    const b = new Uint8Array(16);
    g.forEach((v, i) => {
      b[2 * i] = v >> 8;
      b[2 * i + 1] = v & 0xff;
    });
    return b;
  }),
  bytes4.map((v4) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4])),
);
const endian = fc.constantFrom<Endianness>('LE', 'BE');
const port = fc.integer({ min: 0, max: 0xffff });
const isMapped = (b: Uint8Array): boolean => b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

describe('known vectors', () => {
  it('decodes the little-endian text of /proc/net/udp', () => {
    expect(decodeProcAddr('0100007F', 'LE')).toBe('127.0.0.1');
    expect(decodeProcEndpoint('0100007F:B26E', 'LE')).toEqual({ addr: '127.0.0.1', port: 45678, family: 4 });
    expect(decodeProcAddr('00000000000000000000000001000000', 'LE')).toBe('::1');
    expect(decodeProcAddr('0000000000000000FFFF00000100007F', 'LE')).toBe('::ffff:127.0.0.1');
    expect(decodeProcAddr('B80D0120000000000000000001000000', 'LE')).toBe('2001:db8::1');
    expect(decodeProcAddr('000080FE000000000000000001000000', 'LE')).toBe('fe80::1');
    expect(decodeProcAddr('00000000000000000000000000000000', 'LE')).toBe('::');
    expect(decodeProcAddr('0102A8C0', 'LE')).toBe('192.168.2.1');
  });

  it('decodes the big-endian text (s390x, ppc64)', () => {
    expect(decodeProcAddr('7F000001', 'BE')).toBe('127.0.0.1');
    expect(decodeProcAddr('00000000000000000000000000000001', 'BE')).toBe('::1');
    expect(decodeProcAddr('00000000000000000000FFFF7F000001', 'BE')).toBe('::ffff:127.0.0.1');
    expect(decodeProcEndpoint('20010DB8000000000000000000000001:0035', 'BE')).toEqual({ addr: '2001:db8::1', port: 53, family: 6 });
  });

  it('encodes back to the kernel text', () => {
    expect(encodeProcAddr('127.0.0.1', 'LE')).toBe('0100007F');
    expect(encodeProcAddr('::1', 'LE')).toBe('00000000000000000000000001000000');
    expect(encodeProcAddr('::ffff:127.0.0.1', 'LE')).toBe('0000000000000000FFFF00000100007F');
    expect(encodeProcAddr('127.0.0.1', 'BE')).toBe('7F000001');
    expect(encodeProcEndpoint({ addr: '127.0.0.1', port: 45678 }, 'LE')).toBe('0100007F:B26E');
    expect(encodeProcEndpoint({ addr: '0.0.0.0', port: 0 }, 'LE')).toBe('00000000:0000');
  });

  it('defaults to the host byte order', () => {
    expect(['LE', 'BE']).toContain(HOST_ENDIANNESS);
    expect(decodeProcAddr(encodeProcAddr('10.1.2.3'))).toBe('10.1.2.3');
  });

  it('writes IPv6 per RFC 5952', () => {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // tie: the first run
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays
      ['2001:DB8::AB', '2001:db8::ab'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['fe80:0:0:0:0:0:0:0', 'fe80::'],
      ['0:0:0:0:0:ffff:c000:0201', '::ffff:192.0.2.1'],
      ['::ffff:0.0.0.0', '::ffff:0.0.0.0'],
      ['::1.2.3.4', '::102:304'], // IPv4-compatible (deprecated): plain hex, not mixed
      ['64:ff9b::c000:201', '64:ff9b::c000:201'],
    ];
    for (const [input, want] of cases) expect(normalizeIp(input), input).toBe(want);
  });

  it('formats socket addresses', () => {
    expect(formatSockaddr('127.0.0.1', 5000)).toBe('127.0.0.1:5000');
    expect(formatSockaddr('127.0.0.1', 5000, 4)).toBe('127.0.0.1:5000');
    expect(formatSockaddr('::1', 5000)).toBe('[::1]:5000');
    expect(formatSockaddr('::1', 5000, 6)).toBe('[::1]:5000');
    expect(formatSockaddr('::ffff:127.0.0.1', 5000, 6)).toBe('[::ffff:127.0.0.1]:5000');
    expect(formatSockaddr('127.0.0.1', 5000, 6)).toBe('[::ffff:127.0.0.1]:5000');
    expect(parseSockaddr('[::FFFF:7f00:1]:5000')).toEqual({ addr: '::ffff:127.0.0.1', port: 5000, family: 6 });
    expect(parseSockaddr('0.0.0.0:0')).toEqual({ addr: '0.0.0.0', port: 0, family: 4 });
  });

  it('decodes bytes at an offset (tracepoint sockaddr fields)', () => {
    // struct sockaddr_in6 inside a 28-byte field: family, port (BE), flowinfo, then the address.
    const field = new Uint8Array(28);
    field.set(ipv6ToBytes('2001:db8::7'), 8);
    expect(ipv6FromBytes(field, 8)).toBe('2001:db8::7');
    field.set([192, 0, 2, 9], 4);
    expect(ipv4FromBytes(field, 4)).toBe('192.0.2.9');
    expect(() => ipv6FromBytes(field, 13)).toThrow(RxtraceError);
    expect(() => ipv4FromBytes(field, 25)).toThrow(RxtraceError);
  });

  it('rejects bad text with typed errors', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1']) {
      expect(() => ipv4ToBytes(bad), bad).toThrow(RxtraceError);
    }
    for (const bad of ['', ':', ':::', '1:::2', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', '12345::', 'g::', '1.2.3.4::', '::1.2.3.4:5', '::%eth0']) {
      expect(() => ipv6ToBytes(bad), bad).toThrow(RxtraceError);
    }
    for (const bad of ['', '1.2.3.4', '::1:80', '[::1]', '[1.2.3.4]:80', '1.2.3.4:65536', '1.2.3.4:080', '[::1]:']) {
      expect(() => parseSockaddr(bad), bad).toThrow(RxtraceError);
    }
    for (const bad of ['', '0100007', '0100007G', '0100007F0', ' 0100007F']) {
      expect(() => decodeProcAddr(bad), bad).toThrow(ProcParseError);
    }
    for (const bad of ['0100007F', '0100007F:', '0100007F:12345', ':0001', '0100007F:B26E:1']) {
      expect(() => decodeProcEndpoint(bad), bad).toThrow(ProcParseError);
    }
  });
});

describe('properties', () => {
  it('IPv6 bytes → text → bytes is the identity', () => {
    fc.assert(
      fc.property(bytes16, (b) => {
        expect(ipv6ToBytes(ipv6FromBytes(b))).toEqual(b);
      }),
      cfg,
    );
  });

  it('IPv4 bytes → text → bytes is the identity', () => {
    fc.assert(
      fc.property(bytes4, (b) => {
        expect(ipv4ToBytes(ipv4FromBytes(b))).toEqual(b);
      }),
      cfg,
    );
  });

  it('IPv6 text matches the WHATWG URL serializer (same compression rules) except mixed notation', () => {
    fc.assert(
      fc.property(bytes16, (b) => {
        fc.pre(!isMapped(b));
        const text = ipv6FromBytes(b);
        expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
        // and any spelling of the same address normalizes to it
        const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i] << 8) | b[2 * i + 1]).toString(16).toUpperCase().padStart(4, '0'));
        expect(normalizeIp(groups.join(':'))).toBe(text);
      }),
      cfg,
    );
  });

  it('proc hex → address → proc hex is the identity, both byte orders', () => {
    const hexWords = (n: number) =>
      fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: n, maxLength: n }).map((ws) => ws.map((w) => w.toString(16).toUpperCase().padStart(8, '0')).join(''));
    fc.assert(
      fc.property(fc.oneof(hexWords(1), hexWords(4)), endian, (hex, e) => {
        expect(encodeProcAddr(decodeProcAddr(hex, e), e)).toBe(hex);
        expect(encodeProcAddr(decodeProcAddr(hex.toLowerCase(), e), e)).toBe(hex);
      }),
      cfg,
    );
  });

  it('address → proc hex → address is the identity, both byte orders', () => {
    fc.assert(
      fc.property(fc.oneof(bytes4.map((b) => ipv4FromBytes(b)), bytes16.map((b) => ipv6FromBytes(b))), port, endian, (addr, p, e) => {
        const token = encodeProcEndpoint({ addr, port: p }, e);
        expect(decodeProcEndpoint(token, e)).toEqual({ addr, port: p, family: addr.includes(':') ? 6 : 4 });
      }),
      cfg,
    );
  });

  it('LE and BE text differ by a byte swap within each 32-bit word', () => {
    const swap = (hex: string) => hex.replace(/[0-9A-F]{8}/g, (w) => w.match(/../g)!.reverse().join(''));
    fc.assert(
      fc.property(fc.oneof(bytes4, bytes16), (b) => {
        const addr = b.length === 4 ? ipv4FromBytes(b) : ipv6FromBytes(b);
        expect(encodeProcAddr(addr, 'BE')).toBe(swap(encodeProcAddr(addr, 'LE')));
      }),
      cfg,
    );
  });

  it('formatSockaddr and parseSockaddr are inverses', () => {
    fc.assert(
      fc.property(fc.oneof(bytes4.map((b) => ipv4FromBytes(b)), bytes16.map((b) => ipv6FromBytes(b))), port, (addr, p) => {
        const family = addr.includes(':') ? 6 : 4;
        expect(parseSockaddr(formatSockaddr(addr, p, family))).toEqual({ addr, port: p, family });
      }),
      cfg,
    );
  });

  it('garbage gives only typed errors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        for (const f of [ipv4ToBytes, ipv6ToBytes, parseSockaddr, normalizeIp]) {
          try {
            f(s);
          } catch (e) {
            expect(e).toBeInstanceOf(RxtraceError);
          }
        }
        for (const f of [decodeProcAddr, decodeProcEndpoint]) {
          try {
            f(s);
          } catch (e) {
            expect(e).toBeInstanceOf(ProcParseError);
          }
        }
      }),
      cfg,
    );
  });
});
