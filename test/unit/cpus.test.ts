import { describe, expect, it } from 'vitest';
import { parseCpuList } from '../../src/cpus.js';
import { ProcParseError } from '../../src/procnet/errors.js';

describe('parseCpuList (/sys/devices/system/cpu/online)', () => {
  it('reads ranges and single CPUs', () => {
    expect(parseCpuList('0-3,6\n')).toEqual([0, 1, 2, 3, 6]);
    expect(parseCpuList('0')).toEqual([0]);
  });

  it('refuses text that is not a CPU list with a typed error', () => {
    expect(() => parseCpuList(':')).toThrow(ProcParseError);
  });

  it('refuses ranges beyond NR_CPUS or backwards, before building them', () => {
    expect(() => parseCpuList('0-4294967295')).toThrow(/not within 0-8191/);
    expect(() => parseCpuList('5-2')).toThrow(ProcParseError);
    expect(parseCpuList('8190-8191')).toEqual([8190, 8191]);
  });
});
