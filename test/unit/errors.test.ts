// fromNativeError (src/errors.ts): each addon error becomes an RxtraceError whose code maps to
// the documented exit code (docs/faults.md rows 7, 32, 40, 41), with the hint a user can act on.
import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.js';
import { fromNativeError } from '../../src/errors.js';

const ctx = {
  eventName: (id: number) => (id === 2282 ? 'udp:udp_fail_queue_rcv_skb' : undefined),
  filterFor: () => undefined,
  fieldsOf: () => ['rc', 'dport'],
  fdCount: 6,
};

/** The shape native/errors.cc gives a failed syscall. */
function sysError(code: string, errno: number, syscall: string, message: string, extra: { cpu?: number; eventId?: number; bytes?: number } = {}) {
  return Object.assign(new Error(message), { code, errno: -errno, syscall, ...extra });
}

describe('fromNativeError', () => {
  it('the addon\'s argument errors (ERR_OUT_OF_RANGE, ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE) are EINVAL: exit 2', () => {
    for (const code of ['ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']) {
      const e = fromNativeError(Object.assign(new RangeError('options.flushMs must be an integer in [1, 3600000]'), { code }), ctx);
      expect(e.code, code).toBe('EINVAL');
      expect(exitCodeFor(e), code).toBe(EXIT.USAGE);
      expect(e.message).toContain('options.flushMs');
      expect(e.details?.nativeCode).toBe(code);
    }
    // Misuse of the session (start twice) is not a bad argument.
    expect(fromNativeError(Object.assign(new Error('already started'), { code: 'ERR_INVALID_STATE' }), ctx).code).toBe('ERR_INVALID_STATE');
  });

  it('perf_event_open EINVAL/ENOENT for a tracepoint id: not known to this kernel, exit 69, with the hint', () => {
    for (const [code, errno] of [['EINVAL', 22], ['ENOENT', 2]] as const) {
      const e = fromNativeError(sysError(code, errno, 'perf_event_open', 'perf_event_open(tracepoint 2282, cpu 0): Invalid argument', { cpu: 0, eventId: 2282 }), ctx);
      expect(e.code).toBe('ENOTRACEPOINT');
      expect(exitCodeFor(e)).toBe(EXIT.UNAVAILABLE);
      expect(e.message).toBe('tracepoint udp:udp_fail_queue_rcv_skb (id 2282) is not known to this kernel');
      expect(e.hint).toMatch(/stale RXTRACE_TRACEFS\?/);
    }
    const unnamed = fromNativeError(sysError('EINVAL', 22, 'perf_event_open', 'perf_event_open(tracepoint 7, cpu 1): Invalid argument', { cpu: 1, eventId: 7 }), ctx);
    expect(unnamed.message).toBe('tracepoint id 7 is not known to this kernel');
  });

  it('mmap EPERM is the locked-memory limit, not a missing CAP_PERFMON: exit 71, ring size and limit, hint --ring-pages/ulimit -l/CAP_IPC_LOCK', () => {
    const e = fromNativeError(sysError('EPERM', 1, 'mmap', 'mmap(tracepoint 2282, cpu 0, 16781312 bytes): Operation not permitted', { cpu: 0, eventId: 2282, bytes: 16781312 }), ctx);
    expect(e.code).toBe('EMEMLOCK');
    expect(exitCodeFor(e)).toBe(EXIT.OSERR);
    expect(e.message).toMatch(/^cannot lock a 16 MiB perf ring for cpu 0 in memory: .*locked-memory limit of kernel\.perf_event_mlock_kb .* \+ ulimit -l/);
    expect(e.message).not.toMatch(/CAP_PERFMON/);
    expect(e.hint).toMatch(/--ring-pages/);
    expect(e.hint).toMatch(/ulimit -l/);
    expect(e.hint).toMatch(/CAP_IPC_LOCK/);
    expect(e.syscall).toBe('mmap');
    // The size travels as a property of the addon's error, not parsed out of its message.
    expect(e.details).toMatchObject({ ringBytes: 16781312 });
  });

  it('mmap ENOMEM: the ring cannot be allocated, exit 71, hint --ring-pages', () => {
    const e = fromNativeError(sysError('ENOMEM', 12, 'mmap', 'mmap(tracepoint 2282, cpu 0, 4294971392 bytes): Cannot allocate memory', { cpu: 0, eventId: 2282, bytes: 4294971392 }), ctx);
    expect(e.code).toBe('ENOMEM');
    expect(exitCodeFor(e)).toBe(EXIT.OSERR);
    expect(e.message).toMatch(/^cannot map the perf ring buffers: /);
    expect(e.hint).toMatch(/--ring-pages/);
  });

  it('perf_event_open EACCES/EPERM still names CAP_PERFMON: exit 77', () => {
    for (const [code, errno] of [['EACCES', 13], ['EPERM', 1]] as const) {
      const e = fromNativeError(sysError(code, errno, 'perf_event_open', 'perf_event_open(tracepoint 2282, cpu 0): Permission denied', { cpu: 0, eventId: 2282 }), ctx);
      expect(e.code).toBe(code);
      expect(exitCodeFor(e)).toBe(EXIT.NOPERM);
      expect(e.message).toMatch(/needs root or CAP_PERFMON/);
    }
  });

  it('a kernel-rejected filter is EBADFILTER before anything else', () => {
    const e = fromNativeError(sysError('EINVAL', 22, 'ioctl(PERF_EVENT_IOC_SET_FILTER)', 'ioctl(PERF_EVENT_IOC_SET_FILTER, tracepoint 2282, cpu 0): Invalid argument', { cpu: 0, eventId: 2282 }), ctx);
    expect(e.code).toBe('EBADFILTER');
    expect(exitCodeFor(e)).toBe(EXIT.USAGE);
  });
});
