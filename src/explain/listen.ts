// A listener's accept queue: connections the handshake completed wait there until the app calls
// accept(); when sk_ack_backlog exceeds the listen() backlog (itself capped by net.core.somaxconn),
// the kernel drops the SYN or the final ACK (TcpExt ListenOverflows and ListenDrops) and the
// listener's sk_drops rises: the only per-socket trace, since no drop tracepoint fires for it.
// The listener's queue and backlog come from sock_diag (ss -lt: Recv-Q against Send-Q).
import { perSecond, roundUpPow2, sysctlFix } from './format.js';
import type { ExplainInput, Finding, Fix } from './types.js';

export function listenFindings(input: ExplainInput): Finding[] {
  const out: Finding[] = [];
  const seconds = input.interval.interval;
  const somaxconn = input.sysctl['net.core.somaxconn'];
  const tcpExt = input.interval.tcp?.TcpExt ?? {};
  const overflows = tcpExt.ListenOverflows ?? null;
  const listenDrops = tcpExt.ListenDrops ?? null;
  const listeners = input.listeners ?? [];
  for (const l of listeners) {
    if (input.keepSocket && !input.keepSocket(l)) continue;
    const capped = somaxconn !== undefined && l.backlog >= somaxconn;
    const evidence: Record<string, unknown> = {
      drops: l.drops,
      drops_per_s: seconds > 0 ? Math.round((l.drops / seconds) * 10) / 10 : null,
      accept_queue: l.accept_queue,
      backlog: l.backlog,
      ListenOverflows: overflows,
      ListenDrops: listenDrops,
      'net.core.somaxconn': somaxconn ?? null,
      seconds,
    };
    const want = roundUpPow2(Math.max(4096, l.backlog * 4));
    const fixes: Fix[] = [
      { kind: 'app', text: 'accept faster: a thread (or event loop) that only accepts and hands connections off, several acceptors, or SO_REUSEPORT listeners on several cores' },
      {
        kind: 'app',
        text: `raise the listen() backlog (now ${l.backlog}), e.g. listen(fd, ${want}); the kernel caps it at net.core.somaxconn (now ${somaxconn ?? 'unknown'})${capped ? ', so raise that too (next fix)' : ''}`,
      },
    ];
    if (capped) fixes.push(sysctlFix('net.core.somaxconn', somaxconn, roundUpPow2(Math.max(somaxconn * 2, want)), 'the backlog is already at net.core.somaxconn: raise the cap (then restart the listener, listen() reads it)'));
    const full = `accept queue ${l.accept_queue} of backlog ${l.backlog}${capped ? ' (= net.core.somaxconn)' : somaxconn !== undefined ? ` (somaxconn ${somaxconn})` : ''}`;
    out.push({
      place: 'listener',
      cause: 'listen_overflow',
      drops: l.drops,
      socket: { table: l.table, inode: l.inode, local: l.local, remote: l.table === 'tcp6' ? '[::]:0' : '0.0.0.0:0', netns: l.netns, owners: l.owners },
      evidence,
      fixes,
      summary: `the listener's accept queue overflowed: the app accepts connections too slowly for the rate or its backlog is too small; ${l.drops} drops (${perSecond(l.drops, seconds)}), ${full}; TcpExt ListenOverflows +${overflows ?? '?'}, ListenDrops +${listenDrops ?? '?'}`,
    });
  }
  // Overflows counted while no listener we could read rose (another namespace's, or one closed):
  // say so host-wide, without a socket.
  if (listeners.length === 0 && overflows !== null && overflows > 0) {
    const fixes: Fix[] = [{ kind: 'app', text: 'find the listener: ss -ltm (Recv-Q against Send-Q, skmem d), then accept faster or raise its listen() backlog' }];
    out.push({
      place: 'listener',
      cause: 'listen_overflow',
      drops: overflows,
      socket: null,
      evidence: { ListenOverflows: overflows, ListenDrops: listenDrops, 'net.core.somaxconn': somaxconn ?? null, seconds },
      fixes,
      summary: `a listener's accept queue overflowed ${overflows} times (TcpExt ListenOverflows) but no listener's drops could be read`,
    });
  }
  return out;
}
