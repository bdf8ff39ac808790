// /proc/net/snmp and snmp6: parsed by name, so a missing counter (Udp MemErrors before 5.11)
// is simply absent; negative values (Tcp MaxConn -1) are kept.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { parseSnmp, parseSnmp6, readSnmp, readSnmp6 } from '../../../src/procnet/snmp.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

describe('parseSnmp', () => {
  it('6.18: every protocol, by name, with MemErrors', () => {
    const s = parseSnmp(fixture('snmp-6.18.txt'));
    // No IcmpMsg pair: the kernel prints it only once some ICMP type has been counted.
    expect(Object.keys(s)).toEqual(['Ip', 'Icmp', 'Tcp', 'Udp', 'UdpLite']);
    expect(s.Udp).toEqual({
      InDatagrams: 0,
      NoPorts: 0,
      InErrors: 48,
      OutDatagrams: 50,
      RcvbufErrors: 48,
      SndbufErrors: 0,
      InCsumErrors: 0,
      IgnoredMulti: 0,
      MemErrors: 0,
    });
    expect(s.Tcp.MaxConn).toBe(-1);
    expect(s.Ip.Forwarding).toBe(2);
  });

  it('5.10: no MemErrors', () => {
    const s = parseSnmp(fixture('snmp-5.10.txt'));
    expect(s.Udp.RcvbufErrors).toBe(3071);
    expect('MemErrors' in s.Udp).toBe(false);
    expect(s.IcmpMsg).toEqual({ InType3: 12, OutType3: 12 });
    expect(s.Tcp.MaxConn).toBe(-1);
  });

  it('counters past 2^53 parse as (imprecise) numbers', () => {
    const s = parseSnmp('Udp: InDatagrams NoPorts\nUdp: 18446744073709551615 0\n');
    expect(s.Udp.InDatagrams).toBeCloseTo(1.8446744073709552e19, -5);
  });

  it('keys from the file cannot reach Object.prototype', () => {
    const s = parseSnmp('__proto__: constructor toString\n__proto__: 1 2\n');
    expect(s.__proto__).toEqual({ constructor: 1, toString: 2 });
    expect(({} as Record<string, unknown>).toString).toBe(Object.prototype.toString);
  });

  it('throws ProcParseError on mismatched or truncated pairs', () => {
    const text = fixture('snmp-6.18.txt');
    const lines = text.split('\n');
    expect(() => parseSnmp(lines.slice(0, 3).join('\n'))).toThrow(/no line of values/);
    expect(() => parseSnmp([lines[0], lines[3]].join('\n'))).toThrow(/values of Ip/);
    expect(() => parseSnmp([lines[0], lines[1].replace(/ \d+$/, '')].join('\n'))).toThrow(/names but/);
    expect(() => parseSnmp([lines[0], lines[1].replace(' 64 ', ' x ')].join('\n'))).toThrow(ProcParseError);
    expect(() => parseSnmp('garbage\n')).toThrow(/Proto:/);
    expect(() => parseSnmp('Udp: In-Datagrams\nUdp: 1\n')).toThrow(/not a counter name/);
    try {
      parseSnmp('Udp: A B\nUdp: 1 two\n', { file: 'F' });
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ name: 'ProcParseError', file: 'F', line: 2 });
    }
  });

  it('empty text → {}', () => {
    expect(parseSnmp('')).toEqual({});
  });
});

describe('parseSnmp6', () => {
  it('6.18', () => {
    const s = parseSnmp6(fixture('snmp6-6.18.txt'));
    expect(s.Udp6RcvbufErrors).toBe(18);
    expect(s.Udp6InErrors).toBe(18);
    expect(typeof s.Udp6MemErrors).toBe('number');
    expect(Object.keys(s).length).toBeGreaterThan(50);
  });

  it('rejects lines that are not `Name value`', () => {
    expect(() => parseSnmp6('Udp6InErrors\n')).toThrow(ProcParseError);
    expect(() => parseSnmp6('Udp6InErrors 1 2\n')).toThrow(ProcParseError);
    expect(() => parseSnmp6('Udp6InErrors x\n')).toThrow(ProcParseError);
    // A name that is no counter name, as a capture tool's trailing `Mode: 644` line.
    expect(() => parseSnmp6(`${fixture('snmp6-6.18.txt')}Mode: 644\n`)).toThrow(/expected `Name value`/);
    expect(() => parseSnmp6('Udp6-InErrors 1\n')).toThrow(ProcParseError);
  });
});

describe('readers', () => {
  const root = mkdtempSync(join(tmpdir(), 'rxtrace-snmp-'));
  mkdirSync(join(root, 'net'));
  writeFileSync(join(root, 'net', 'snmp'), fixture('snmp-5.10.txt'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reads snmp; a missing snmp6 (no IPv6) is {}', async () => {
    expect((await readSnmp(root)).Udp.InErrors).toBe(3071);
    expect(await readSnmp6(root)).toEqual({});
  });
});
