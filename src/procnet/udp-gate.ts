// UdpGate: ask a namespace's UDP tables again only when its UDP error counters moved.
//
// Tracepoints carry no network namespace, so a read after a drop must cover every namespace.
// A sock_diag UDP dump, even scoped to one port, walks the kernel's one global UDP hash (every
// namespace's sockets) and keeps its own namespace's: with 100,000 sockets over 50 namespaces a
// read costs 51 walks of 100,000 sockets. Most of those namespaces dropped nothing.
//
// Why carrying rows over is exact: in the kernel, every increment of a UDP socket's sk_drops
// comes with an increment of UDP_MIB_INERRORS in the socket's own namespace (udp.c: the drop
// label of udp_queue_rcv_one_skb, __udp_enqueue_schedule_skb's ENOMEM path through
// __udp_queue_rcv_skb, checksum errors at recvmsg and first_packet_length, multicast clone
// failures; the same in udp6 with the Udp6/UdpLite6 MIBs), and both happen before the drop's
// tracepoint fires. So when a namespace's InErrors (v4 and v6, UDP and UDP-Lite) read at the
// start of a read equal those read at the start of the read that last asked it, none of its UDP
// sockets dropped in between: the rows asked then still hold every drops counter, and the
// sockets it lacks (opened since) dropped nothing. They may show an old rx_queue, and a socket
// closed since: for attribution that can only make a match ambiguous, never name a socket that
// did not drop. Ping and raw sockets have no such counter and are always asked (their tables are
// small); a namespace whose counters cannot be read is always asked.
import { readlinkSync } from 'node:fs';
import { nowMonoNs } from '../decode/batch.js';
import { netnsInodeFromLink } from './owners.js';
import { parseSnmp, parseSnmp6 } from './snmp.js';
import { procNetPath, readTextIfExists } from './read.js';
import type { SocketTable } from './sockets.js';
import type { NsRow } from './netns-tables.js';

/** The tables the gate may carry over (the ones with a per-namespace drop counter). */
export const GATED_TABLES: ReadonlySet<SocketTable> = new Set<SocketTable>(['udp', 'udp6']);

interface Asked {
  /** The namespace's counters read at the start of the read that asked it. */
  sig: string;
  /** undefined: the whole table was asked; else only these local ports. */
  ports?: ReadonlySet<number>;
  rows: NsRow[];
  /** When it was asked (CLOCK_MONOTONIC ns), and what asking cost. */
  atNs: number;
  costNs: number;
}

export interface UdpGateStats {
  /** Namespace × table pairs asked of the kernel, and carried over from an earlier read. */
  asked: number;
  carried: number;
  /** Namespaces whose counters could not be read (always asked). */
  unreadable: number;
  /** Times each namespace (by inode) had a UDP table asked: one that never drops is asked once. */
  askedByNetns: Record<number, number>;
}

export class UdpGate {
  private readonly last = new Map<number, Map<SocketTable, Asked>>();
  /** What asking every namespace and table again would cost (the sum of their last costs). */
  private totalCostNs = 0;
  readonly stats: UdpGateStats = { asked: 0, carried: 0, unreadable: 0, askedByNetns: {} };

  /**
   * `maxAgeMs`: ask again at least this often even when nothing dropped, or every 20 × what
   * asking every namespace again costs when that is longer (so a poller's queue figures age by seconds, and what it
   * spends on them stays a few % of a CPU at any table size). Unset: only when counters move
   * (attribution needs nothing newer: see above).
   */
  constructor(
    private readonly procRoot = '/proc',
    private readonly maxAgeMs?: number,
  ) {}

  /**
   * Each namespace's UDP error counters, now (one readlink and two small /proc reads per
   * namespace). undefined where they cannot be read through any of its pids.
   */
  signatures(namespaces: ReadonlyMap<number, readonly number[]>, selfNetns: number): Map<number, string | undefined> {
    const out = new Map<number, string | undefined>();
    for (const [ns, pids] of namespaces) out.set(ns, this.signature(ns, ns === selfNetns ? [undefined] : pids));
    return out;
  }

  private signature(ns: number, pids: readonly (number | undefined)[]): string | undefined {
    for (const pid of pids) {
      try {
        // The pid may have exited or its number been reused in another namespace.
        if (pid !== undefined && netnsInodeFromLink(readlinkSync(`${this.procRoot}/${pid}/ns/net`)) !== ns) continue;
        // Synchronous: nothing runs between the namespace check and the read.
        const s = readSnmpSync(this.procRoot, pid);
        if (s !== undefined) return s;
      } catch {
        /* gone or unreadable: the next pid of the namespace may do */
      }
    }
    this.stats.unreadable++;
    return undefined;
  }

  /**
   * The rows of `table` in `ns` on `ports` (all when undefined), carried over from the last
   * read that asked it, when its counters have not moved since; else undefined (ask the kernel).
   */
  carry(ns: number, table: SocketTable, sig: string | undefined, ports: readonly number[] | undefined): NsRow[] | undefined {
    if (sig === undefined || !GATED_TABLES.has(table)) return undefined;
    const a = this.last.get(ns)?.get(table);
    if (!a || a.sig !== sig) return undefined;
    if (this.maxAgeMs !== undefined && nowMonoNs() - a.atNs > Math.max(this.maxAgeMs * 1e6, 20 * this.totalCostNs)) return undefined;
    if (a.ports && (ports === undefined || ports.some((p) => !a.ports!.has(p)))) return undefined;
    this.stats.carried++;
    // Every port asked is in the last scope (checked above): the same scope needs no filtering.
    if (ports === undefined || (a.ports && a.ports.size === new Set(ports).size)) return a.rows;
    const want = new Set(ports);
    return a.rows.filter((r) => want.has(r.local.port));
  }

  /** What a read asked of `ns` for `table`, with the counters read at its start. */
  asked(ns: number, table: SocketTable, sig: string | undefined, ports: readonly number[] | undefined, rows: NsRow[], costNs = 0): void {
    if (!GATED_TABLES.has(table)) return;
    this.stats.asked++;
    this.stats.askedByNetns[ns] = (this.stats.askedByNetns[ns] ?? 0) + 1;
    let m = this.last.get(ns);
    this.totalCostNs -= m?.get(table)?.costNs ?? 0;
    if (sig === undefined) {
      m?.delete(table);
      return;
    }
    this.totalCostNs += costNs;
    if (!m) this.last.set(ns, (m = new Map()));
    m.set(table, { sig, ports: ports === undefined ? undefined : new Set(ports), rows, atNs: nowMonoNs() - costNs, costNs });
  }

  /** Forget namespaces not in `live` (gone with their last process). */
  retain(live: ReadonlySet<number>): void {
    for (const [ns, m] of [...this.last]) {
      if (live.has(ns)) continue;
      for (const a of m.values()) this.totalCostNs -= a.costNs;
      this.last.delete(ns);
    }
    for (const ns of Object.keys(this.stats.askedByNetns)) if (!live.has(Number(ns))) delete this.stats.askedByNetns[Number(ns)];
  }
}

/** InErrors of Udp, UdpLite, Udp6 and UdpLite6 of `pid`'s namespace (ours when undefined). */
function readSnmpSync(procRoot: string, pid: number | undefined): string | undefined {
  const v4text = readTextIfExists(procNetPath('snmp', procRoot, pid));
  if (v4text === undefined) return undefined;
  const v4 = parseSnmp(v4text);
  if (v4.Udp?.InErrors === undefined) return undefined;
  const v6text = readTextIfExists(procNetPath('snmp6', procRoot, pid));
  const v6 = v6text === undefined ? {} : parseSnmp6(v6text);
  return `${v4.Udp.InErrors}/${v4.UdpLite?.InErrors ?? '-'}/${v6.Udp6InErrors ?? '-'}/${v6.UdpLite6InErrors ?? '-'}`;
}
