// UdpGate (procnet/udp-gate.ts) against a fake /proc: a namespace's UDP rows are carried over
// only while its UDP error counters stand still, for a scope the last ask covered, and every
// readTables() asks exactly the namespaces that moved. The live side: test/live/udp-gate.test.ts.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readTables, type DiagTableReader, type NsRow } from '../../../src/procnet/netns-tables.js';
import { UdpGate } from '../../../src/procnet/udp-gate.js';
import type { SocketTable } from '../../../src/procnet/sockets.js';

let root: string;

const snmp = (inErrors: number, lite = 0): string =>
  `Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdp: 5 0 ${inErrors} 3 ${inErrors}\nUdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdpLite: 0 0 ${lite} 0 0\n`;
const snmp6 = (inErrors: number): string => `Udp6InDatagrams                 \t1\nUdp6InErrors                    \t${inErrors}\nUdpLite6InErrors                \t0\n`;

/** Namespace `ns` reached through `pid` (or ours when pid is undefined), with these counters. */
function setNs(ns: number, pid: number | undefined, v4: number, v6 = 0): void {
  const dir = pid === undefined ? root : join(root, String(pid));
  mkdirSync(join(dir, 'net'), { recursive: true });
  if (pid !== undefined) {
    mkdirSync(join(dir, 'ns'), { recursive: true });
    rmSync(join(dir, 'ns', 'net'), { force: true });
    symlinkSync(`net:[${ns}]`, join(dir, 'ns', 'net'));
  }
  writeFileSync(join(dir, 'net', 'snmp'), snmp(v4));
  writeFileSync(join(dir, 'net', 'snmp6'), snmp6(v6));
}

const row = (inode: number, port: number, netns: number, drops = 0): NsRow => ({
  table: 'udp',
  local: { addr: '127.0.0.1', port },
  remote: { addr: '0.0.0.0', port: 0 },
  localText: `127.0.0.1:${port}`,
  remoteText: '0.0.0.0:0',
  state: 7,
  tx_queue: 0,
  rx_queue: 0,
  uid: 0,
  inode,
  ref: 0,
  pointer: '0',
  drops,
  netns,
});

/** A sock_diag stand-in: serves `world` (rows by netns) and records which namespaces it was asked. */
function fakeDiag(world: Map<number, NsRow[]>): DiagTableReader & { asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    tables: new Set<SocketTable>(['udp', 'udp6']),
    async read(ns, tables, ports, rows) {
      asked.push(ns.inode);
      for (const r of world.get(ns.inode) ?? []) {
        if (!tables.includes(r.table)) continue;
        const p = ports?.get(r.table);
        if (p && !p.includes(r.local.port)) continue;
        rows.set(r.inode, { ...r });
      }
    },
  };
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'rxt-gate-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('UdpGate', () => {
  it('carries a namespace over while its counters stand still, and asks it again once they move', () => {
    setNs(100, undefined, 7);
    const g = new UdpGate(root);
    const sig = () => g.signatures(new Map([[100, []]]), 100).get(100);
    const s0 = sig();
    expect(s0).toBeDefined();
    expect(g.carry(100, 'udp', s0, undefined)).toBeUndefined(); // never asked yet
    const rows = [row(1, 53, 100)];
    g.asked(100, 'udp', s0, undefined, rows);
    expect(g.carry(100, 'udp', sig(), undefined)).toBe(rows);
    setNs(100, undefined, 8); // one UDP drop in that namespace
    expect(g.carry(100, 'udp', sig(), undefined)).toBeUndefined();
    setNs(100, undefined, 8, 1); // and one on an IPv6 socket
    expect(sig()).not.toBe(s0);
    expect(g.stats).toMatchObject({ asked: 1, carried: 1, askedByNetns: { 100: 1 } });
  });

  it('carries only what the last ask covered: a whole table serves any ports, a port scope only its own ports', () => {
    setNs(100, undefined, 0);
    const g = new UdpGate(root);
    const s = g.signatures(new Map([[100, []]]), 100).get(100);
    g.asked(100, 'udp', s, [53, 54], [row(1, 53, 100), row(2, 54, 100)]);
    expect(g.carry(100, 'udp', s, [53])?.map((r) => r.inode)).toEqual([1]);
    expect(g.carry(100, 'udp', s, [53, 99])).toBeUndefined();
    expect(g.carry(100, 'udp', s, undefined)).toBeUndefined();
    g.asked(100, 'udp', s, undefined, [row(1, 53, 100), row(2, 54, 100), row(3, 99, 100)]);
    expect(g.carry(100, 'udp', s, [99])?.map((r) => r.inode)).toEqual([3]);
  });

  it('never carries a table without a drop counter (raw, icmp), nor a namespace whose counters cannot be read', () => {
    const g = new UdpGate(root);
    g.asked(100, 'raw', 'x', undefined, [row(1, 0, 100)]);
    expect(g.carry(100, 'raw', 'x', undefined)).toBeUndefined();
    // No snmp at all for namespace 200 through pid 7, and pid 8 is in another namespace.
    setNs(300, 8, 0);
    expect(g.signatures(new Map([[200, [7, 8]]]), 1).get(200)).toBeUndefined();
    expect(g.stats.unreadable).toBe(1);
    g.asked(200, 'udp', undefined, undefined, [row(1, 53, 200)]);
    expect(g.carry(200, 'udp', undefined, undefined)).toBeUndefined();
  });

  it('with a max age, asks again after it even when nothing dropped', async () => {
    setNs(100, undefined, 0);
    const g = new UdpGate(root, 20);
    const s = g.signatures(new Map([[100, []]]), 100).get(100);
    g.asked(100, 'udp', s, undefined, [row(1, 53, 100)]);
    expect(g.carry(100, 'udp', s, undefined)).toBeDefined();
    await new Promise((r) => setTimeout(r, 40));
    expect(g.carry(100, 'udp', s, undefined)).toBeUndefined();
  });
});

describe('readTables with a gate', () => {
  it('asks only the namespaces whose UDP counters moved, and returns every namespace\'s rows', async () => {
    // Ours (100) and two others (200 through pid 20, 300 through pid 30), port 53 in each.
    setNs(100, undefined, 0);
    setNs(200, 20, 0);
    setNs(300, 30, 0);
    const world = new Map([
      [100, [row(1, 53, 100)]],
      [200, [row(2, 53, 200)]],
      [300, [row(3, 53, 300)]],
    ]);
    const diag = fakeDiag(world);
    const gate = new UdpGate(root);
    const pids = new Map([
      [200, [20]],
      [300, [30]],
    ]);
    const read = () => readTables(['udp'], pids, 100, root, { diag, gate, ports: new Map([['udp', [53]]]) });
    const r1 = await read();
    expect([...r1.rows.keys()].sort()).toEqual([1, 2, 3]);
    expect(diag.asked.sort()).toEqual([100, 200, 300]);

    // Socket 2 in namespace 200 drops: its counter and the namespace's InErrors move together.
    diag.asked.length = 0;
    world.set(200, [row(2, 53, 200, 5)]);
    setNs(200, 20, 5);
    const r2 = await read();
    expect(diag.asked).toEqual([200]);
    expect([...r2.rows.values()].map((r) => [r.inode, r.drops]).sort()).toEqual([
      [1, 0],
      [2, 5],
      [3, 0],
    ]);

    // Nothing moved: nobody is asked, and the rows are the same.
    diag.asked.length = 0;
    const r3 = await read();
    expect(diag.asked).toEqual([]);
    expect([...r3.rows.values()].map((r) => [r.inode, r.drops]).sort()).toEqual([
      [1, 0],
      [2, 5],
      [3, 0],
    ]);
    expect(gate.stats.askedByNetns).toEqual({ 100: 1, 200: 2, 300: 1 });
  });
});
