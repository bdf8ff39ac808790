// A cgroup of the test's own under this host's cgroup2 mount (hybrid here: /sys/fs/cgroup/unified),
// named like a container runtime's scope, with a process moved into it; removed afterwards. With
// no cgroup2 mounted (a v1-only host), one is mounted on a temporary directory and unmounted again.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The first cgroup2 mount point in /proc/mounts, if any. */
export function cgroup2MountPoint(): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, dir, type] = line.split(' ');
    if (type === 'cgroup2') return dir.replace(/\\040/g, ' ');
  }
  return undefined;
}

export interface TestCgroup {
  /** The path as /proc/PID/cgroup shows it, e.g. /rxtest.slice/docker-<64 hex>.scope */
  path: string;
  containerId: string;
  dir: string;
  add(pid: number): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` with a fresh `<mount>/rxtest.slice/docker-<64 hex>.scope`, then removes it (and
 * rxtest.slice, and any mount it made). The processes `fn` moved in must have exited by then:
 * rmdir of a populated cgroup fails (EBUSY), which is retried for a while and then thrown.
 */
export async function withTestCgroup<T>(fn: (cg: TestCgroup) => Promise<T>): Promise<T> {
  let mount = cgroup2MountPoint();
  let tempMount: string | undefined;
  if (!mount) {
    tempMount = mkdtempSync(join(tmpdir(), 'rxt-cg2-'));
    execFileSync('mount', ['-t', 'cgroup2', 'none', tempMount]);
    mount = tempMount;
  }
  const containerId = randomBytes(32).toString('hex');
  const slice = join(mount, 'rxtest.slice');
  const dir = join(slice, `docker-${containerId}.scope`);
  mkdirSync(dir, { recursive: true });
  try {
    return await fn({
      path: `/rxtest.slice/docker-${containerId}.scope`,
      containerId,
      dir,
      add: (pid) => writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`),
    });
  } finally {
    for (const d of [dir, slice]) {
      for (let i = 0; ; i++) {
        try {
          rmdirSync(d);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (d === slice && code === 'EBUSY') break; // another test's scope is in it: theirs to remove
          if (i >= 50) throw e;
          await sleep(100);
        }
      }
    }
    if (tempMount) execFileSync('umount', [tempMount]);
  }
}
