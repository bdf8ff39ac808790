// The live machine's files parse without throwing, and softnet_stat has one row per online
// CPU. Reading these needs no privileges.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readNetDev } from '../../../src/procnet/netdev.js';
import { readSnmp, readSnmp6 } from '../../../src/procnet/snmp.js';
import { readSocketTable, SOCKET_TABLES } from '../../../src/procnet/sockets.js';
import { getPageSize } from '../../../src/native.js';
import { readProtoMem, readSockstat } from '../../../src/procnet/sockstat.js';
import { readSoftnetStat } from '../../../src/procnet/softnet.js';
import { readAllDeviceStats } from '../../../src/procnet/sysfs-stats.js';

/** `0-3,5,7-8` → [0,1,2,3,5,7,8]. */
function cpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

describe('live /proc and /sys', () => {
  it('socket tables', async () => {
    for (const t of SOCKET_TABLES) {
      const rows = await readSocketTable(t);
      for (const r of rows) expect(r.table).toBe(t);
    }
  });

  it('snmp, snmp6', async () => {
    const snmp = await readSnmp();
    expect(typeof snmp.Udp.RcvbufErrors).toBe('number');
    expect(typeof snmp.Udp.InErrors).toBe('number');
    const snmp6 = await readSnmp6();
    if (Object.keys(snmp6).length > 0) expect(typeof snmp6.Udp6RcvbufErrors).toBe('number');
  });

  it('softnet_stat: one row per online CPU, with exact cpu numbers on 5.10+', async () => {
    const online = cpuList(readFileSync('/sys/devices/system/cpu/online', 'latin1'));
    const rows = await readSoftnetStat();
    expect(rows).toHaveLength(online.length);
    if (rows[0].cpu_exact) expect(rows.map((r) => r.cpu)).toEqual(online);
  });

  it('dev and sysfs statistics agree on the device list', async () => {
    const dev = await readNetDev();
    expect(dev.lo).toBeDefined();
    const sys = await readAllDeviceStats();
    expect(typeof sys.lo.rx_packets).toBe('number');
    expect(Object.keys(dev).sort()).toEqual(Object.keys(sys).sort());
  });

  it('sockstat, udp_mem, page size', async () => {
    const s = await readSockstat();
    expect(typeof s.UDP.inuse).toBe('number');
    expect(typeof s.UDP.mem).toBe('number');
    expect(typeof s.sockets.used).toBe('number');
    const mem = await readProtoMem();
    if (mem.udp_mem) expect(mem.udp_mem[0]).toBeLessThanOrEqual(mem.udp_mem[2]);
    expect([4096, 16384, 65536]).toContain(getPageSize());
  });
});
