// Shared plumbing for the thin readers: read a /proc or /sys text file, map "absent" to
// undefined and any other failure to an RxtraceError with the errno code and a hint.
// Parsers never do I/O; a reader only locates, reads and hands the text to its parser.
import { readFileSync } from 'node:fs';
import { RxtraceError, errnoCode } from '../errors.js';

/** Codes that mean "this file is not there": no IPv6, another kernel, a process that exited. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ESRCH']);

/**
 * Reads a whole text file (procfs reports size 0, so this reads to EOF).
 * Returns undefined when the file does not exist; throws RxtraceError otherwise.
 *
 * Synchronously, on purpose (and so not async): /proc and /sys text is made by the kernel on
 * read and never waits for a disk, and fs.promises.readFile costs many times the CPU of
 * readFileSync per file (a FileHandle, thread-pool round trips, promises); attribution reads
 * the socket tables many times a second in a storm. Measured figures: docs/bench.md.
 */
export function readTextIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    if (code !== undefined && ABSENT.has(code)) return undefined;
    throw ioError(e, path, 'open');
  }
}

export function ioError(e: unknown, path: string, syscall: string): RxtraceError {
  const code = errnoCode(e) ?? 'EIO';
  const errno = typeof (e as { errno?: unknown })?.errno === 'number' ? Math.abs((e as { errno: number }).errno) : undefined;
  const hint =
    code === 'EACCES' || code === 'EPERM'
      ? 'run as root, or check the mount options of /proc (hidepid) and /sys'
      : code === 'ENOENT'
        ? 'this kernel does not provide the file (module not loaded, or another kernel version)'
        : undefined;
  return new RxtraceError(code, `cannot read ${path}: ${(e as Error)?.message ?? String(e)}`, {
    errno,
    syscall,
    path,
    hint,
    cause: e,
  });
}

/** `${procRoot}/net/<name>`, or `${procRoot}/<pid>/net/<name>` to see another network namespace. */
export function procNetPath(name: string, procRoot: string, pid?: number): string {
  return pid === undefined ? `${procRoot}/net/${name}` : `${procRoot}/${pid}/net/${name}`;
}

/** A record with no prototype, so keys taken from file text ("__proto__") stay plain keys. */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
