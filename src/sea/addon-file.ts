// The single executable carries the addon as an asset; dlopen needs a file. We give it one with
// no name: an O_TMPFILE file (Linux 3.11+, tmpfs/ext4/xfs/btrfs), written and then opened by
// the loader as /proc/self/fd/N. Nothing appears in any directory, so there is no path for
// another user to predict or race (this runs as root), and nothing is left behind even after
// SIGKILL. It is the memfd_create idea without a syscall Node lacks. Where O_TMPFILE is not
// supported, a 0700 mkdtemp directory holds the file only until it is opened, then both go.
// A noexec mount refuses the mapping; then the next directory is tried.
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RxtraceError } from '../errors.js';

/** __O_TMPFILE, the same value on x86-64 and arm64 (O_DIRECTORY is not: Node has it per arch). */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;

export interface AddonFile {
  /** /proc/self/fd/N: valid for the whole process (the fd is never closed), workers included. */
  path: string;
  fd: number;
}

function unnamedIn(dir: string, bytes: Uint8Array): number {
  let fd: number;
  try {
    fd = openSync(dir, O_TMPFILE | constants.O_RDWR, 0o700);
  } catch {
    // No O_TMPFILE on this filesystem: a private directory, the file opened, then both removed.
    const priv = mkdtempSync(join(dir, 'rxtrace-'));
    try {
      const file = join(priv, 'rxtrace.node');
      const wfd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o700);
      try {
        writeAll(wfd, bytes);
      } finally {
        closeSync(wfd);
      }
      return openSync(file, constants.O_RDONLY);
    } finally {
      rmSync(priv, { recursive: true, force: true });
    }
  }
  writeAll(fd, bytes);
  return fd;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

/**
 * Write `bytes` to an unnamed file and load it with `load(path)`, trying TMPDIR (or /tmp),
 * /dev/shm, /var/tmp and the executable's directory until one is writable and not noexec.
 */
export function loadFromUnnamedFile<T>(bytes: Uint8Array, load: (path: string) => T): { file: AddonFile; value: T } {
  const dirs = [...new Set([tmpdir(), '/dev/shm', '/var/tmp', dirname(process.execPath)])];
  const failures: string[] = [];
  for (const dir of dirs) {
    let fd: number;
    try {
      fd = unnamedIn(dir, bytes);
    } catch (e) {
      failures.push(`${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      continue;
    }
    const path = `/proc/self/fd/${fd}`;
    try {
      return { file: { path, fd }, value: load(path) };
    } catch (e) {
      closeSync(fd);
      failures.push(`${dir}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new RxtraceError('EADDONLOAD', `cannot load the embedded addon (${failures.join('; ')})`, {
    hint: 'set TMPDIR to a writable directory on a filesystem mounted without noexec',
  });
}
