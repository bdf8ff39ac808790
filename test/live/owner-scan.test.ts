// Issue 11, live: the owner scan's native fd reader (native/fd_scan.*, `socketFdsOf`) reads what
// node:fs reads (readdir + readlink of /proc/PID/fd), fails with the errno codes the scan maps to
// "vanished" and "denied", and scanSocketOwners gives the same owners through either path.
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { readdirSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { loadNative } from '../../src/native.js';
import { scanSocketOwners, socketInodeFromLink } from '../../src/procnet/owners.js';
import { describeLive } from '../helpers/live.js';
import { startSink, stopAllRxflood } from '../helpers/rxflood.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

afterEach(async () => {
  await stopAllRxflood();
});

/** Socket inodes of /proc/<pid>/fd through node:fs, one per socket fd. */
function viaFs(pid: number | 'self'): number[] {
  const out: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = socketInodeFromLink(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (inode !== undefined) out.push(inode);
    } catch {
      /* the readdir fd itself is gone by now */
    }
  }
  return out.sort((a, b) => a - b);
}

describeLive('owner scan: the native fd reader', () => {
  it('socketFdsOf reads the socket inodes node:fs reads, for this process and for a sink', async () => {
    const socks = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<dgram.Socket>((resolve) => {
            const s = dgram.createSocket('udp4');
            s.bind(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    const sink = await startSink({ bind: '127.0.0.1:0', comm: 'rxt-fdscan' });
    try {
      const addon = loadNative();
      const self = addon.socketFdsOf('/proc/self/fd');
      expect([...self.inodes].sort((a, b) => a - b)).toEqual(viaFs('self'));
      expect(self.inodes.length).toBeGreaterThanOrEqual(3);
      expect(self.fds).toBeGreaterThan(self.inodes.length);
      const other = addon.socketFdsOf(`/proc/${sink.pid}/fd`);
      expect([...other.inodes]).toContain(sink.inode);
      expect([...other.inodes].sort((a, b) => a - b)).toEqual(viaFs(sink.pid));
    } finally {
      for (const s of socks) s.close();
      await sink.stop();
    }
  });

  it('fails with the codes the scan maps: ENOENT (exited), ENOTDIR, EACCES (another user\'s process)', () => {
    const addon = loadNative();
    const gone = (() => {
      try {
        addon.socketFdsOf('/proc/2147483646/fd');
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
    })();
    expect(gone).toMatchObject({ code: 'ENOENT', syscall: 'opendir' });
    expect(gone?.message).toContain('/proc/2147483646/fd');
    expect(() => addon.socketFdsOf('/proc/self/status')).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    expect(() => (addon.socketFdsOf as unknown as (x: number) => void)(5)).toThrow(TypeError);
    // As nobody, pid 1's fds are not ours to read.
    const r = spawnSync(
      process.execPath,
      ['-e', `try { require(${JSON.stringify(`${ROOT}node_modules/bindings`)})({ bindings: 'rxtrace', module_root: ${JSON.stringify(ROOT)} }).socketFdsOf('/proc/1/fd'); console.log('read') } catch (e) { console.log(e.code, e.syscall) }`],
      { uid: 65534, gid: 65534, encoding: 'utf8' },
    );
    expect(r.stdout.trim()).toBe('EACCES opendir');
  });

  it('scanSocketOwners finds the same owners through the addon and through node:fs', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', comm: 'rxt-fdscan2' });
    try {
      const [fast, slow] = [await scanSocketOwners('/proc'), await scanSocketOwners('/proc', { native: false })];
      expect(fast.byInode.get(sink.inode)).toEqual([{ pid: sink.pid, comm: 'rxt-fdscan2' }]);
      expect(slow.byInode.get(sink.inode)).toEqual(fast.byInode.get(sink.inode));
      // Every socket of a process alive through both scans has the same owners in both.
      const mine = (s: typeof fast, pid: number) => [...s.byInode].filter(([, o]) => o.some((x) => x.pid === pid)).map(([i]) => i).sort((a, b) => a - b);
      for (const pid of [process.pid, sink.pid]) expect(mine(fast, pid)).toEqual(mine(slow, pid));
      expect(fast.netnsByPid.get(sink.pid)).toBe(slow.netnsByPid.get(sink.pid));
      expect(fast.byInode.size).toBeGreaterThan(0);
    } finally {
      await sink.stop();
    }
  });
});
