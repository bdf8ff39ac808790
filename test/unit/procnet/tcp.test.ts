// /proc/net/tcp and tcp6 (captured on 6.18: a listener with 2 connections waiting to be accepted,
// an established pair with 100 unread bytes, a TIME_WAIT socket) and the TCP socket reader's
// /proc fallback: no drops column (the 13th is rto: 100, 20), so every row says drops
// unknown, never a number.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTcpTable } from '../../../src/procnet/tcp.js';
import { readSocketTable } from '../../../src/procnet/sockets.js';
import type { SocketOwners } from '../../../src/procnet/owners.js';
import { readTcpSockets } from '../../../src/tcp-sockets.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

describe('parseTcpTable', () => {
  it('tcp: listener, established, TIME_WAIT; no drops (column 13 is rto)', () => {
    const rows = parseTcpTable(fixture('tcp.6.18'), 'tcp');
    expect(rows).toHaveLength(4);
    for (const r of rows) expect(r.drops).toBeUndefined();
    expect(rows[0]).toMatchObject({ table: 'tcp', localText: '127.0.0.1:35939', remoteText: '0.0.0.0:0', state: 10, rx_queue: 2, inode: 1812677, pointer: '00000000ddf3898c' });
    expect(rows[1]).toMatchObject({ state: 6, inode: 0, ref: 3 });
    expect(rows[3]).toMatchObject({ state: 1, rx_queue: 100, inode: 1812679, remoteText: '127.0.0.1:44194' });
  });

  it('tcp6 and the reader: /proc/net/tcp goes through the TCP parser', async () => {
    const rows = parseTcpTable(fixture('tcp6.6.18'), 'tcp6');
    expect(rows[0]).toMatchObject({ table: 'tcp6', localText: '[::1]:36245', state: 10, drops: undefined });
    const dir = mkdtempSync(join(tmpdir(), 'rxt-tcp-'));
    try {
      mkdirSync(join(dir, 'net'));
      writeFileSync(join(dir, 'net', 'tcp'), fixture('tcp.6.18'));
      const read = await readSocketTable('tcp', dir);
      expect(read.map((r) => r.drops)).toEqual([undefined, undefined, undefined, undefined]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('readTcpSockets from /proc (the fallback)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxt-tcp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'net'));
  writeFileSync(join(dir, 'net', 'tcp'), fixture('tcp.6.18'));
  writeFileSync(join(dir, 'net', 'tcp6'), fixture('tcp6.6.18'));
  const owners = { byInode: new Map([[1812677, [{ pid: 42, comm: 'server' }]]]), netnsByPid: new Map(), pidsByNetns: new Map() } as unknown as SocketOwners;

  it('RXTRACE_SOCKET_SOURCE=proc: every row with drops null, a listener with its accept queue and owner, no backlog', async () => {
    const r = await readTcpSockets(owners, '/proc', undefined, undefined, true, { RXTRACE_SOCKET_SOURCE: 'proc' });
    expect(r.source).toBe('proc');
    expect(r.why).toBe('RXTRACE_SOCKET_SOURCE=proc');
    for (const row of r.rows) expect(row.drops).toBeNull();
  });

  it('a fixture procRoot: its own tables (listeners only with the LISTEN mask)', async () => {
    const r = await readTcpSockets(owners, dir, undefined, 1 << 10, true, {});
    expect(r.source).toBe('proc');
    expect(r.rows.map((x) => [x.table, x.local, x.state_name])).toEqual([
      ['tcp', '127.0.0.1:35939', 'LISTEN'],
      ['tcp6', '[::1]:36245', 'LISTEN'],
    ]);
    expect(r.rows[0]).toMatchObject({ accept_queue: 2, drops: null, owners: [{ pid: 42, comm: 'server' }] });
    expect(r.rows[0]).not.toHaveProperty('backlog');
    const all = await readTcpSockets(owners, dir, undefined, undefined, true, {});
    expect(all.rows.map((x) => x.state_name)).toEqual(['LISTEN', 'TIME_WAIT', 'ESTABLISHED', 'ESTABLISHED', 'LISTEN']);
  });
});
