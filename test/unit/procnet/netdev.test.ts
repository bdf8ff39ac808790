// /proc/net/dev: two header lines, then `name: 16 counters`; old kernels joined the first
// counter to the colon (`eth0:123`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { NETDEV_COLUMNS, parseNetDev } from '../../../src/procnet/netdev.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

describe('parseNetDev', () => {
  it('6.18 capture', () => {
    const d = parseNetDev(fixture('dev-6.18.txt'));
    expect(Object.keys(d)).toEqual(['lo', 'ifb0', 'ifb1', 'eth0']);
    expect(d.eth0.rx_bytes).toBeGreaterThan(0);
    expect(Object.keys(d.lo)).toEqual(NETDEV_COLUMNS);
    expect(d.lo.rx_bytes).toBe(d.lo.tx_bytes);
  });

  it('names joined to the first counter, and names with dots and dashes', () => {
    const d = parseNetDev(fixture('dev-joined.txt'));
    expect(Object.keys(d)).toEqual(['lo', 'eth0', 'veth-a.100']);
    expect(d.eth0).toMatchObject({ rx_bytes: 1234567890, rx_packets: 6224, rx_dropped: 17, multicast: 3, tx_bytes: 344003, tx_compressed: 0 });
    expect(d['veth-a.100']).toMatchObject({ rx_bytes: 12, rx_packets: 1, tx_bytes: 24, tx_packets: 2 });
  });

  it('rejects missing counters and junk', () => {
    expect(() => parseNetDev('  eth0: 1 2 3\n')).toThrow(/expected 16 counters/);
    expect(() => parseNetDev(`  eth0: ${'1 '.repeat(15)}x\n`)).toThrow(ProcParseError);
    expect(() => parseNetDev('just words\n')).toThrow(ProcParseError);
    expect(() => parseNetDev(`  : ${'1 '.repeat(16)}\n`)).toThrow(/device name/);
  });

  it('empty and header-only → {}', () => {
    expect(parseNetDev('')).toEqual({});
    expect(parseNetDev(fixture('dev-6.18.txt').split('\n').slice(0, 2).join('\n'))).toEqual({});
  });
});
