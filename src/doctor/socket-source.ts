// The doctor check for the socket source: which tables are read through NETLINK_SOCK_DIAG and
// which from /proc, and why (the same probe the tracer makes, without the stderr line).
import { RxtraceError } from '../errors.js';
import { SOURCE_ENV, openSocketSource } from '../sockdiag/select.js';
import type { DoctorCheck } from './types.js';

export async function socketSourceCheck(): Promise<DoctorCheck> {
  try {
    const { diag, choice } = await openSocketSource({ quiet: true });
    diag?.close();
    const by = (k: string) => Object.entries(choice.tables).filter(([, v]) => v === k).map(([t]) => t);
    const viaDiag = by('sock_diag');
    const viaProc = by('proc');
    const fellBack = viaProc.filter((t) => !t.startsWith('icmp'));
    const reasons = [...new Set(fellBack.map((t) => choice.why[t as keyof typeof choice.why]))];
    const detail =
      (viaDiag.length ? `sock_diag (netlink, filtered by port in the kernel) for ${viaDiag.join(', ')}; ` : '') +
      `/proc/net for ${viaProc.join(', ')}` +
      (fellBack.length ? ` (${reasons.join('; ')})` : ' (ping sockets have no sock_diag handler; their tables are small)');
    const forced = reasons.some((r) => r.includes(`${SOURCE_ENV}=proc`));
    return {
      check: 'socket source',
      status: fellBack.length && !forced ? 'warn' : 'ok',
      detail,
      hint: fellBack.length && !forced ? 'with many sockets /proc/net/udp is slow (quadratic): load inet_diag, udp_diag and raw_diag (modprobe), or run as root' : undefined,
      data: { tables: choice.tables, why: choice.why },
    };
  } catch (e) {
    const err = e instanceof RxtraceError ? e : new RxtraceError('EIO', String(e));
    return { check: 'socket source', status: 'fail', code: err.code, detail: err.message, hint: err.hint };
  }
}
