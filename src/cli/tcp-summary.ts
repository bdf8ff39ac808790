// `trace --proto tcp`: what the kernel counted while tracing that no event showed. Listen
// overflows (ListenOverflows/ListenDrops) fire no drop event: the SYN or ACK at a full accept
// queue is consumed, not freed with a reason. TcpExt before and after the trace says how many.
import { readNetstat, TCPEXT_DROP_PACKETS } from '../procnet/netstat.js';

export interface TcpCounterWatch {
  /** The summary line (without `rxtrace: `), or undefined when TcpExt cannot be read. */
  finish(kfreeEvents: number): Promise<string | undefined>;
}

export async function watchTcpCounters(procRoot = '/proc'): Promise<TcpCounterWatch> {
  const before = (await readNetstat(procRoot).catch(() => undefined))?.TcpExt;
  return {
    async finish(kfreeEvents: number) {
      const after = (await readNetstat(procRoot).catch(() => undefined))?.TcpExt;
      if (!before || !after) return undefined;
      const d = (n: string): number => Math.max(0, (after[n] ?? 0) - (before[n] ?? 0));
      const all = TCPEXT_DROP_PACKETS.reduce((s, n) => s + d(n), 0);
      const listen = d('ListenDrops');
      return (
        `TCP drops the kernel counted meanwhile (TcpExt, this network namespace): ${all} in all; ` +
        `${listen} seen only as counters: ListenDrops +${listen} (ListenOverflows +${d('ListenOverflows')}, TCPReqQFullDrop +${d('TCPReqQFullDrop')}), which fire no drop event` +
        ` — rxtrace sockets --proto tcp names the listeners whose drops rose; ` +
        `the rest (TCPRcvQDrop +${d('TCPRcvQDrop')}, TCPBacklogDrop +${d('TCPBacklogDrop')}, TCPZeroWindowDrop +${d('TCPZeroWindowDrop')}, TCPOFODrop +${d('TCPOFODrop')}) against ${kfreeEvents} kfree_skb events (system-wide, all namespaces)`
      );
    },
  };
}
