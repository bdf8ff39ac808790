// The socket's own buffer: sk_rmem_alloc reached sk_rcvbuf, so the kernel dropped what came
// next (RcvbufErrors, udp_fail_queue_rcv_skb rc -12, sock_rcvqueue_full). The app reads too
// slowly for the rate, or its buffer is too small for the bursts. The socket's size comes from
// sock_diag (ss skmem rb): equal to net.core.rmem_default means the app never set SO_RCVBUF;
// SO_RCVBUF asks for N and gets 2N, capped at 2 × net.core.rmem_max.
import { bytes, perSecond, roundUpPow2, sysctlFix } from './format.js';
import type { ExplainInput, Finding, Fix } from './types.js';

/** Below this a suggested buffer is not worth a change: 4 MiB holds ~2,800 full-size datagrams. */
const MIN_SUGGESTED = 4 << 20;

/** Whether a socket's drops in the window were the protocol's memory, not its own buffer. */
export function socketDropsAreProtoMem(input: ExplainInput, inode: number, netns: number | null): boolean {
  const t = input.traced?.sockets[String(inode)];
  if (t && t.rcvbuf + t.protomem > 0) return t.protomem > t.rcvbuf;
  // No udp event said: 6.18 fires none on udp_mem drops, and counts them in neither MemErrors nor
  // RcvbufErrors (measured: udp_mem "2 2 2", 8 sinks, their drops +20,000, both counters +0).
  // UDP went over udp_mem in the window (sock_exceed_buf_limit) while this socket's queue sits
  // well below its own buffer: its drops were the protocol's memory.
  const exceeded = Object.entries(input.traced?.exceed ?? {}).some(([name, n]) => name.startsWith('UDP') && n > 0);
  const mem = input.skmem[String(inode)];
  if (exceeded && mem && mem.rmem_alloc < mem.rcvbuf / 2) return true;
  // Else the namespace's counters decide, where they can (kernels that count MemErrors for it).
  const r = input.interval.reconcile.find((x) => x.netns === netns) ?? input.interval.reconcile.find((x) => x.self);
  return !!r && (r.MemErrors ?? 0) > 0 && (r.RcvbufErrors ?? 0) === 0;
}

export function socketFindings(input: ExplainInput): Finding[] {
  const out: Finding[] = [];
  const seconds = input.interval.interval;
  const rmemDefault = input.sysctl['net.core.rmem_default'];
  const rmemMax = input.sysctl['net.core.rmem_max'];
  for (const s of input.interval.delta.sockets) {
    if (input.keepSocket && !input.keepSocket(s)) continue;
    // TCP sockets' drops are not their receive buffer's (a listener's are listen.ts's).
    if (s.table === 'tcp' || s.table === 'tcp6') continue;
    if ((s.table === 'udp' || s.table === 'udp6') && socketDropsAreProtoMem(input, s.inode, s.netns)) continue;
    const gauge = input.interval.gauges.sockets[String(s.inode)];
    const mem = input.skmem[String(s.inode)];
    const rcvbuf = mem?.rcvbuf;
    const evidence: Record<string, unknown> = {
      drops: s.drops,
      drops_per_s: seconds > 0 ? Math.round((s.drops / seconds) * 10) / 10 : null,
      rx_queue: gauge?.rx_queue ?? null,
      rcvbuf: rcvbuf ?? null,
      'net.core.rmem_default': rmemDefault ?? null,
      'net.core.rmem_max': rmemMax ?? null,
      seconds,
    };
    const traced = input.traced?.sockets[String(s.inode)];
    if (traced) evidence.traced = traced;
    // What the app asked for: the kernel doubles SO_RCVBUF, so rcvbuf/2 is the value passed.
    let setBy: string;
    if (rcvbuf === undefined) setBy = 'its size is unknown (ss could not be asked)';
    else if (rcvbuf === rmemDefault) {
      setBy = `= net.core.rmem_default; the app never set SO_RCVBUF`;
      evidence.so_rcvbuf = null;
    } else {
      evidence.so_rcvbuf = Math.floor(rcvbuf / 2);
      setBy = `the app set SO_RCVBUF to ~${Math.floor(rcvbuf / 2)} (the kernel doubles it)${rmemDefault !== undefined && rcvbuf < rmemDefault ? `, below the default ${rmemDefault}` : ''}`;
    }
    const want = roundUpPow2(Math.max(MIN_SUGGESTED, (rcvbuf ?? rmemDefault ?? 0) * 4));
    // setsockopt(SO_RCVBUF, N) gives min(N, rmem_max) × 2; to get `want` bytes, ask want/2.
    const ask = want / 2;
    const fixes: Fix[] = [];
    const capped = rmemMax !== undefined && ask > rmemMax;
    fixes.push({
      kind: 'setsockopt',
      option: 'SO_RCVBUF',
      value: ask,
      text: `raise the buffer in the app: setsockopt(fd, SOL_SOCKET, SO_RCVBUF, ${ask}) gives ${bytes(want)} bytes${rmemMax !== undefined ? `; net.core.rmem_max (now ${rmemMax}) caps the value passed${capped ? ', so raise it first (next fix)' : ''}` : ''}`,
    });
    if (capped) fixes.push(sysctlFix('net.core.rmem_max', rmemMax, ask, 'let SO_RCVBUF go that high'));
    fixes.push({ kind: 'app', text: 'read faster: a thread per socket that only reads, recvmmsg() for batches, or SO_REUSEPORT sockets read on several cores' });
    if (rcvbuf !== undefined && rcvbuf === rmemDefault) {
      fixes.push(sysctlFix('net.core.rmem_default', rmemDefault, want, 'or, without changing the app, raise the default for every new socket (it applies to sockets opened afterwards, restart the app)'));
    }
    const rate = perSecond(s.drops, seconds);
    const queue = gauge?.rx_queue;
    const where = rcvbuf !== undefined ? `rx_queue ${queue ?? '?'} of rcvbuf ${rcvbuf} (${setBy})` : `rx_queue ${queue ?? '?'}, ${setBy}`;
    out.push({
      place: 'socket',
      cause: 'socket_rcvbuf',
      drops: s.drops,
      socket: { table: s.table, inode: s.inode, local: s.local, remote: s.remote, netns: s.netns, owners: s.owners },
      evidence,
      fixes,
      summary: `the socket's receive buffer is full: the app reads too slowly or its buffer is too small; ${s.drops} drops (${rate}), ${where}`,
    });
  }
  return out;
}
