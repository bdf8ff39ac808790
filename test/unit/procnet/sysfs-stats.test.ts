// /sys/class/net/<dev>/statistics/*: a file that fails to read or holds no integer is
// skipped, never fatal.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseStatValue, readAllDeviceStats, readDeviceStats } from '../../../src/procnet/sysfs-stats.js';

describe('sysfs statistics', () => {
  const root = mkdtempSync(join(tmpdir(), 'rxtrace-sysfs-'));
  const stats = join(root, 'class', 'net', 'eth0', 'statistics');
  mkdirSync(stats, { recursive: true });
  writeFileSync(join(stats, 'rx_bytes'), '123\n');
  writeFileSync(join(stats, 'rx_dropped'), '5\n');
  writeFileSync(join(stats, 'rx_missed_errors'), '0\n');
  writeFileSync(join(stats, 'weird'), 'n/a\n');
  mkdirSync(join(stats, 'unreadable')); // reading a directory fails (EISDIR), like a driver's EINVAL
  mkdirSync(join(root, 'class', 'net', 'lo', 'statistics'), { recursive: true });
  writeFileSync(join(root, 'class', 'net', 'lo', 'statistics', 'rx_packets'), '7');
  mkdirSync(join(root, 'class', 'net', 'bonding_masters_like')); // a device dir without statistics
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('parseStatValue', () => {
    expect(parseStatValue('42\n')).toBe(42);
    expect(parseStatValue('-1')).toBeUndefined();
    expect(parseStatValue('')).toBeUndefined();
  });

  it('skips files that fail or hold no integer', async () => {
    expect(await readDeviceStats('eth0', root)).toEqual({ rx_bytes: 123, rx_dropped: 5, rx_missed_errors: 0 });
    expect(await readDeviceStats('nope', root)).toEqual({});
  });

  it('reads every device', async () => {
    expect(await readAllDeviceStats(root)).toEqual({
      bonding_masters_like: {},
      eth0: { rx_bytes: 123, rx_dropped: 5, rx_missed_errors: 0 },
      lo: { rx_packets: 7 },
    });
    expect(await readAllDeviceStats(join(root, 'missing'))).toEqual({});
  });
});
