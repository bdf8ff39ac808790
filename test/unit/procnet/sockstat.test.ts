// sockstat/sockstat6 (`PROTO: key value …`), udp_mem/tcp_mem and the page size they count in.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { getPageSize } from '../../../src/native.js';
import { parseMemLimits, parseSockstat, readProtoMem, readSockstat } from '../../../src/procnet/sockstat.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

describe('parseSockstat', () => {
  it('sockstat and sockstat6 (6.18)', () => {
    expect(parseSockstat(fixture('sockstat-6.18.txt'))).toEqual({
      sockets: { used: 12 },
      TCP: { inuse: 0, orphan: 0, tw: 0, alloc: 1, mem: 26 },
      UDP: { inuse: 3, mem: 0 },
      UDPLITE: { inuse: 0 },
      RAW: { inuse: 2 },
      FRAG: { inuse: 0, memory: 0 },
    });
    expect(parseSockstat(fixture('sockstat6-6.18.txt')).UDP6).toEqual({ inuse: 4 });
  });

  it('rejects unpaired keys and junk', () => {
    expect(() => parseSockstat('UDP: inuse 3 mem\n')).toThrow(/pairs/);
    expect(() => parseSockstat('UDP inuse 3\n')).toThrow(ProcParseError);
    expect(() => parseSockstat('UDP: inuse x\n')).toThrow(ProcParseError);
  });
});

describe('udp_mem / tcp_mem', () => {
  it('parses three integers', () => {
    expect(parseMemLimits('575799\t767733\t1151598\n')).toEqual([575799, 767733, 1151598]);
    expect(() => parseMemLimits('1 2\n')).toThrow(ProcParseError);
    expect(() => parseMemLimits('')).toThrow(ProcParseError);
  });

  const root = mkdtempSync(join(tmpdir(), 'rxtrace-sockstat-'));
  mkdirSync(join(root, 'net'));
  mkdirSync(join(root, 'sys', 'net', 'ipv4'), { recursive: true });
  writeFileSync(join(root, 'net', 'sockstat'), fixture('sockstat-6.18.txt'));
  writeFileSync(join(root, 'sys', 'net', 'ipv4', 'udp_mem'), '2\t2\t2\n');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('readProtoMem omits an absent file (non-initial netns)', async () => {
    expect(await readProtoMem(root)).toEqual({ udp_mem: [2, 2, 2] });
  });

  it('readSockstat merges sockstat6 when present', async () => {
    const s = await readSockstat(root);
    expect(s.UDP).toEqual({ inuse: 3, mem: 0 });
    expect(s.UDP6).toBeUndefined();
  });
});

describe('getPageSize (the addon\'s sysconf)', () => {
  it('matches getconf PAGESIZE', () => {
    const want = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
    expect(getPageSize()).toBe(want);
    expect(getPageSize()).toBe(want); // cached
  });
});
