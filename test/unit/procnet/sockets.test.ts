// Socket tables: fixtures captured on 6.18 (in a netns with udp/udp6/raw/ping sockets, some
// with drops) and hand-written odd layouts; the reader against a fake /proc.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RxtraceError } from '../../../src/errors.js';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { parseSocketTable, readSocketTable, SOCKET_STATES, type SocketRow } from '../../../src/procnet/sockets.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

const pick = (rows: SocketRow[], inode: number): SocketRow => {
  const row = rows.find((r) => r.inode === inode);
  if (!row) throw new Error(`no row with inode ${inode}`);
  return row;
};

describe('parseSocketTable on 6.18 captures', () => {
  it('udp: connected sender, wildcard socket, and a receiver with drops', () => {
    const rows = parseSocketTable(fixture('udp-6.18.txt'), 'udp', { endian: 'LE' });
    expect(rows).toHaveLength(3);
    expect(pick(rows, 7674)).toEqual({
      table: 'udp',
      local: { addr: '127.0.0.1', port: 5000 },
      remote: { addr: '0.0.0.0', port: 0 },
      localText: '127.0.0.1:5000',
      remoteText: '0.0.0.0:0',
      state: 7,
      tx_queue: 0,
      rx_queue: 0x680,
      uid: 0,
      inode: 7674,
      ref: 2,
      pointer: '000000003fce0fa8',
      drops: 48,
    });
    const sender = pick(rows, 7675);
    expect(sender.localText).toBe('127.0.0.1:58160');
    expect(sender.remoteText).toBe('127.0.0.1:5000');
    expect(SOCKET_STATES[sender.state]).toBe('ESTABLISHED');
    expect(pick(rows, 7676).localText).toBe('0.0.0.0:45678');
  });

  it('udp6: ::1, dual-stack ::, and an IPv4-mapped bind', () => {
    const rows = parseSocketTable(fixture('udp6-6.18.txt'), 'udp6', { endian: 'LE' });
    expect(rows.map((r) => [r.inode, r.localText, r.remoteText, r.drops])).toEqual([
      [7678, '[::1]:53437', '[::1]:5001', 0],
      [7677, '[::1]:5001', '[::]:0', 18],
      [7679, '[::]:5002', '[::]:0', 0],
      [7680, '[::ffff:127.0.0.1]:5003', '[::]:0', 0],
    ]);
    expect(pick(rows, 7677).rx_queue).toBe(0x680);
  });

  it('raw, raw6: the port column is the protocol', () => {
    const raw = parseSocketTable(fixture('raw-6.18.txt'), 'raw', { endian: 'LE' });
    expect(raw.map((r) => [r.localText, r.table])).toEqual([
      ['0.0.0.0:17', 'raw'],
      ['0.0.0.0:1', 'raw'],
    ]);
    const raw6 = parseSocketTable(fixture('raw6-6.18.txt'), 'raw6', { endian: 'LE' });
    expect(raw6.map((r) => r.localText)).toEqual(['[::]:58']);
  });

  it('icmp, icmp6: ping sockets', () => {
    const icmp = parseSocketTable(fixture('icmp-6.18.txt'), 'icmp', { endian: 'LE' });
    expect(icmp.map((r) => [r.inode, r.localText, r.drops])).toEqual([[7684, '127.0.0.1:61379', 0]]);
    const icmp6 = parseSocketTable(fixture('icmp6-6.18.txt'), 'icmp6', { endian: 'LE' });
    expect(icmp6.map((r) => [r.inode, r.localText])).toEqual([[7685, '[::1]:61380']]);
  });
});

describe('parseSocketTable on odd layouts', () => {
  it('missing drops column → drops undefined (unknown, not zero)', () => {
    const rows = parseSocketTable(fixture('udp-no-drops.txt'), 'udp', { endian: 'LE' });
    expect(rows.map((r) => [r.localText, r.uid, r.drops, r.pointer])).toEqual([
      ['127.0.0.1:5000', 0, undefined, 'ffff88003fce0fa8'],
      ['0.0.0.0:45678', 1000, undefined, 'ffff880071ccf68e'],
    ]);
  });

  it('extra columns after drops are ignored', () => {
    const [row] = parseSocketTable(fixture('udp-extra-columns.txt'), 'udp', { endian: 'LE' });
    expect([row.localText, row.drops, row.inode]).toEqual(['127.0.0.1:5000', 48, 7674]);
  });

  it('big-endian tables', () => {
    const v4 = parseSocketTable(fixture('udp-be.txt'), 'udp', { endian: 'BE' });
    expect(v4.map((r) => [r.localText, r.remoteText, r.uid, r.drops])).toEqual([
      ['127.0.0.1:58160', '127.0.0.1:5000', 0, 0],
      ['127.0.0.1:5000', '0.0.0.0:0', 0, 48],
      ['192.168.1.2:53', '0.0.0.0:0', 101, 3],
    ]);
    const v6 = parseSocketTable(fixture('udp6-be.txt'), 'udp6', { endian: 'BE' });
    expect(v6.map((r) => [r.localText, r.remoteText])).toEqual([
      ['[::1]:5001', '[::]:0'],
      ['[::ffff:127.0.0.1]:5003', '[::]:0'],
      ['[2001:db8::1]:53', '[fe80::1]:54321'],
    ]);
  });

  it('empty file, header only, blank lines, trailing spaces', () => {
    expect(parseSocketTable('', 'udp')).toEqual([]);
    expect(parseSocketTable('\n\n', 'udp6')).toEqual([]);
    const header = fixture('udp-6.18.txt').split('\n')[0];
    expect(parseSocketTable(`${header}\n`, 'udp')).toEqual([]);
    const text = fixture('udp-6.18.txt').replace(/\n/g, '   \n\n');
    expect(parseSocketTable(text, 'udp', { endian: 'LE' })).toHaveLength(3);
  });

  it('throws ProcParseError with file and line', () => {
    const lines = fixture('udp-6.18.txt').split('\n');
    lines[2] = lines[2].replace('00000000:0000', 'zz');
    const bad = lines.join('\n');
    const err = (() => {
      try {
        parseSocketTable(bad, 'udp', { file: '/proc/1/net/udp' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ProcParseError);
    expect(err).toBeInstanceOf(RxtraceError);
    expect(err).toMatchObject({ file: '/proc/1/net/udp', line: 3, code: 'EPARSE' });
    expect((err as Error).message).toContain('/proc/1/net/udp:3');
  });

  it('rejects an IPv6 address in an IPv4 table and the reverse', () => {
    expect(() => parseSocketTable(fixture('udp6-6.18.txt'), 'udp')).toThrow(ProcParseError);
    expect(() => parseSocketTable(fixture('udp-6.18.txt'), 'udp6')).toThrow(ProcParseError);
  });

  it('rejects truncated lines and bad numbers', () => {
    const good = fixture('udp-6.18.txt').split('\n')[1];
    const tokens = good.trim().split(/\s+/);
    expect(() => parseSocketTable(tokens.slice(0, 11).join(' '), 'udp')).toThrow(/at least 12 columns/);
    const withBad = (i: number, v: string) => tokens.map((t, k) => (k === i ? v : t)).join(' ');
    expect(() => parseSocketTable(withBad(0, '12'), 'udp')).toThrow(ProcParseError);
    expect(() => parseSocketTable(withBad(4, '00000000'), 'udp')).toThrow(/tx_queue:rx_queue/);
    expect(() => parseSocketTable(withBad(9, '99999999999999999999'), 'udp')).toThrow(/inode/);
    expect(() => parseSocketTable(withBad(12, '-1'), 'udp')).toThrow(/drops/);
  });
});

describe('readSocketTable', () => {
  const root = mkdtempSync(join(tmpdir(), 'rxtrace-procnet-'));
  mkdirSync(join(root, 'net'));
  mkdirSync(join(root, '42', 'net'), { recursive: true });
  writeFileSync(join(root, 'net', 'udp'), fixture('udp-6.18.txt'));
  writeFileSync(join(root, '42', 'net', 'udp6'), fixture('udp6-6.18.txt'));
  writeFileSync(join(root, '42', 'net', 'raw'), fixture('udp6-6.18.txt')); // wrong table: must name the file
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reads /proc/net/<table>; a missing table is empty', async () => {
    expect(await readSocketTable('udp', root)).toHaveLength(3);
    expect(await readSocketTable('udp6', root)).toEqual([]);
  });

  it('reads /proc/<pid>/net/<table> for another namespace', async () => {
    expect((await readSocketTable('udp6', root, 42)).map((r) => r.inode)).toEqual([7678, 7677, 7679, 7680]);
    expect(await readSocketTable('icmp', root, 42)).toEqual([]);
  });

  it('a vanished pid is ESRCH, not an empty namespace', async () => {
    await expect(readSocketTable('udp', root, 43)).rejects.toMatchObject({ code: 'ESRCH' });
  });

  it('parse errors carry the real path', async () => {
    await expect(readSocketTable('raw', root, 42)).rejects.toMatchObject({ file: join(root, '42', 'net', 'raw'), line: 2 });
  });
});
