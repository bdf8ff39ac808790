// The native surface, typed in one place. The addon (native/) opens perf events, drains the
// per-CPU rings on one reader thread and hands raw batches to JS; it knows no field offsets.
// Everything here mirrors native/addon.cc: change both together.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** One tracepoint to open on every CPU. */
export interface NativeEventSpec {
  /** Tracepoint id from tracefs `events/<sys>/<name>/id` (perf attr.config). */
  id: number;
  /** Optional ftrace filter, applied with PERF_EVENT_IOC_SET_FILTER on every per-CPU fd. */
  filter?: string;
  /**
   * Count instead of copy: the reader thread delivers the samples of one drain of one ring that
   * have the same bytes at these [offset, length] ranges of the raw data as one aggregate record
   * (type RECORD_AGGREGATE below). [] keys on the tracepoint alone.
   */
  aggregateKey?: [number, number][];
}

export interface NativeSessionOptions {
  events: NativeEventSpec[];
  /** Online CPUs to open on (one ring per CPU). */
  cpus: number[];
  /** Data pages per CPU ring; a power of two. The mmap is 1 + ringPages pages. */
  ringPages: number;
  /** Wake the reader once this many bytes are in a ring (attr.watermark = 1). */
  wakeupBytes: number;
  /** Deliver a partial batch after this many ms, so a quiet trace still streams. */
  flushMs: number;
  /** Deliver a batch once it holds this many bytes. */
  batchBytes: number;
  /** Batches queued toward JS before the reader stops draining (the kernel then counts losses). */
  maxQueuedBatches: number;
  /**
   * Test hook only: the reader's aggregate path throws std::bad_alloc after this many aggregated
   * samples, to check that a failing reader ends the trace with an error (ERR_READER_FAILED).
   */
  faultAfterAggregated?: number;
}

/**
 * A batch is an ArrayBuffer of records, each:
 *   +0 u32 cpu (the ring it came from)   +4 u32 reserved (0)
 *   +8 the perf record verbatim: perf_event_header { u32 type; u16 misc; u16 size } and body.
 * Record length = 8 + header.size (always a multiple of 8). Sample type is TID|TIME|CPU|RAW:
 *   +16 u32 pid  +20 u32 tid  +24 u64 time (CLOCK_MONOTONIC ns)  +32 u32 cpu  +36 u32 res
 *   +40 u32 raw_size  +44 raw bytes (raw byte 0..1 = common_type = tracepoint id).
 * PERF_RECORD_LOST (type 2): +16 u64 id, +24 u64 lost.
 * RECORD_AGGREGATE (type 0x10001, ours): +16 u64 count, +24 u64 time of the last sample, then at
 *   +32 the first sample as a record of its own ([u32 cpu][u32 0] and the perf record).
 * When the reader thread fails (an exception such as bad_alloc: the events are disabled and the
 * thread ends instead of taking the process down), the last call is (undefined, error) with
 * error.code 'ERR_READER_FAILED'.
 */
export type BatchCallback = (batch: ArrayBuffer | undefined, error?: NativeError) => void;

export interface NativeSessionStats {
  /** PERF_RECORD_SAMPLE records copied out of the rings. */
  samples: number;
  /** Samples lost, per CPU index in `cpus` order: PERF_RECORD_LOST counts, plus `unsampled`. */
  lostPerCpu: number[];
  batches: number;
  bytes: number;
  /** Times the reader found the JS queue full and left data in the rings. */
  stalls: number;
  /** Samples counted into aggregate records (included in `samples`). */
  aggregated: number;
  /** Records skipped in the rings: corrupt or torn headers, and perf record types JS never needs (THROTTLE…). */
  otherRecords: number;
  /** 1 once the reader thread failed and stopped tracing (see BatchCallback). */
  failures: number;
  /**
   * Of the lost: hits the events counted (read() on a quiet ring, and at close) with no sample written and no loss
   * reported, so no ring size would have kept them (seen on 6.18; docs/architecture.md).
   */
  unsampled: number;
}

export interface NativePerfSession {
  /** Enable the events and start the reader thread. Resolves once the thread runs. */
  start(): Promise<void>;
  /** Stop draining (backpressure: the kernel rings fill and count losses) or resume. */
  setPaused(paused: boolean): void;
  /** Disable, final drain, join the thread, close every fd and unmap every ring. Idempotent. */
  close(): Promise<void>;
  ref(): void;
  unref(): void;
  stats(): NativeSessionStats;
}

/** Counting mode: one counting fd per (event, cpu), no ring, no samples (what `perf stat` does). */
export interface NativeCounterOptions {
  /** Tracepoint ids and their optional ftrace filters, set before the counters are enabled. */
  events: { id: number; filter?: string }[];
  cpus: number[];
}

export interface NativePerfCounters {
  /** Each event's count since the constructor enabled it, summed over the cpus, in `events` order. */
  read(): number[];
  /** Close every fd (idempotent); read() afterwards throws EBADF. */
  close(): void;
}

/**
 * NETLINK_SOCK_DIAG sockets, one per network namespace (native/sock_diag.h). Requests and
 * replies are raw netlink bytes: src/sockdiag/ encodes and decodes them.
 */
export interface NativeSockDiag {
  /**
   * Send each request (a whole netlink message; the addon sets nlmsg_seq) on the socket of
   * namespace `key`, opened on first use: in our own namespace when `nsPath` is '', else after
   * setns(nsPath) on a short-lived thread. Resolves with each request's reply messages, up to
   * and including NLMSG_DONE or NLMSG_ERROR. Runs on the libuv pool. Rejects with a NativeError
   * (syscall 'socket(NETLINK_SOCK_DIAG)', 'open(PATH)', 'setns(PATH)', 'recvmsg(…)'…).
   */
  query(key: number, nsPath: string, requests: ArrayBuffer[]): Promise<ArrayBuffer[]>;
  /** Close the socket of one namespace (an open one keeps the namespace alive). */
  forget(key: number): void;
  /** Close every socket; later queries reject with EBADF. */
  close(): void;
  openCount(): number;
}

export interface NativeAddon {
  PerfSession: new (options: NativeSessionOptions, onBatch: BatchCallback) => NativePerfSession;
  /** Opens, filters and enables the counters, or throws a NativeError with nothing left open. */
  PerfCounters: new (options: NativeCounterOptions) => NativePerfCounters;
  SockDiag: new () => NativeSockDiag;
  /** CLOCK_REALTIME − CLOCK_MONOTONIC in ns, read back to back, to turn sample times into wall time. */
  clockOffsetNs(): bigint;
  /** Number of live PerfSession objects with open fds in this environment (this thread; for leak tests). */
  openSessionCount(): number;
  /** sysconf(_SC_PAGESIZE): the kernel page size in bytes. */
  pageSize(): number;
  /**
   * A private, read-only, detached tracefs mount (fsopen/fsmount, 5.2+): its fd, to read as
   * /proc/self/fd/N/…; close it with fs.closeSync. Throws a NativeError (ENOSYS, EPERM…).
   */
  openTracefs(): number;
  /**
   * The socket inodes behind one process's fd links (`/proc/PID/fd`), read with readlinkat
   * relative to the directory (native/fd_scan.h): `fds` entries listed, one inode per socket fd.
   * Throws a NativeError: syscall `opendir`/`readdir` for the directory, `readlinkat` for a link
   * (an fd closed meanwhile is skipped, not an error).
   */
  socketFdsOf(fdDir: string): { fds: number; inodes: Float64Array };
}

/**
 * Errors thrown by the addon are plain Errors with:
 *   code: 'EACCES' | 'EPERM' | 'ENOENT' | 'EINVAL' | 'EMFILE' | 'ENODEV' | … (errno name)
 *   errno: negative errno (Node's convention), syscall: 'perf_event_open' | 'mmap' | 'ioctl(PERF_EVENT_IOC_SET_FILTER)' | …
 *   cpu?: number, eventId?: number, bytes?: number (the size an mmap asked for)
 * src/errors.ts wraps them into RxtraceError with a hint.
 */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  cpu?: number;
  eventId?: number;
  /** The size the syscall asked for (mmap: the ring, 1 + ringPages pages). */
  bytes?: number;
}

let cached: NativeAddon | undefined;
let embeddedLoader: (() => NativeAddon) | undefined;

/**
 * Where `bindings` looks, in order: a node-gyp build in the package (a source checkout, or an
 * install that had to compile), then the prebuilt binary shipped in the npm tarball
 * (prebuilds/linux-x64/rxtrace.node, linux-arm64; see scripts/ship/prebuild.sh). Tokens are
 * bindings' own ('module_root', 'bindings') or options below ('prebuild').
 */
export const ADDON_SEARCH: string[][] = [
  ['module_root', 'build', 'Release', 'bindings'],
  ['module_root', 'build', 'Debug', 'bindings'],
  ['module_root', 'prebuilds', 'prebuild', 'bindings'],
];

/**
 * The single executable (src/sea/) has no package directory: it hands over its own loader (the
 * addon asset, dlopen'ed from an unnamed file) before anything asks for the addon.
 */
export function useEmbeddedNative(load: () => NativeAddon): void {
  embeddedLoader = load;
  cached = undefined;
}

/** Load the addon once (lazily, so pure-TS parts of the library work without it). */
export function loadNative(): NativeAddon {
  if (!cached) {
    if (embeddedLoader) {
      cached = embeddedLoader();
      return cached;
    }
    const require = createRequire(import.meta.url);
    const bindings = require('bindings') as (opts: Record<string, unknown>) => unknown;
    // src/native.ts and dist/native.js both sit one level below the package root.
    const moduleRoot = fileURLToPath(new URL('..', import.meta.url));
    cached = bindings({
      bindings: 'rxtrace.node',
      module_root: moduleRoot,
      prebuild: `${process.platform}-${process.arch}`,
      try: ADDON_SEARCH,
    }) as NativeAddon;
  }
  return cached;
}

let page: number | undefined;

/**
 * The kernel page size in bytes (the unit of perf ring sizes, sockstat `mem` and udp_mem), from
 * the addon's sysconf. The one home of this fact: read once, then cached.
 */
export function getPageSize(): number {
  if (page === undefined) page = loadNative().pageSize();
  return page;
}
