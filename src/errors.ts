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
