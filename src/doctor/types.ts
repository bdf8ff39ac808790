// What `rxtrace doctor` reports: one DoctorCheck per check.
import { DEFAULT_EVENTS } from '../plan.js';
import type { TracefsOptions } from '../tracefs/locate.js';

export type DoctorStatus = 'ok' | 'warn' | 'fail' | 'info';

export interface DoctorCheck {
  /** What was checked: `tracefs`, `tracepoint udp:udp_fail_queue_rcv_skb`, `perf_event_open`, `/proc/net/udp`… */
  check: string;
  /** ok: works; warn: works with less (say what); fail: rxtrace cannot do this here; info: a fact, or not checked. */
  status: DoctorStatus;
  /** What was found. */
  detail: string;
  /** For warn and fail (and some info): what to do about it. */
  hint?: string;
  /** For fail: the RxtraceError code behind it (EACCES, ENOTRACEFS, EMEMLOCK…); the CLI's exit code follows it. */
  code?: string;
  /** Machine-readable facts behind `detail`. */
  data?: Record<string, unknown>;
}

export interface DoctorOptions {
  /** Where tracefs is, and whether it may be mounted for the checks (default: as the tracer does). */
  tracefs?: TracefsOptions;
  /** Where notices go (the temporary tracefs mount); default stderr, as the tracer's. */
  notice?: (message: string) => void;
  /** Open a short perf session to test permissions (default true). */
  perf?: boolean;
}

/** The tracepoints doctor looks at: the tracer's defaults, and kfree_skb (drop reasons, rx_sk). */
export const DOCTOR_EVENTS = [...DEFAULT_EVENTS, 'skb:kfree_skb'];
