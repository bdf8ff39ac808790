// Issue 11: every case of attribution.test.ts again through the /proc fallback
// (RXTRACE_SOCKET_SOURCE=proc, inherited by the CLI runs too), so both sources stay right.
import { expect, it } from 'vitest';
import { ProcAttributor } from '../../src/attribute/index.js';

process.env.RXTRACE_SOCKET_SOURCE = 'proc';
await import('./attribution.test.js');

it('the switch is in force: every table is read from /proc', async () => {
  const a = await ProcAttributor.create();
  try {
    expect(a.socketSource?.tables).toMatchObject({ udp: 'proc', udp6: 'proc', raw: 'proc', raw6: 'proc', icmp: 'proc', icmp6: 'proc' });
    expect(a.socketSource?.why.udp).toMatch(/RXTRACE_SOCKET_SOURCE=proc/);
    expect(a.diagSource).toBeUndefined();
  } finally {
    a.close();
  }
});
