// The pure pieces of `rxtrace doctor` (unit-tested): capabilities from /proc/PID/status,
// perf_event_paranoid, pointer columns, the locked-memory arithmetic, tracepoint layouts.
import type { DoctorStatus } from './types.js';
import { payloadFields, type EventSchema } from '../format/schema.js';

// Capability numbers (include/uapi/linux/capability.h).
export const CAP = {
  DAC_READ_SEARCH: 2,
  IPC_LOCK: 14,
  SYS_PTRACE: 19,
  SYS_ADMIN: 21,
  SYSLOG: 34,
  PERFMON: 38,
} as const;
export type CapName = keyof typeof CAP;

// ---------------------------------------------------------------------------------------------
// Pure pieces (unit-tested)

export interface ProcessCreds {
  uid: number;
  euid: number;
  capEff: bigint;
}

/** /proc/self/status → real and effective uid, effective capabilities. */
export function parseStatusCreds(text: string): ProcessCreds | undefined {
  const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(text);
  const cap = /^CapEff:\s+([0-9a-fA-F]+)/m.exec(text);
  if (!uid || !cap) return undefined;
  return { uid: Number(uid[1]), euid: Number(uid[2]), capEff: BigInt(`0x${cap[1]}`) };
}

export const hasCap = (creds: ProcessCreds | undefined, cap: number): boolean => creds !== undefined && ((creds.capEff >> BigInt(cap)) & 1n) === 1n;

/**
 * perfmon_capable(): CAP_PERFMON or CAP_SYS_ADMIN; at Debian's paranoid level 3 (and above)
 * perf_event_open itself checks CAP_SYS_ADMIN first, so CAP_PERFMON alone is not enough.
 */
export const perfmonCapable = (creds: ProcessCreds | undefined, paranoid?: number): boolean =>
  hasCap(creds, CAP.SYS_ADMIN) || (hasCap(creds, CAP.PERFMON) && (paranoid === undefined || paranoid < 3));

/** What a kernel.perf_event_paranoid level means for rxtrace (system-wide, raw tracepoint samples). */
export function describeParanoid(level: number): string {
  if (level <= -1) return 'no restrictions: any user may trace tracepoints system-wide';
  if (level === 0) return 'raw tracepoint samples need CAP_PERFMON (or CAP_SYS_ADMIN)';
  if (level === 1) return 'CPU-wide events and raw tracepoint samples need CAP_PERFMON (or CAP_SYS_ADMIN)';
  if (level === 2) return 'kernel events, CPU-wide events and raw tracepoint samples need CAP_PERFMON (or CAP_SYS_ADMIN)';
  return 'perf_event_open needs CAP_SYS_ADMIN; CAP_PERFMON alone is refused (a distribution patch, Debian\'s default: level above 2)';
}

/** How a `pointer` column value (%pK) reads: the real sk address, a hash, or zeros. */
export type PointerKind = 'address' | 'hashed' | 'zero' | 'unknown';

export function classifyPointer(hex: string): PointerKind {
  if (!/^[0-9a-fA-F]+$/.test(hex)) return 'unknown';
  if (/^0+$/.test(hex)) return 'zero';
  // A 32-bit kernel prints 8 digits: a hash and an address look alike there.
  if (hex.length <= 8) return 'unknown';
  const v = BigInt(`0x${hex}`);
  // 64-bit kernels: addresses are in the upper half; %p hashes are 32 bits wide.
  if (v >= 1n << 63n) return 'address';
  if (v < 1n << 32n) return 'hashed';
  return 'unknown';
}


export interface MemlockInput {
  /** CPUs traced (one ring each). */
  ncpus: number;
  /** num_online_cpus(): the kernel scales perf_event_mlock_kb by it. */
  onlineCpus: number;
  ringPages: number;
  pageSize: number;
  /** kernel.perf_event_mlock_kb. */
  mlockKb: number;
  /** RLIMIT_MEMLOCK (soft), bytes. */
  memlock: number | 'unlimited';
  ipcLock: boolean;
  paranoid: number;
}

export interface MemlockVerdict {
  /** Whether the rings can be mapped. */
  fits: boolean;
  /** Why no limit applies, when none does. */
  exempt?: 'CAP_IPC_LOCK' | 'perf_event_paranoid -1' | 'ulimit -l unlimited';
  needBytes: number;
  /** perf_event_mlock_kb × online CPUs + ulimit -l, in bytes (when a limit applies). */
  allowBytes?: number;
  /** The largest power-of-two ring (pages per CPU) that fits, when the default does not (0: none). */
  maxRingPages?: number;
}

/**
 * kernel/events/core.c, perf_mmap: each ring's data pages are charged to the user's locked_vm up
 * to perf_event_mlock_kb × num_online_cpus(), and the rest to the process's pinned_vm, which may
 * not exceed RLIMIT_MEMLOCK, unless the process has CAP_IPC_LOCK or perf_event_paranoid is -1.
 * Assumes no other perf ring of this user is mapped (they share the first allowance).
 */
export function memlockVerdict(m: MemlockInput): MemlockVerdict {
  const needPages = m.ncpus * m.ringPages;
  const needBytes = needPages * m.pageSize;
  const exempt = m.ipcLock ? 'CAP_IPC_LOCK' : m.paranoid <= -1 ? 'perf_event_paranoid -1' : m.memlock === 'unlimited' ? 'ulimit -l unlimited' : undefined;
  if (exempt) return { fits: true, exempt, needBytes };
  const userPages = Math.floor((m.mlockKb * 1024) / m.pageSize) * m.onlineCpus;
  const rlimitPages = Math.floor((m.memlock as number) / m.pageSize);
  const allowPages = userPages + rlimitPages;
  const fits = needPages <= allowPages;
  const verdict: MemlockVerdict = { fits, needBytes, allowBytes: allowPages * m.pageSize };
  if (!fits) {
    let p = 0;
    for (let q = 1; q <= m.ringPages && m.ncpus * q <= allowPages; q *= 2) p = q;
    verdict.maxRingPages = p;
  }
  return verdict;
}

export interface LayoutReport {
  status: DoctorStatus;
  /** A short name for the layout: `6.10+`, `before 6.10`, `6.11+`… */
  layout: string;
  detail: string;
  hint?: string;
}

/** What this kernel's layout of one of the doctor's tracepoints means for rxtrace. */
export function describeLayout(schema: EventSchema): LayoutReport {
  const names = new Set(payloadFields(schema).map((f) => f.name));
  const fields = payloadFields(schema).map((f) => f.name).join(', ');
  const key = `${schema.system}:${schema.name}`;
  if (key === 'udp:udp_fail_queue_rcv_skb') {
    if (names.has('dport') && names.has('daddr')) {
      return { status: 'ok', layout: '6.10+', detail: `6.10+ layout (${fields}): --port filters on dport in the kernel; drops are matched to sockets by local address and port` };
    }
    if (names.has('lport')) {
      return {
        status: 'ok',
        layout: 'before 6.10',
        detail: `pre-6.10 layout (${fields}): --port filters on lport in the kernel; no addresses, so sockets sharing a port (several addresses, netns) are told apart only by whose drops rose`,
      };
    }
    return { status: 'warn', layout: 'unknown', detail: `a layout rxtrace does not know (${fields}): it is decoded, but --port cannot be filtered in the kernel`, hint: 'please report it with the format file and uname -r' };
  }
  if (key === 'sock:sock_exceed_buf_limit') {
    const mem = schema.fields.find((f) => f.name === 'sysctl_mem');
    // long[3] from 5.19, and in the stable kernels that took the fix in 2022 (seen in 4.19.255, 5.4.207+,
    // 5.10.132+, 5.15.56+: test/fixtures/format/README.md); the offsets come from the format file anyway
    const memText = mem
      ? mem.arrayLength === 3
        ? 'sysctl_mem long[3] (5.19+, and stable kernels since mid-2022)'
        : 'sysctl_mem a pointer (before 5.19 and its 2022 stable backports; the limits come from udp_mem)'
      : 'no sysctl_mem';
    if (names.has('kind')) {
      const kinds = schema.symbols.get('kind');
      const kindText = kinds?.size ? `kind by name (${[...kinds.values()].join(', ')})` : 'kind as a number';
      return { status: 'ok', layout: '4.19+', detail: `4.19+ layout: ${kindText}, ${memText}; protocol memory, matched as "global"` };
    }
    return { status: 'ok', layout: 'before 4.19', detail: `pre-4.19 layout (${fields}): no kind, so send and receive pressure look alike; ${memText}` };
  }
  if (key === 'sock:sock_rcvqueue_full') {
    return { status: 'ok', layout: 'any', detail: `${fields}: no socket identity in the event; matched by whose drops rose (ping sockets and a few others; UDP does not use it)` };
  }
  if (key === 'skb:kfree_skb') {
    const reasons = schema.symbols.get('reason');
    const reasonText = names.has('reason')
      ? reasons?.size
        ? `${reasons.size} drop reasons by name from print fmt (--reason works)${[...reasons.values()].some((n) => n === 'SOCKET_RCVBUFF' || n === 'PROTO_MEM') ? '' : ', none of them a socket receive drop (no SOCKET_RCVBUFF or PROTO_MEM: an early set, as 5.15.58+ has)'}`
        : 'a reason field without a name table in print fmt (--reason cannot name them)'
      : 'no drop reasons (before 5.17: --reason is unavailable)';
    if (names.has('rx_sk')) {
      return { status: names.has('reason') && !reasons?.size ? 'warn' : 'ok', layout: '6.11+', detail: `6.11+ layout: rx_sk (the receiving socket, for "pointer" matching), ${reasonText}` };
    }
    if (names.has('reason')) {
      return { status: reasons?.size ? 'ok' : 'warn', layout: '5.17-6.10', detail: `5.17–6.10 layout: ${reasonText}; no rx_sk, so its drops cannot be matched to a socket ("none")` };
    }
    return { status: 'warn', layout: 'before 5.17', detail: `pre-5.17 layout (${fields}): ${reasonText}, no rx_sk`, hint: 'drop reasons need Linux 5.17 or later' };
  }
  return { status: 'ok', layout: 'any', detail: fields };
}

/** "4 MiB", "516 KiB". */
export function sizeText(bytes: number): string {
  if (bytes >= 1 << 30) return `${+(bytes / (1 << 30)).toFixed(1)} GiB`;
  if (bytes >= 1 << 20) return `${+(bytes / (1 << 20)).toFixed(1)} MiB`;
  return `${+(bytes / 1024).toFixed(1)} KiB`;
}

/** Re-exported from its home, procnet/limits.ts (doctor's API keeps it). */
export { parseLimit } from '../procnet/limits.js';
