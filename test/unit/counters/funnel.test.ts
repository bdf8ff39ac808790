// readSnapshot + buildInterval over fake /proc and /sys trees of three kernel layouts
// (test/fixtures/counters/README.md tells what changes between snapshot a and b in each):
// softnet_stat with 15, 13 and 11 columns, snmp with and without MemErrors, IPv6 or not, sysfs
// or not, u32 wraps, u64 resets, devices, CPUs and sockets that appear or vanish, and sockets in
// other network namespaces reconciled against their own namespace's snmp.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInterval, type FunnelInterval } from '../../../src/counters/funnel.js';
import { readSnapshot, type CounterSnapshot } from '../../../src/counters/snapshot.js';
import { materialize, tempDir } from '../../helpers/proc-tree.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function pair(kernel: string): Promise<{ a: CounterSnapshot; b: CounterSnapshot; iv: FunnelInterval }> {
  const ta = materialize(kernel, 'a', join(tmp.dir, kernel, 'a'));
  const tb = materialize(kernel, 'b', join(tmp.dir, kernel, 'b'));
  const a = await readSnapshot(ta);
  const b = await readSnapshot(tb);
  // A fixed two-second interval, so that rates are checkable.
  b.monoMs = a.monoMs + 2000;
  b.monoNs = a.monoNs + 2e9;
  return { a, b, iv: buildInterval(a, b) };
}

const layer = (iv: FunnelInterval, name: string) => iv.funnel.find((l) => l.layer === name)!;

describe('6.18: 15-column softnet_stat, MemErrors, other namespaces', async () => {
  const { a, b, iv } = await pair('6.18');

  it('reads every source, with no errors', () => {
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    expect(b.selfNetns).toBe(4026531840);
    expect([...b.sockets!.keys()].sort()).toEqual([1001, 1002, 1003, 1005, 2001, 3001]);
    expect(b.sockets!.get(2001)!.netns).toBe(4026532500);
    expect(b.sockets!.get(2001)!.owners).toEqual([{ pid: 200, comm: 'ctr-app' }]);
    expect([...b.netnsSnmp!.keys()].sort()).toEqual([4026532500, 4026532600]);
  });

  it('softnet_stat: per-CPU deltas, a u32 wrap, the total, backlog gauges', () => {
    expect(iv.delta.softnet_stat.cpu['0']).toEqual({ processed: 1024, dropped: 3, time_squeeze: 2, received_rps: 0, flow_limit_count: 0 });
    // cpu1 processed went 0xffffff00 → 0x100: a wrap of 0x200.
    expect(iv.delta.softnet_stat.cpu['1']).toEqual({ processed: 512, dropped: 0, time_squeeze: 0, received_rps: 2, flow_limit_count: 1 });
    expect(iv.delta.softnet_stat.total).toEqual({ processed: 1536, dropped: 3, time_squeeze: 2, received_rps: 2, flow_limit_count: 1 });
    expect(iv.notes!.wraps).toEqual(['softnet_stat.cpu.1.processed', 'sockets.1002.drops']);
    expect(iv.gauges.softnet_stat).toEqual({
      '0': { backlog_len: 2, input_pkt_queue_len: 2, process_queue_len: 0 },
      '1': { backlog_len: 0, input_pkt_queue_len: 0, process_queue_len: 0 },
    });
  });

  it('devices: receive counters only, a reset is the new value, appear/vanish have no delta', () => {
    expect(iv.delta.dev.lo).toEqual({
      rx_bytes: 60000, rx_packets: 600, rx_errors: 0, rx_dropped: 3, rx_fifo_errors: 0, rx_frame_errors: 0, rx_compressed: 0, multicast: 0,
    });
    expect(iv.delta.dev.eth0.rx_packets).toBe(100);
    expect(iv.delta.statistics.lo).toEqual({ rx_packets: 600, rx_dropped: 3, rx_missed_errors: 0, rx_errors: 0, rx_nohandler: 0 });
    expect(iv.delta.statistics.eth0).toMatchObject({ rx_packets: 100, rx_dropped: 1, rx_missed_errors: 0 });
    expect(iv.delta.dev.veth10).toBeUndefined();
    expect(iv.delta.dev.veth9).toBeUndefined();
    expect(iv.notes!.resets).toEqual(
      expect.arrayContaining(['dev.eth0.rx_packets', 'dev.eth0.rx_dropped', 'statistics.eth0.rx_packets', 'statistics.eth0.rx_dropped', 'statistics.eth0.rx_missed_errors']),
    );
    expect(iv.notes!.appeared).toEqual(expect.arrayContaining(['dev.veth10', 'statistics.veth10']));
    expect(iv.notes!.vanished).toEqual(expect.arrayContaining(['dev.veth9', 'statistics.veth9']));
  });

  it('snmp and snmp6 under the kernel names', () => {
    expect(iv.delta.snmp.Udp).toEqual({
      InDatagrams: 20, NoPorts: 2, InErrors: 108, OutDatagrams: 0, RcvbufErrors: 100, SndbufErrors: 0, InCsumErrors: 3, IgnoredMulti: 0, MemErrors: 5,
    });
    expect(iv.delta.snmp.Ip).toMatchObject({ InReceives: 700, InDiscards: 2, InDelivers: 698 });
    expect('Forwarding' in iv.delta.snmp.Ip || 'DefaultTTL' in iv.delta.snmp.Ip).toBe(false);
    expect(Object.keys(iv.delta.snmp).sort()).toEqual(['Ip', 'Udp', 'UdpLite']);
    expect(iv.delta.snmp6).toMatchObject({ Ip6InReceives: 10, Udp6RcvbufErrors: 10, Udp6InErrors: 10, Udp6MemErrors: 0 });
    expect(Object.keys(iv.delta.snmp6).every((k) => /^(Ip6|Udp6|UdpLite6)/.test(k))).toBe(true);
  });

  it('sockets: only those whose drops rose, a u32 wrap, a new socket counts from 0, owners attached', () => {
    expect(iv.delta.sockets.map((s) => [s.inode, s.drops])).toEqual([
      [1001, 100],
      [2001, 50],
      [1002, 10], // 4294967290 → 4
      [1003, 7], // opened during the interval
      [1005, 4], // raw
    ]);
    expect(iv.delta.sockets[0]).toEqual({
      table: 'udp', inode: 1001, local: '127.0.0.1:5000', remote: '0.0.0.0:0', netns: 4026531840, owners: [{ pid: 100, comm: 'feed' }], drops: 100,
    });
    // 3001 is in a namespace first seen now: it may be old, so no delta.
    expect(iv.delta.sockets.find((s) => s.inode === 3001)).toBeUndefined();
    expect(iv.gauges.sockets['1001']).toEqual({ rx_queue: 0x900, drops: 1090 });
    expect(iv.notes!.sockets).toEqual({ appeared: 2, vanished: 1 });
  });

  it('reconciles per namespace: own (with a closed socket and a surplus) and another', () => {
    expect(iv.reconcile).toEqual([
      { netns: 4026531840, self: true, socket_drops: 117, RcvbufErrors: 110, MemErrors: 5, kernel_range: [115, 115], unexplained: 2, sockets_closed: 1 },
      { netns: 4026532500, self: false, socket_drops: 50, RcvbufErrors: 50, MemErrors: 0, kernel_range: [50, 50], unexplained: 0, sockets_closed: 0 },
    ]);
  });

  it('a flood while the tables are read: the socket drops fall between the two snmp reads', () => {
    const snmpAt = (udp: number, udp6: number) => ({
      snmp: { ...b.snmp, Udp: { ...b.snmp.Udp, RcvbufErrors: udp, MemErrors: 0 } },
      snmp6: { ...b.snmp6, Udp6RcvbufErrors: udp6, Udp6MemErrors: 0 },
    });
    const a2 = { ...a, ...snmpAt(1000, 0), snmpAfterSockets: snmpAt(1020, 0) };
    const b2 = { ...b, ...snmpAt(1100, 0), snmpAfterSockets: snmpAt(1130, 0) };
    // own socket drops are 117: within [1100 − 1020, 1130 − 1000] = [80, 130].
    const own = buildInterval(a2, b2).reconcile[0];
    expect(own).toMatchObject({ socket_drops: 117, RcvbufErrors: 100, MemErrors: 0, kernel_range: [80, 130], unexplained: 0 });
    const b3 = { ...b, ...snmpAt(1090, 0), snmpAfterSockets: snmpAt(1100, 0) };
    expect(buildInterval(a2, b3).reconcile[0]).toMatchObject({ kernel_range: [70, 100], unexplained: 17 });
    const b4 = { ...b, ...snmpAt(1200, 0), snmpAfterSockets: snmpAt(1210, 0) };
    expect(buildInterval(a2, b4).reconcile[0]).toMatchObject({ kernel_range: [180, 210], unexplained: -63 });
  });

  it('the funnel layers and the losing one', () => {
    expect(iv.interval).toBe(2);
    expect(layer(iv, 'nic')).toEqual({ layer: 'nic', in: 700, drops: 4, in_per_s: 350, drops_per_s: 2 });
    expect(layer(iv, 'softnet')).toEqual({ layer: 'softnet', in: 1536, drops: 3, in_per_s: 768, drops_per_s: 1.5 });
    expect(layer(iv, 'ip')).toEqual({ layer: 'ip', in: 710, drops: 2, in_per_s: 355, drops_per_s: 1 });
    // Udp: 20 + 2 + 108 in, NoPorts 2 + (108 − 100 − 5) out; Udp6: 10 in, 0 out.
    expect(layer(iv, 'udp')).toEqual({ layer: 'udp', in: 140, drops: 5, in_per_s: 70, drops_per_s: 2.5 });
    expect(layer(iv, 'socket')).toEqual({ layer: 'socket', in: null, drops: 171, in_per_s: null, drops_per_s: 85.5 });
    expect(iv.losing).toBe('socket');
    expect(iv.gauges.sockstat.UDP).toEqual({ inuse: 4, mem: 12 });
    expect(iv.gauges.udp_mem).toEqual([100, 200, 300]);
  });

  it('serialises as one JSON object with time, interval and delta first', () => {
    const line = JSON.stringify(iv);
    expect(line).not.toContain('\n');
    expect(Object.keys(JSON.parse(line)).slice(0, 3)).toEqual(['time', 'interval', 'delta']);
    expect(Object.keys(JSON.parse(line).delta)).toEqual(['dev', 'statistics', 'softnet_stat', 'snmp', 'snmp6', 'sockets']);
  });
});

describe('5.10: 13-column softnet_stat, no MemErrors', async () => {
  const { iv } = await pair('5.10');

  it('wraps a u32 dropped column, keeps backlog_len, leaves MemErrors out', () => {
    expect(iv.delta.softnet_stat.cpu['1'].dropped).toBe(32);
    expect(iv.delta.softnet_stat.total).toMatchObject({ processed: 110, dropped: 32, time_squeeze: 1 });
    expect(iv.gauges.softnet_stat['0']).toEqual({ backlog_len: 4 });
    expect('MemErrors' in iv.delta.snmp.Udp).toBe(false);
    expect('Udp6MemErrors' in iv.delta.snmp6).toBe(false);
    expect(iv.reconcile).toEqual([{ netns: 4026531840, self: true, socket_drops: 76, RcvbufErrors: 76, MemErrors: 0, kernel_range: [76, 76], unexplained: 0, sockets_closed: 0 }]);
  });

  it('a backlog drop counts as softnet dropped and as the device rx_dropped, but the socket loses more', () => {
    expect(layer(iv, 'nic').drops).toBe(32);
    expect(layer(iv, 'softnet').drops).toBe(32);
    expect(iv.losing).toBe('socket');
  });
});

describe('5.4: 11-column softnet_stat, a CPU goes offline, no IPv6, no sysfs', async () => {
  const { a, b, iv } = await pair('5.4');

  it('reads what there is', () => {
    expect(a.softnet.every((r) => !r.cpu_exact)).toBe(true);
    expect(b.snmp6).toEqual({});
    expect(b.statistics).toEqual({});
    expect(b.errors).toEqual([]);
  });

  it('no per-CPU deltas when the lines cannot be matched to CPUs', () => {
    expect(iv.delta.softnet_stat.cpu).toEqual({});
    expect(iv.delta.softnet_stat.total.processed).toBe(0);
    expect(iv.notes!.vanished).toEqual(expect.arrayContaining(['softnet_stat.cpu.0', 'softnet_stat.cpu.1', 'softnet_stat.cpu.2']));
    expect(iv.notes!.appeared).toEqual(expect.arrayContaining(['softnet_stat.cpu.0', 'softnet_stat.cpu.1']));
  });

  it('the NIC layer falls back to /proc/net/dev', () => {
    expect(iv.delta.dev.eth0).toMatchObject({ rx_packets: 100, rx_dropped: 4, rx_errors: 2 });
    expect(layer(iv, 'nic')).toMatchObject({ in: 120, drops: 6 });
    expect(iv.losing).toBe('nic');
    expect(iv.delta.snmp6).toEqual({});
  });
});

describe('a snapshot without sockets', () => {
  it('stands in the kernel RcvbufErrors + MemErrors for the socket layer', async () => {
    const ta = materialize('6.18', 'a', join(tmp.dir, 'nosock', 'a'));
    const tb = materialize('6.18', 'b', join(tmp.dir, 'nosock', 'b'));
    const a = await readSnapshot({ ...ta, sockets: false });
    const b = await readSnapshot({ ...tb, sockets: false });
    const iv = buildInterval(a, b);
    expect(a.sockets).toBeUndefined();
    expect(iv.delta.sockets).toEqual([]);
    expect(layer(iv, 'socket').drops).toBe(115);
    expect(iv.reconcile).toEqual([{ netns: 4026531840, self: true, socket_drops: 0, RcvbufErrors: 110, MemErrors: 5, kernel_range: [115, 115], unexplained: -115, sockets_closed: 0 }]);
  });

  it('records a source it cannot parse and reads the others', async () => {
    const t = materialize('6.18', 'a', join(tmp.dir, 'bad', 'a'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(t.procRoot, 'net', 'softnet_stat'), '00000001 00000002\n');
    const s = await readSnapshot(t);
    expect(s.softnet).toEqual([]);
    expect(s.errors).toEqual([expect.objectContaining({ source: 'softnet_stat', code: 'EPARSE' })]);
    expect(s.snmp.Udp.RcvbufErrors).toBe(990);
  });
});

describe('SnapshotReader', () => {
  it('reuses an owner scan, but scans again when a socket without an owner drops', async () => {
    const { rmSync } = await import('node:fs');
    const { SnapshotReader } = await import('../../../src/counters/snapshot.js');
    const dir = join(tmp.dir, 'reader');
    const t = materialize('6.18', 'a', dir);
    const reader = new SnapshotReader({ ...t, ownersMaxAgeMs: 60_000 });
    const a = await reader.read();
    expect(a.sockets!.get(1001)!.owners).toEqual([{ pid: 100, comm: 'feed' }]);
    rmSync(dir, { recursive: true });
    materialize('6.18', 'b', dir);
    const b = await reader.read();
    // 1003 was opened after the first scan and has 7 drops: a new scan names its owner.
    expect(b.sockets!.get(1003)!.owners).toEqual([{ pid: 100, comm: 'feed' }]);
    // The tables were read with the first scan's namespaces: pid 300's new one is not there yet.
    expect(b.sockets!.has(3001)).toBe(false);
    const c = await reader.read();
    expect(c.sockets!.has(3001)).toBe(true);
    expect(c.sockets!.get(3001)!.owners).toEqual([{ pid: 300, comm: 'new-ctr' }]);
  });

  it('owners read on a rescan carry cgroup, unit and container, like the first read', async () => {
    const { rmSync, writeFileSync } = await import('node:fs');
    const { SnapshotReader } = await import('../../../src/counters/snapshot.js');
    const ctr = 'c0ffee'.repeat(10) + 'c0de';
    const cgroupOf100 = `0::/system.slice/docker-${ctr}.scope\n`;
    const dir = join(tmp.dir, 'reader-cgroup');
    const t = materialize('6.18', 'a', dir);
    writeFileSync(join(t.procRoot, '100', 'cgroup'), cgroupOf100);
    const reader = new SnapshotReader({ ...t, ownersMaxAgeMs: 60_000 });
    const a = await reader.read();
    const identity = { cgroup: `/system.slice/docker-${ctr}.scope`, unit: `docker-${ctr}.scope`, container: ctr };
    // First read: a fresh scan; 1001 drops, so its owner gets its cgroup keys.
    expect(a.sockets!.get(1001)!.owners).toEqual([{ pid: 100, comm: 'feed', ...identity }]);
    rmSync(dir, { recursive: true });
    materialize('6.18', 'b', dir);
    writeFileSync(join(t.procRoot, '100', 'cgroup'), cgroupOf100);
    const b = await reader.read();
    // 1003 (new, 7 drops, no owner in the reused scan) makes the reader rescan: the rescan's
    // owners are the ones set on every row, and must carry the same keys.
    expect(b.sockets!.get(1003)!.owners).toEqual([{ pid: 100, comm: 'feed', ...identity }]);
    expect(b.sockets!.get(1001)!.owners).toEqual([{ pid: 100, comm: 'feed', ...identity }]);
  });
});
