// Find tracefs (or mount it, as root, and say so), and hand its root to a callback.
// rxtrace only needs tracefs to read event ids and format files (perf events need no mount).
// When tracefs is not mounted, rxtrace makes a private mount: detached (fsopen/fsmount, 5.2+),
// read-only, reachable only through its fd as /proc/self/fd/N, and dropped by the kernel when
// that fd closes or the process dies. So concurrent rxtrace processes cannot unmount tracefs
// under each other or stack mounts, a SIGKILL leaves nothing behind, and the host's mount table
// never changes. Only where the kernel refuses fsopen does it fall back to mounting at
// /sys/kernel/tracing for the call and unmounting after (which two processes can race on).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, readFileSync } from 'node:fs';
import { PRIVILEGE_HINT, RxtraceError } from '../errors.js';
import { loadNative } from '../native.js';

export interface TracefsOptions {
  /** Use this directory as the tracefs root (a fixture tree, or an unusual mount). Env: RXTRACE_TRACEFS. */
  root?: string;
  /** Mount tracefs if it is missing and we are root (default true). */
  mount?: boolean;
  /** Where notices go (default: stderr). */
  notice?: (message: string) => void;
  /** For tests: the mounts table to read. */
  procMounts?: string;
}

const MOUNT_POINT = '/sys/kernel/tracing';
const CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/**
 * Where tracefs is mounted, from the mounts table: the one reader of /proc/mounts (doctor uses
 * it too). [] when the table cannot be read (an odd container).
 */
export function tracefsMountPoints(procMounts = '/proc/mounts'): string[] {
  let text: string;
  try {
    text = readFileSync(procMounts, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((t) => t[2] === 'tracefs' && t[1])
    .map((t) => unescapeMount(t[1]));
}

/** A tracefs root if one is usable now, without mounting anything. */
export function findTracefs(procMounts = '/proc/mounts'): string | undefined {
  // No mounts table: fall through to the usual paths.
  return tracefsMountPoints(procMounts).find((dir) => existsSync(`${dir}/events`)) ?? CANDIDATES.find((dir) => existsSync(`${dir}/events`));
}

function tracefsMounted(procMounts = '/proc/mounts'): boolean {
  return tracefsMountPoints(procMounts).length > 0;
}

/**
 * Why mount(8) failed, in one line: its first stderr line ("mount: /sys/kernel/tracing:
 * permission denied."), without the "dmesg(1) may have more information" line that follows,
 * or the spawn error when there is no mount(8) at all.
 */
export function mountFailure(e: unknown): string {
  const first = (e as { stderr?: Buffer | string }).stderr
    ?.toString()
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  if (first) return first.replace(/\.$/, '');
  const { code, status, signal } = e as { code?: unknown; status?: unknown; signal?: unknown };
  if (typeof code === 'string') return `mount(8) could not be run: ${code}`;
  if (typeof signal === 'string') return `mount(8) was killed by ${signal}`;
  return `mount(8) exited with status ${typeof status === 'number' ? status : 'unknown'}`;
}

/** /proc/mounts escapes spaces and tabs as octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * How `fn` got its root: `override` (the root option or RXTRACE_TRACEFS), `mounted` (the host's
 * mount), `private` (a detached mount of this process's own), `temporary` (mounted at
 * /sys/kernel/tracing for the call: the fallback where fsopen is refused).
 */
export type TracefsSource = 'override' | 'mounted' | 'private' | 'temporary';

/** A private tracefs mount's fd, or why there is none (the kernel or a seccomp policy refused it). */
function openPrivateTracefs(): { fd: number } | { why: string } {
  try {
    return { fd: loadNative().openTracefs() };
  } catch (e) {
    return { why: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Run `fn` with a tracefs root. If tracefs is not mounted and we are root, read it through a
 * private detached mount for the duration of `fn` (or, where the kernel refuses that, mount it at
 * /sys/kernel/tracing and unmount it afterwards), and say so.
 */
export async function withTracefs<T>(opts: TracefsOptions, fn: (root: string, source: TracefsSource) => Promise<T> | T): Promise<T> {
  const notice = opts.notice ?? ((m: string) => process.stderr.write(`rxtrace: ${m}\n`));
  const root = opts.root ?? process.env.RXTRACE_TRACEFS;
  if (root) {
    if (!existsSync(`${root}/events`)) {
      throw new RxtraceError('ENOTRACEFS', `${root} is not a tracefs root (no events/ directory)`, {
        path: root,
        hint: 'point RXTRACE_TRACEFS (or the tracefsRoot option) at a mounted tracefs, e.g. /sys/kernel/tracing',
      });
    }
    return fn(root, 'override');
  }
  const found = findTracefs(opts.procMounts);
  if (found) return fn(found, 'mounted');

  const isRoot = process.getuid?.() === 0;
  if (!isRoot && tracefsMounted(opts.procMounts)) {
    // Mounted, but mode 0700: existsSync hid EACCES. Say what is really missing.
    throw new RxtraceError('EACCES', 'tracefs is mounted but not readable: reading tracepoints needs root or CAP_PERFMON', {
      hint: PRIVILEGE_HINT,
    });
  }
  if (!isRoot || opts.mount === false) {
    throw new RxtraceError('ENOTRACEFS', 'tracefs is not mounted, so tracepoint formats cannot be read', {
      hint: `mount it as root: mount -t tracefs nodev ${MOUNT_POINT} (or run rxtrace as root, which mounts it for you)`,
    });
  }
  const own = openPrivateTracefs();
  if ('fd' in own) {
    notice('tracefs was not mounted: reading event formats through a private mount of it (detached and read-only: no other process sees it, and nothing is mounted on the host)');
    try {
      return await fn(`/proc/self/fd/${own.fd}`, 'private');
    } finally {
      closeSync(own.fd); // the kernel drops the mount with its last reference
    }
  }
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', MOUNT_POINT], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new RxtraceError('ENOTRACEFS', `tracefs is not mounted and mounting it at ${MOUNT_POINT} failed: ${mountFailure(e)} (a private mount failed too: ${own.why})`, {
      syscall: 'mount',
      path: MOUNT_POINT,
      hint: `mounting needs CAP_SYS_ADMIN, which containers usually drop, and a writable /sys, which containers often mount read-only; give the container CAP_SYS_ADMIN, or bind-mount the host's ${MOUNT_POINT} into it`,
      cause: e,
    });
  }
  notice(`tracefs was not mounted: mounted it at ${MOUNT_POINT} to read event formats (it is unmounted again once they are read; a private mount was refused: ${own.why})`);
  try {
    return await fn(MOUNT_POINT, 'temporary');
  } finally {
    try {
      execFileSync('umount', [MOUNT_POINT], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch {
      notice(`could not unmount ${MOUNT_POINT} (busy?); it stays mounted`);
    }
  }
}
