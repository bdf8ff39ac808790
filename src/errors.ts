// RxtraceError: every failure a user can act on, with a string code, the errno and syscall
// behind it, and a hint. The CLI maps codes to exit codes (src/cli/exit-codes.ts).

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
  if (code === 'EACCES' || code === 'EPERM') {
    return new RxtraceError(code, `${n.syscall ?? 'perf_event_open'} on ${ev ?? 'a tracepoint'} was denied: tracing tracepoints needs root or CAP_PERFMON`, {
      ...init,
      hint: 'run rxtrace as root (sudo rxtrace …), or grant the capability: setcap cap_perfmon,cap_dac_read_search+ep "$(command -v node)"',
    });
  }
  if (code === 'EMFILE' || code === 'ENFILE') {
    return new RxtraceError(code, `out of file descriptors while opening perf events (rxtrace needs ${ctx.fdCount}: one per event per CPU, plus its own)`, {
      ...init,
      hint: 'raise the limit (ulimit -n 4096) or trace fewer events',
    });
  }
  if (code === 'ENOENT' || code === 'ENODEV') {
    return new RxtraceError('EUNKNOWNEVENT', `the kernel does not know ${ev ?? 'that tracepoint'} (${n.message})`, {
      ...init,
      hint: 'the tracepoint id is stale or the kernel lacks it; run rxtrace doctor',
    });
  }
  if (code === 'ENOMEM' || (n.syscall === 'mmap' && code === 'EPERM')) {
    return new RxtraceError(code, `cannot map the perf ring buffers: ${n.message}`, {
      ...init,
      hint: 'use a smaller ring (--ring-pages), or raise kernel.perf_event_mlock_kb',
    });
  }
  return new RxtraceError(code, n.message ?? String(e), init);
}
