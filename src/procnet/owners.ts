// Socket inode → owning processes, from /proc/PID/fd links (`socket:[INODE]`), and each
// process's network namespace (/proc/PID/ns/net → `net:[4026531840]`), so that a socket
// table can be read per namespace through one of its pids (/proc/PID/net/udp).
//
// Why synchronous syscalls in time slices: the work is kernel-bound, and fs.promises adds a
// libuv round trip per link, which made a large scan two to three times slower (figures:
// docs/bench.md). Yielding to the event loop every `sliceMs` keeps trace batches flowing
// while a large scan runs.
import * as fs from 'node:fs';
import { errnoCode } from '../errors.js';
import type { CgroupIdentity } from './cgroup.js';
import { ioError } from './read.js';
import { loadNative } from '../native.js';

/** cgroup keys are filled by attribute/owner-cgroups.ts for sockets that are shown, not by the scan. */
export interface Owner extends CgroupIdentity {
  pid: number;
  /** /proc/PID/comm without its newline (at most 15 bytes: TASK_COMM_LEN; may hold spaces). */
  comm: string;
}

export interface SocketOwners {
  /** Socket inode → one Owner per process holding an fd on it, by ascending pid. */
  byInode: Map<number, Owner[]>;
  /** pid → inode of its network namespace, for every process scanned. */
  netnsByPid: Map<number, number>;
  /** Network namespace inode → its pids, ascending. */
  pidsByNetns: Map<number, number[]>;
  /**
   * Processes left out: `vanished` exited during the scan (ENOENT, ESRCH), `denied` could not
   * be read (EACCES, EPERM: not root, or /proc mounted with hidepid). Their sockets have no
   * owner in this scan, except when only /proc/PID/ns/net was denied: then the owners are
   * kept, the pid is absent from the netns maps, and it still counts as denied. Exiting
   * zombies hold no fds and are not counted.
   */
  skipped: { vanished: number; denied: number };
  /**
   * Processes whose fds could not be read (EACCES, EPERM): the owners of their sockets are
   * unknown. Kernel threads are left out (they hold no fds, so nothing is unknown there); they
   * still count in `skipped.denied`.
   */
  ownersDenied: DeniedProcess[];
  /** Kernel threads among the denied (counted in skipped.denied, left out of ownersDenied). */
  kernelThreadsDenied: number;
}

export interface DeniedProcess {
  pid: number;
  /** From /proc/PID/status (readable when fd is not); '' if that too was hidden. */
  comm: string;
  /** Real uid from /proc/PID/status, when readable: set beside a socket's uid column. */
  uid?: number;
}

/** The synchronous fs calls the scan makes; tests pass fakes to produce EACCES as root. */
export interface OwnerScanFs {
  readdirSync(path: string): string[];
  readlinkSync(path: string): string;
  readFileSync(path: string, encoding: 'utf8'): string;
}

export interface ScanOptions {
  /** Yield to the event loop after this many ms of scanning (default 4). */
  sliceMs?: number;
  fs?: OwnerScanFs;
  /** Look only at these processes (candidate owners), not every /proc/[0-9]* entry. */
  pids?: readonly number[];
  /** false: namespaces only, no fd links (`sockets --no-owners`: a cheap pass at any fd count). */
  fds?: boolean;
  /** false: read the fd links with node:fs even on the real /proc (tests compare the two). */
  native?: boolean;
}

/** The addon's fd reader, or undefined when the addon cannot be loaded (the node:fs path still works). */
function nativeFdReader(): ((fdDir: string) => { fds: number; inodes: Float64Array }) | undefined {
  try {
    const addon = loadNative();
    return typeof addon.socketFdsOf === 'function' ? (d) => addon.socketFdsOf(d) : undefined;
  } catch {
    return undefined;
  }
}

const VANISHED = new Set(['ENOENT', 'ESRCH']);
const DENIED = new Set(['EACCES', 'EPERM']);
const SOCKET_LINK = /^socket:\[([0-9]+)\]$/;
const NETNS_LINK = /^net:\[([0-9]+)\]$/;

/** Thrown inside the scan to skip one process; never escapes. */
class Skip {
  constructor(readonly kind: 'vanished' | 'denied' | 'zombie') {}
}

/** Who a process with unreadable fds is, from /proc/PID/status; undefined for a kernel thread (kthreadd, pid 2, and its children). */
function deniedProcess(io: OwnerScanFs, dir: string, pid: number): DeniedProcess | undefined {
  let text = '';
  try {
    text = io.readFileSync(`${dir}/status`, 'utf8');
  } catch {
    // hidden too (hidepid=2): all we know is the pid
  }
  const ppid = /^PPid:\s+(\d+)/m.exec(text)?.[1];
  if (pid === 2 || ppid === '2') return undefined;
  const uid = /^Uid:\s+(\d+)/m.exec(text)?.[1];
  return { pid, comm: /^Name:\s+(.*)$/m.exec(text)?.[1] ?? '', uid: uid === undefined ? undefined : Number(uid) };
}

/** Parses `socket:[12345]` → 12345; undefined for any other link (files, pipes, anon inodes). */
export function socketInodeFromLink(link: string): number | undefined {
  const m = SOCKET_LINK.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** Parses `net:[4026531840]` → 4026531840. */
export function netnsInodeFromLink(link: string): number | undefined {
  const m = NETNS_LINK.exec(link);
  return m ? Number(m[1]) : undefined;
}

/**
 * One pass over /proc/[0-9]*: socket owners, and the network namespace of every process.
 * Processes that exit or cannot be read mid-scan are counted in `skipped`, not fatal; any
 * other errno is thrown as RxtraceError. Threads sharing a file table are covered by their
 * process; a task with a private fd table (clone without CLONE_FILES) is not.
 */
export async function scanSocketOwners(procRoot = '/proc', opts: ScanOptions = {}): Promise<SocketOwners> {
  const io: OwnerScanFs = opts.fs ?? (fs as unknown as OwnerScanFs);
  const sliceMs = opts.sliceMs ?? 4;
  const result: SocketOwners = {
    byInode: new Map(),
    netnsByPid: new Map(),
    pidsByNetns: new Map(),
    skipped: { vanished: 0, denied: 0 },
    ownersDenied: [],
    kernelThreadsDenied: 0,
  };
  let pids: number[];
  if (opts.pids) pids = [...opts.pids].sort((a, b) => a - b);
  else {
    let names: string[];
    try {
      names = io.readdirSync(procRoot);
    } catch (e) {
      throw ioError(e, procRoot, 'opendir');
    }
    pids = names.filter((n) => /^[0-9]+$/.test(n)).map(Number).sort((a, b) => a - b);
  }
  const readFds = opts.fds !== false;
  // The real /proc through the addon (readlinkat per fd, relative to the open fd directory:
  // about half the CPU of readlinkSync per link); fakes and fixture roots through `io`.
  const fast = opts.fs === undefined && procRoot === '/proc' && opts.native !== false ? nativeFdReader() : undefined;

  // Any errno other than "gone" or "denied" is a real failure (or a bug) and must surface.
  const attempt = <T>(path: string, syscall: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      const code = errnoCode(e);
      if (code !== undefined && VANISHED.has(code)) throw new Skip('vanished');
      if (code !== undefined && DENIED.has(code)) throw new Skip('denied');
      throw ioError(e, path, syscall);
    }
  };

  let sliceStart = performance.now();
  for (const pid of pids) {
    const dir = `${procRoot}/${pid}`;
    try {
      const inodes = new Set<number>();
      let fdCount = 0;
      if (readFds && fast) {
        const got = attempt(`${dir}/fd`, 'opendir', () => fast(`${dir}/fd`));
        fdCount = got.fds;
        for (const inode of got.inodes) inodes.add(inode);
      } else if (readFds) {
        const fds = attempt(`${dir}/fd`, 'opendir', () => io.readdirSync(`${dir}/fd`));
        fdCount = fds.length;
        for (const fd of fds) {
          let link: string;
          try {
            link = attempt(`${dir}/fd/${fd}`, 'readlink', () => io.readlinkSync(`${dir}/fd/${fd}`));
          } catch (e) {
            if (e instanceof Skip && e.kind === 'vanished') continue; // this fd was closed meanwhile
            throw e;
          }
          const inode = socketInodeFromLink(link);
          if (inode !== undefined) inodes.add(inode);
        }
      }
      let netns: number | undefined;
      let nsDenied = false;
      try {
        const link = attempt(`${dir}/ns/net`, 'readlink', () => io.readlinkSync(`${dir}/ns/net`));
        netns = netnsInodeFromLink(link);
      } catch (e) {
        // A zombie has an empty fd table and no namespaces: nothing is lost by leaving it out.
        if (e instanceof Skip && e.kind === 'vanished' && (fdCount === 0 || !readFds)) throw new Skip('zombie');
        // The owners are still right when only the namespace is hidden (seen as root for pid 1
        // in a sandbox): keep them, count the process as denied.
        if (e instanceof Skip && e.kind === 'denied') nsDenied = true;
        else throw e;
      }
      let comm = '';
      if (inodes.size > 0) {
        comm = attempt(`${dir}/comm`, 'open', () => io.readFileSync(`${dir}/comm`, 'utf8')).replace(/\n$/, '');
      }
      // Commit only once every read of this process succeeded.
      for (const inode of inodes) {
        const owners = result.byInode.get(inode);
        if (owners) owners.push({ pid, comm });
        else result.byInode.set(inode, [{ pid, comm }]);
      }
      if (netns !== undefined) {
        result.netnsByPid.set(pid, netns);
        const list = result.pidsByNetns.get(netns);
        if (list) list.push(pid);
        else result.pidsByNetns.set(netns, [pid]);
      }
      if (nsDenied) result.skipped.denied++;
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
      if (e.kind !== 'zombie') result.skipped[e.kind]++;
      if (e.kind === 'denied') {
        const d = deniedProcess(io, dir, pid);
        if (d) result.ownersDenied.push(d);
        else result.kernelThreadsDenied++;
      }
    }
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  return result;
}
