// scanSocketOwners against a fake /proc (links, a vanished pid, a zombie, an EACCES pid
// injected through the fs seam) and against the live /proc with a socket of our own.
import { createSocket } from 'node:dgram';
import * as fs from 'node:fs';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RxtraceError } from '../../../src/errors.js';
import { netnsInodeFromLink, scanSocketOwners, socketInodeFromLink, type OwnerScanFs } from '../../../src/procnet/owners.js';
import { readSocketTable } from '../../../src/procnet/sockets.js';

const errno = (code: string): Error => Object.assign(new Error(`${code}: injected`), { code });

describe('link parsers', () => {
  it('socket and netns links', () => {
    expect(socketInodeFromLink('socket:[12345]')).toBe(12345);
    expect(socketInodeFromLink('pipe:[12345]')).toBeUndefined();
    expect(socketInodeFromLink('/dev/null')).toBeUndefined();
    expect(netnsInodeFromLink('net:[4026531840]')).toBe(4026531840);
    expect(netnsInodeFromLink('mnt:[4026531840]')).toBeUndefined();
  });
});

describe('scanSocketOwners on a fake /proc', () => {
  const root = mkdtempSync(join(tmpdir(), 'rxtrace-owners-'));
  const proc = (pid: number, comm: string | undefined, netns: number | undefined, fds: Record<string, string> | undefined): void => {
    const dir = join(root, String(pid));
    mkdirSync(join(dir, 'ns'), { recursive: true });
    if (comm !== undefined) writeFileSync(join(dir, 'comm'), `${comm}\n`);
    if (netns !== undefined) symlinkSync(`net:[${netns}]`, join(dir, 'ns', 'net'));
    if (fds !== undefined) {
      mkdirSync(join(dir, 'fd'));
      for (const [fd, target] of Object.entries(fds)) symlinkSync(target, join(dir, 'fd', fd));
    }
  };
  proc(1, 'init', 4026531840, { 0: '/dev/null', 3: 'socket:[100]', 4: 'socket:[100]', 5: 'socket:[200]', 6: 'pipe:[9]' });
  proc(2, 'feed-handler', 4026532000, { 3: 'socket:[100]', 7: 'socket:[300]' });
  proc(10, 'sleep', 4026531840, { 0: '/dev/null' });
  proc(3, 'gone', 4026531840, undefined); // no fd dir: exited mid-scan
  proc(4, 'zombie', undefined, {}); // zombie: empty fd table, no ns/net
  proc(5, 'secret', 4026531840, { 3: 'socket:[500]' });
  mkdirSync(join(root, 'net')); // non-pid entries are ignored
  symlinkSync('1', join(root, 'self'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const denyPid5: OwnerScanFs = {
    readdirSync: (p) => {
      if (p === join(root, '5', 'fd')) throw errno('EACCES');
      return fs.readdirSync(p);
    },
    readlinkSync: (p) => fs.readlinkSync(p),
    readFileSync: (p, enc) => fs.readFileSync(p, enc),
  };

  it('maps inodes to owners and pids to namespaces, counting skips', async () => {
    const r = await scanSocketOwners(root, { fs: denyPid5 });
    expect([...r.byInode.entries()].sort((a, b) => a[0] - b[0])).toEqual([
      [100, [{ pid: 1, comm: 'init' }, { pid: 2, comm: 'feed-handler' }]],
      [200, [{ pid: 1, comm: 'init' }]],
      [300, [{ pid: 2, comm: 'feed-handler' }]],
    ]);
    expect([...r.netnsByPid.entries()]).toEqual([
      [1, 4026531840],
      [2, 4026532000],
      [10, 4026531840],
    ]);
    expect([...r.pidsByNetns.entries()]).toEqual([
      [4026531840, [1, 10]],
      [4026532000, [2]],
    ]);
    expect(r.skipped).toEqual({ vanished: 1, denied: 1 });
  });

  it('names the processes whose fds were denied (comm, uid from status), leaving kernel threads out', async () => {
    writeFileSync(join(root, '5', 'status'), 'Name:\tsecret\nPPid:\t1\nUid:\t1000\t1000\t1000\t1000\n');
    proc(11, 'kworker/0:1', 4026531840, {});
    writeFileSync(join(root, '11', 'status'), 'Name:\tkworker/0:1\nPPid:\t2\nUid:\t0\t0\t0\t0\n');
    const deny: OwnerScanFs = { ...denyPid5, readdirSync: (p) => (p === join(root, '11', 'fd') ? (() => { throw errno('EACCES'); })() : denyPid5.readdirSync(p)) };
    try {
      const r = await scanSocketOwners(root, { fs: deny });
      expect(r.ownersDenied).toEqual([{ pid: 5, comm: 'secret', uid: 1000 }]);
      expect(r.kernelThreadsDenied).toBe(1);
      expect(r.skipped.denied).toBe(2);
    } finally {
      rmSync(join(root, '11'), { recursive: true, force: true });
      rmSync(join(root, '5', 'status'), { force: true });
    }
  });

  it('without the injected error pid 5 is read', async () => {
    const r = await scanSocketOwners(root);
    expect(r.byInode.get(500)).toEqual([{ pid: 5, comm: 'secret' }]);
    expect(r.skipped).toEqual({ vanished: 1, denied: 0 });
  });

  it('an fd closed between readdir and readlink is skipped quietly', async () => {
    const io: OwnerScanFs = {
      ...denyPid5,
      readdirSync: (p) => fs.readdirSync(p),
      readlinkSync: (p) => {
        if (p === join(root, '1', 'fd', '5')) throw errno('ENOENT');
        return fs.readlinkSync(p);
      },
    };
    const r = await scanSocketOwners(root, { fs: io });
    expect(r.byInode.has(200)).toBe(false);
    expect(r.byInode.get(100)?.map((o) => o.pid)).toEqual([1, 2]);
    expect(r.skipped).toEqual({ vanished: 1, denied: 0 });
  });

  it('a process that exits before its comm is read is left out whole', async () => {
    const io: OwnerScanFs = {
      ...denyPid5,
      readdirSync: (p) => fs.readdirSync(p),
      readFileSync: (p, enc) => {
        if (p === join(root, '2', 'comm')) throw errno('ESRCH');
        return fs.readFileSync(p, enc);
      },
    };
    const r = await scanSocketOwners(root, { fs: io });
    expect(r.byInode.has(300)).toBe(false);
    expect(r.byInode.get(100)).toEqual([{ pid: 1, comm: 'init' }]);
    expect(r.netnsByPid.has(2)).toBe(false);
    expect(r.skipped.vanished).toBe(2);
  });

  it('a hidden namespace keeps the owners but counts the pid as denied', async () => {
    const io: OwnerScanFs = {
      ...denyPid5,
      readdirSync: (p) => fs.readdirSync(p),
      readlinkSync: (p) => {
        if (p === join(root, '2', 'ns', 'net')) throw errno('EACCES');
        return fs.readlinkSync(p);
      },
    };
    const r = await scanSocketOwners(root, { fs: io });
    expect(r.byInode.get(300)).toEqual([{ pid: 2, comm: 'feed-handler' }]);
    expect(r.netnsByPid.has(2)).toBe(false);
    expect([...r.pidsByNetns.keys()]).toEqual([4026531840]);
    expect(r.skipped).toEqual({ vanished: 1, denied: 1 });
  });

  it('other errors surface as RxtraceError', async () => {
    const io: OwnerScanFs = {
      ...denyPid5,
      readdirSync: (p) => {
        if (p === join(root, '2', 'fd')) throw errno('EIO');
        return fs.readdirSync(p);
      },
    };
    await expect(scanSocketOwners(root, { fs: io })).rejects.toBeInstanceOf(RxtraceError);
    await expect(scanSocketOwners(join(root, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('scanSocketOwners on this machine', () => {
  it('finds our own UDP socket and our network namespace', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    try {
      const port = sock.address().port;
      const row = (await readSocketTable('udp')).find((r) => r.local.port === port && r.local.addr === '127.0.0.1');
      expect(row).toBeDefined();
      const r = await scanSocketOwners();
      expect(r.byInode.get(row!.inode)?.map((o) => o.pid)).toContain(process.pid);
      const ns = netnsInodeFromLink(readlinkSync('/proc/self/ns/net'));
      expect(r.netnsByPid.get(process.pid)).toBe(ns);
      expect(r.pidsByNetns.get(ns!)).toContain(process.pid);
    } finally {
      sock.close();
    }
  });
});
