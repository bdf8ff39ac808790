// Exit codes, documented in the README. sysexits.h values where one fits.
import { RxtraceError } from '../errors.js';

export const EXIT = {
  OK: 0,
  /** An unexpected internal failure (a bug): the stack trace is printed. */
  INTERNAL: 1,
  /** Bad usage: unknown option, event, reason, bad filter or port. */
  USAGE: 2,
  /** Tracing is not available here: no tracefs, tracepoint missing, malformed format file. */
  UNAVAILABLE: 69,
  /** An operating-system resource failed: out of fds, mmap, memory. */
  OSERR: 71,
  /** A listen address is in use or cannot be bound (serve). */
  CANTBIND: 75,
  /** Permission: not root and no CAP_PERFMON. */
  NOPERM: 77,
  /** Interrupted by a second stop signal (SIGINT, SIGTERM, SIGHUP) during shutdown. */
  INTERRUPTED: 130,
} as const;

const BY_CODE: Record<string, number> = {
  EUSAGE: EXIT.USAGE,
  EUNKNOWNEVENT: EXIT.USAGE,
  EBADFILTER: EXIT.USAGE,
  EBADREASON: EXIT.USAGE,
  EBADPORT: EXIT.USAGE,
  EBADLISTEN: EXIT.USAGE,
  EINVAL: EXIT.USAGE,
  ENOTRACEFS: EXIT.UNAVAILABLE,
  ENOTRACEPOINT: EXIT.UNAVAILABLE,
  EFORMAT: EXIT.UNAVAILABLE,
  EPARSE: EXIT.UNAVAILABLE,
  ESRCH: EXIT.OSERR,
  ENOENT: EXIT.UNAVAILABLE,
  ENODEV: EXIT.UNAVAILABLE,
  EMFILE: EXIT.OSERR,
  ENFILE: EXIT.OSERR,
  ENOMEM: EXIT.OSERR,
  EMEMLOCK: EXIT.OSERR,
  EIO: EXIT.OSERR,
  EADDRINUSE: EXIT.CANTBIND,
  EADDRNOTAVAIL: EXIT.CANTBIND,
  EACCES: EXIT.NOPERM,
  EPERM: EXIT.NOPERM,
};

export function exitCodeFor(e: unknown): number {
  if (e instanceof RxtraceError) return BY_CODE[e.code] ?? EXIT.OSERR;
  return EXIT.INTERNAL;
}

/** One clear line for a user error; the stack only for a bug. */
export function reportError(e: unknown, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  const code = exitCodeFor(e);
  if (e instanceof RxtraceError) {
    write(`rxtrace: ${e.message}${e.hint ? ` (${e.hint})` : ''}\n`);
  } else {
    write(`rxtrace: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  return code;
}
