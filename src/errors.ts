// RxtraceError: every failure a user can act on, with a string code, the errno and syscall
// behind it, and a hint. The CLI maps codes to exit codes (src/cli/exit-codes.ts).
import { readLimit } from './procnet/limits.js';
import { readSysctlNumber } from './procnet/sysctl.js';

export interface RxtraceErrorInit {
  errno?: number;
  syscall?: string;
  hint?: string;
  path?: string;
  cause?: unknown;
  /** Extra machine-readable context (event name, cpu, filter…). */
  details?: Record<string, unknown>;
}

export class RxtraceError extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly hint?: string;
  readonly path?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, init: RxtraceErrorInit = {}) {
    super(message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.name = 'RxtraceError';
    this.code = code;
    this.errno = init.errno;
    this.syscall = init.syscall;
    this.hint = init.hint;
    this.path = init.path;
    this.details = init.details;
  }
}

/**
 * What to do when tracing is denied: root, or the capabilities it takes. CAP_IPC_LOCK too,
 * because without it the default rings exceed the locked-memory limit (EMEMLOCK).
 */
export const PRIVILEGE_HINT =
  'run rxtrace as root (sudo rxtrace …), or grant CAP_PERFMON (with CAP_IPC_LOCK for the rings and CAP_DAC_READ_SEARCH for tracefs): setcap cap_perfmon,cap_ipc_lock,cap_dac_read_search+ep "$(command -v node)"';

/**
 * Debian (and some other distributions) patch in kernel.perf_event_paranoid = 3, their default:
 * perf_event_open then needs CAP_SYS_ADMIN, and CAP_PERFMON alone gets EACCES.
 */
export const PARANOID_SYS_ADMIN = 3;

/** The hint for a denied perf_event_open at this paranoid level (undefined: not known). */
export function privilegeHint(paranoid: number | undefined): string {
  if (paranoid === undefined || paranoid < PARANOID_SYS_ADMIN) return PRIVILEGE_HINT;
  return `kernel.perf_event_paranoid is ${paranoid} (a distribution patch, Debian's default), where perf_event_open needs CAP_SYS_ADMIN and CAP_PERFMON alone is refused: run rxtrace as root with CAP_SYS_ADMIN, or lower the level system-wide with sysctl kernel.perf_event_paranoid=2 (rxtrace never changes it), after which CAP_PERFMON is enough`;
}

/** kernel.perf_event_paranoid now, or undefined when it cannot be read (an integer, or nothing). */
export function readParanoid(procRoot = '/proc'): number | undefined {
  const v = readSysctlNumber('kernel.perf_event_paranoid', procRoot);
  return v !== undefined && Number.isInteger(v) ? v : undefined;
}

export function isRxtraceError(e: unknown): e is RxtraceError {
  return e instanceof RxtraceError;
}

/** Node-style system error check (fs errors, native errors). */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

interface NativeErrorShape {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  cpu?: number;
  eventId?: number;
  /** mmap: the ring's size in bytes. */
  bytes?: number;
}

/**
 * Turn an addon error into an RxtraceError with a hint a human can act on. `eventName` maps a
 * tracepoint id back to sys:name; `filterFor` gives the filter that was set on an event.
 */
export function fromNativeError(
  e: unknown,
  ctx: { eventName: (id: number) => string | undefined; filterFor: (id: number) => string | undefined; fieldsOf: (id: number) => string[]; fdCount: number },
): RxtraceError {
  const n = (e ?? {}) as NativeErrorShape;
  const code = n.code ?? 'EIO';
  const ev = n.eventId !== undefined ? ctx.eventName(n.eventId) ?? `tracepoint ${n.eventId}` : undefined;
  const init = { errno: n.errno, syscall: n.syscall, cause: e, details: { cpu: n.cpu, event: ev } };
  if (n.syscall?.includes('SET_FILTER') && n.eventId !== undefined) {
    const filter = ctx.filterFor(n.eventId);
    return new RxtraceError('EBADFILTER', `filter ${JSON.stringify(filter)} rejected by the kernel for ${ev}; fields of ${ev} are: ${ctx.fieldsOf(n.eventId).join(', ')}`, {
      ...init,
      hint: 'ftrace filters look like: dport == 5000 && rc == -12 (see Documentation/trace/events.rst, "Event filtering")',
      details: { ...init.details, filter },
    });
  }
  if (n.syscall === 'mmap') {
    // Before the EACCES/EPERM branch: mmap's EPERM is perf's locked-memory limit, not a
    // missing privilege to trace.
    return mmapError(n, code, init);
  }
  if (code === 'EACCES' || code === 'EPERM') {
    const paranoid = readParanoid();
    const needs = paranoid !== undefined && paranoid >= PARANOID_SYS_ADMIN ? `CAP_SYS_ADMIN at kernel.perf_event_paranoid ${paranoid}` : 'root or CAP_PERFMON';
    return new RxtraceError(code, `${n.syscall ?? 'perf_event_open'} on ${ev ?? 'a tracepoint'} was denied: tracing tracepoints needs ${needs}`, {
      ...init,
      hint: privilegeHint(paranoid),
      details: { ...init.details, perf_event_paranoid: paranoid },
    });
  }
  if (code === 'EMFILE' || code === 'ENFILE') {
    return new RxtraceError(code, `out of file descriptors while opening perf events (rxtrace needs ${ctx.fdCount}: one per event per CPU, plus its own)`, {
      ...init,
      hint: 'raise the limit (ulimit -n 4096) or trace fewer events',
    });
  }
  if ((code === 'EINVAL' || code === 'ENOENT') && n.syscall === 'perf_event_open' && n.eventId !== undefined) {
    // The tracepoint pmu answers EINVAL for an id no event of this kernel has: the id came
    // from another kernel's tracefs (a copied tree, a stale RXTRACE_TRACEFS).
    const name = ctx.eventName(n.eventId);
    return new RxtraceError('ENOTRACEPOINT', `tracepoint ${name ? `${name} (id ${n.eventId})` : `id ${n.eventId}`} is not known to this kernel`, {
      ...init,
      hint: 'stale RXTRACE_TRACEFS? ids must be read from this kernel\'s tracefs, e.g. /sys/kernel/tracing',
      details: { ...init.details, id: n.eventId },
    });
  }
  if (code === 'ENOENT' || code === 'ENODEV') {
    return new RxtraceError('EUNKNOWNEVENT', `the kernel does not know ${ev ?? 'that tracepoint'} (${n.message})`, {
      ...init,
      hint: 'the tracepoint id is stale or the kernel lacks it; ls /sys/kernel/tracing/events/<subsystem> lists what it has',
    });
  }
  if (code === 'ENOMEM') {
    return new RxtraceError(code, `out of memory opening perf events: ${n.message}`, {
      ...init,
      hint: 'trace fewer events or CPUs',
    });
  }
  if (code.startsWith('ERR_') && code !== 'ERR_INVALID_STATE') {
    // The addon checks its options as Node's own APIs do (ERR_INVALID_ARG_TYPE,
    // ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE): a value no tracer can take.
    return new RxtraceError('EINVAL', `invalid tracer option: ${n.message}`, {
      ...init,
      hint: 'see the TracerOptions documentation for each option\'s range',
      details: { ...init.details, nativeCode: code },
    });
  }
  return new RxtraceError(code, n.message ?? String(e), init);
}

function size(bytes: number): string {
  return bytes >= 1 << 20 ? `${+(bytes / (1 << 20)).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

/**
 * A failed ring mmap. EPERM: the ring would lock more memory than this user may without
 * CAP_IPC_LOCK, kernel.perf_event_mlock_kb (per CPU) plus RLIMIT_MEMLOCK (kernel/events/core.c,
 * perf_mmap). Anything else (ENOMEM): the kernel could not allocate the ring.
 */
function mmapError(n: NativeErrorShape, code: string, init: RxtraceErrorInit): RxtraceError {
  const bytes = n.bytes;
  if (code === 'EPERM') {
    const ring = bytes !== undefined ? `a ${size(bytes)} perf ring` : 'a perf ring';
    const mlock = readSysctlNumber('kernel.perf_event_mlock_kb');
    const ulimit = readLimit('Max locked memory');
    const limit = [
      mlock !== undefined ? `kernel.perf_event_mlock_kb ${mlock} KiB per CPU` : 'kernel.perf_event_mlock_kb per CPU',
      ulimit === undefined ? 'ulimit -l' : `ulimit -l ${ulimit === 'unlimited' ? 'unlimited' : size(ulimit)}`,
    ].join(' + ');
    return new RxtraceError('EMEMLOCK', `cannot lock ${ring}${n.cpu !== undefined ? ` for cpu ${n.cpu}` : ''} in memory: the rings would exceed the locked-memory limit of ${limit}, and this process lacks CAP_IPC_LOCK`, {
      ...init,
      hint: 'use a smaller ring with --ring-pages 64, raise ulimit -l or kernel.perf_event_mlock_kb, or grant CAP_IPC_LOCK',
      details: { ...init.details, ringBytes: bytes, perfEventMlockKb: mlock, memlock: ulimit },
    });
  }
  return new RxtraceError(code, `cannot map the perf ring buffers: ${n.message}`, {
    ...init,
    hint: 'use a smaller ring (--ring-pages), or raise kernel.perf_event_mlock_kb',
  });
}
