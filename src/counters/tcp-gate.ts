// TcpGate: between two ticks of stats/top/serve, ask a namespace's TCP sockets again only when
// TCP did something there. A sock_diag TCP dump walks the kernel's global established hash for
// each namespace and family (51 namespaces: 102 walks per tick, whatever is in them).
//
// The signature is the namespace's Tcp InSegs and InErrs (/proc/PID/net/snmp, already read for
// the funnel). tcp_v4_rcv/tcp_v6_rcv count every segment addressed to the host in InSegs before
// looking for its socket, and a TCP socket's sk_drops rises only while a received segment is
// handled (backlog, receive queue, out-of-order queue, listener overflow). What a carried row
// can miss is what changes without a segment: an application's read (rx_queue) or accept()
// (a listener's accept queue). So rows are asked again at least every `maxAgeMs`, or every 20 ×
// what asking every namespace costs when that is longer. Not for attribution: pollers only.
import { nowMonoNs } from '../decode/batch.js';
import type { SnmpCounters } from '../procnet/snmp.js';
import type { TcpCarry, TcpSocketRow } from '../tcp-sockets.js';

interface Asked {
  sig: string;
  rows: TcpSocketRow[];
  atNs: number;
  costNs: number;
}

export class TcpGate {
  private readonly last = new Map<number, Asked>();
  private totalCostNs = 0;
  readonly stats = { asked: 0, carried: 0 };

  constructor(private readonly maxAgeMs: number) {}

  /** Tcp InSegs/InErrs of a namespace's snmp; undefined when it has no Tcp line. */
  static signature(snmp: SnmpCounters | undefined): string | undefined {
    const t = snmp?.Tcp;
    return t?.InSegs === undefined ? undefined : `${t.InSegs}/${t.InErrs ?? '-'}`;
  }

  /** A carrier for one read, given each namespace's signature read at its start. */
  forRead(sigs: ReadonlyMap<number, string | undefined>): TcpCarry {
    return {
      carry: (ns) => {
        const a = this.last.get(ns);
        const sig = sigs.get(ns);
        if (!a || sig === undefined || a.sig !== sig) return undefined;
        if (nowMonoNs() - a.atNs > Math.max(this.maxAgeMs * 1e6, 20 * this.totalCostNs)) return undefined;
        this.stats.carried++;
        return a.rows;
      },
      asked: (ns, rows, costNs) => {
        this.stats.asked++;
        this.totalCostNs -= this.last.get(ns)?.costNs ?? 0;
        const sig = sigs.get(ns);
        if (sig === undefined) {
          this.last.delete(ns);
          return;
        }
        this.totalCostNs += costNs;
        this.last.set(ns, { sig, rows, atNs: nowMonoNs() - costNs, costNs });
      },
    };
  }

  /** Forget namespaces not in `live`. */
  retain(live: ReadonlySet<number>): void {
    for (const [ns, a] of [...this.last]) {
      if (live.has(ns)) continue;
      this.totalCostNs -= a.costNs;
      this.last.delete(ns);
    }
  }
}
