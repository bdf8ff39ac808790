// One read of every source of the receive funnel, taken together: softnet_stat, /proc/net/dev,
// /sys/class/net/*/statistics, snmp, snmp6, sockstat, udp_mem, and (optionally) every UDP, raw
// and ICMP socket in every network namespace with its owners, plus the snmp of each namespace
// that has UDP sockets, so that socket drops can be set against that namespace's RcvbufErrors.
// A source that fails to read is recorded in `errors` and left empty: one unreadable file must
// not hide the others.
import { RxtraceError } from '../errors.js';
import { ownNetns } from '../procnet/netns-tables.js';
import { readNetDev, type NetDevRow } from '../procnet/netdev.js';
import { OwnerCache, type OwnerStats } from '../procnet/owner-cache.js';
import { OwnerCgroups } from '../procnet/owner-cgroups.js';
import { UdpGate, type UdpGateStats } from '../procnet/udp-gate.js';
import { TcpGate } from './tcp-gate.js';
import { scanSocketOwners, type SocketOwners } from '../procnet/owners.js';
import { nowMonoNs } from '../decode/batch.js';
import { dict } from '../procnet/read.js';
import { readSnmp, readSnmp6, type Snmp6Counters, type SnmpCounters } from '../procnet/snmp.js';
import { getPageSize } from '../native.js';
import { readNetstat } from '../procnet/netstat.js';
import { readProtoMem, readSockstat, type ProtoMem, type Sockstat } from '../procnet/sockstat.js';
import { readSoftnetStat, type SoftnetRow } from '../procnet/softnet.js';
import { readAllDeviceStatsSync } from '../procnet/sysfs-stats.js';
import { ownersWithCgroups, readSockets, type ReadSocketsOptions, type SocketSnapshotRow } from '../sockets.js';
import { readTcpSockets } from '../tcp-sockets.js';

export interface SnmpRead {
  snmp: SnmpCounters;
  snmp6: Snmp6Counters;
}

export interface NetnsSnmp extends SnmpRead {
  /** Read again right after the socket tables (see CounterSnapshot.snmpAfterSockets). */
  after?: SnmpRead;
}

export interface SourceError {
  /** `softnet_stat`, `dev`, `statistics`, `snmp`, `snmp6`, `sockstat`, `udp_mem`, `sockets`, `netns:<inode>` */
  source: string;
  code: string;
  message: string;
}

export interface CounterSnapshot {
  /** performance.now() when the read started: the clock of intervals. */
  monoMs: number;
  /** CLOCK_MONOTONIC in ns at the same moment: the clock of tracepoint samples (DropEvent.monoNs). */
  monoNs: number;
  /** Date.now() when the read started. */
  wallMs: number;
  /** Inode of rxtrace's own network namespace (0 when unknown): dev, statistics, snmp, sockstat are of this one. */
  selfNetns: number;
  /** Global: every namespace sees the same. */
  softnet: SoftnetRow[];
  dev: Record<string, NetDevRow>;
  statistics: Record<string, Record<string, number>>;
  snmp: SnmpCounters;
  snmp6: Snmp6Counters;
  /** /proc/net/netstat (TcpExt, IpExt…) of rxtrace's own namespace. */
  netstat?: SnmpCounters;
  sockstat: Sockstat;
  protoMem: ProtoMem;
  pageSize: number;
  /** Every socket by inode, when sockets were read. */
  sockets?: Map<number, SocketSnapshotRow>;
  /** TCP sockets (sock_diag) are among `sockets`. */
  tcpRead?: boolean;
  /** Namespaces whose socket tables were read (their sockets are all in `sockets`). */
  netnsRead?: Set<number>;
  /** snmp and snmp6 of each other namespace that has UDP sockets, by namespace inode. */
  netnsSnmp?: Map<number, NetnsSnmp>;
  /**
   * snmp and snmp6 read again right after the socket tables. `snmp` was read just before them,
   * so the kernel's count at the moment each socket's drops were read lies between the two:
   * the reconciliation uses the pair to tell a real mismatch from a flood between two reads.
   */
  snmpAfterSockets?: SnmpRead;
  errors: SourceError[];
}

export interface SnapshotOptions {
  procRoot?: string;
  sysRoot?: string;
  /** Read sockets, owners and per-namespace snmp (default true). */
  sockets?: boolean;
  /** Read TCP sockets too, through sock_diag (default: with `sockets`, when procRoot is /proc): listeners' drops are listen overflows. */
  tcp?: boolean;
  /** An owner scan to use instead of making one (SnapshotReader reuses scans for a while). */
  owners?: SocketOwners;
  /** SnapshotReader's: ask a namespace's UDP tables only when it dropped, or its rows are old (procnet/udp-gate.ts). */
  gate?: UdpGate;
  /** SnapshotReader's: ask a namespace's TCP sockets only when TCP received something there (tcp-gate.ts). */
  tcpGate?: TcpGate;
  /** SnapshotReader's: rows carried over unchanged are handed out again (sockets.ts, `reuse`). */
  reuse?: ReadSocketsOptions['reuse'];
}

function sourceError(source: string, e: unknown): SourceError {
  if (e instanceof RxtraceError) return { source, code: e.code, message: e.message };
  // Anything that is not an RxtraceError is a bug: let it crash loudly.
  throw e;
}

async function guarded<T>(source: string, errors: SourceError[], empty: T, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    errors.push(sourceError(source, e));
    return empty;
  }
}

const UDP_TABLES = new Set(['udp', 'udp6']);

/** The receive side of a device's statistics (rtnl_link_stats64 names; `multicast` is received). */
export const receiveCounter = (name: string): boolean => name.startsWith('rx_') || name === 'multicast';

/**
 * Reads every source at once. The owner scan (/proc/PID/fd, the slow part) runs first; then the
 * counters and every namespace's snmp, concurrently; then the socket tables; then the snmp of
 * the namespaces with UDP sockets once more, so that each socket's drops are bracketed by two
 * reads of RcvbufErrors (see CounterSnapshot.snmpAfterSockets).
 */
export async function readSnapshot(opts: SnapshotOptions = {}): Promise<CounterSnapshot> {
  const procRoot = opts.procRoot ?? '/proc';
  const sysRoot = opts.sysRoot ?? '/sys';
  const errors: SourceError[] = [];
  const selfNetns = ownNetns(procRoot);
  const owners =
    opts.sockets === false ? undefined : (opts.owners ?? (await guarded('owners', errors, undefined, () => scanSocketOwners(procRoot))));
  const otherNetns = owners ? [...owners.pidsByNetns].filter(([ns]) => ns !== selfNetns) : [];

  const monoMs = performance.now();
  const monoNs = Number(process.hrtime.bigint());
  const wallMs = Date.now();
  const [softnet, dev, statistics, snmp, snmp6, sockstat, protoMem, nsSnmp, netstat] = await Promise.all([
    guarded('softnet_stat', errors, [] as SoftnetRow[], () => readSoftnetStat(procRoot)),
    guarded('dev', errors, dict<NetDevRow>(), () => readNetDev(procRoot)),
    guarded('statistics', errors, dict<Record<string, number>>(), async () => readAllDeviceStatsSync(sysRoot, receiveCounter)),
    guarded('snmp', errors, dict<Record<string, number>>(), () => readSnmp(procRoot)),
    guarded('snmp6', errors, dict<number>(), () => readSnmp6(procRoot)),
    guarded('sockstat', errors, dict<Record<string, number>>(), () => readSockstat(procRoot)),
    guarded('udp_mem', errors, {} as ProtoMem, () => readProtoMem(procRoot)),
    Promise.all(otherNetns.map(async ([ns, pids]) => [ns, pids, await readNetnsSnmp(procRoot, pids)] as const)),
    guarded('netstat', errors, dict<Record<string, number>>(), () => readNetstat(procRoot)),
  ]);

  const snap: CounterSnapshot = {
    monoMs,
    monoNs,
    wallMs,
    selfNetns,
    softnet,
    dev,
    statistics,
    snmp,
    snmp6,
    netstat,
    sockstat,
    protoMem,
    pageSize: getPageSize(),
    errors,
  };
  const rows = owners ? await guarded('sockets', errors, undefined, () => readSockets({ procRoot, owners, cgroups: 'dropping', gate: opts.gate, reuse: opts.reuse, sort: false })) : undefined;
  if (!owners || !rows) return snap;

  snap.sockets = new Map(rows.map((r) => [r.inode, r]));
  // sock_diag asks the running kernel: never mixed into a snapshot of another /proc (fixtures).
  if (opts.tcp ?? procRoot === '/proc') {
    const tcp = await guarded('tcp_sockets', errors, undefined, async () => {
      try {
        // Each namespace's Tcp InSegs, read before the tables: the TcpGate's signature.
        const sigs = new Map<number, string | undefined>([[selfNetns, TcpGate.signature(snmp)]]);
        for (const [ns, , got] of nsSnmp) sigs.set(ns, TcpGate.signature(got?.snmp));
        return await readTcpSockets(owners, procRoot, undefined, undefined, false, process.env, opts.tcpGate?.forRead(sigs));
      } catch (e) {
        throw e instanceof RxtraceError ? e : new RxtraceError('EIO', `sock_diag: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    });
    if (tcp) {
      // TIME_WAIT and request sockets have no inode (0) and no drops: nothing to follow.
      // Listeners that dropped get their owners' cgroup keys, as UDP rows do.
      const withCgroups = ownersWithCgroups(procRoot, 'dropping');
      for (const r of tcp.rows) if (r.inode !== 0) snap.sockets.set(r.inode, { ...r, owners: withCgroups(r.owners, r.drops) });
      snap.tcpRead = true;
      for (const e of tcp.errors) errors.push({ source: 'tcp_sockets', code: (e as RxtraceError).code ?? 'EIO', message: e.message });
    }
  }
  snap.netnsRead = new Set([selfNetns, ...owners.pidsByNetns.keys()]);
  snap.netnsSnmp = new Map();
  const udpNetns = new Set<number>();
  for (const r of rows) if (r.netns !== null && r.netns !== selfNetns && UDP_TABLES.has(r.table)) udpNetns.add(r.netns);
  const again = await Promise.all([
    Promise.all([readSnmp(procRoot), readSnmp6(procRoot)]).catch(() => undefined),
    ...nsSnmp.filter(([ns, , got]) => got && udpNetns.has(ns)).map(async ([ns, pids]) => [ns, await readNetnsSnmp(procRoot, pids)] as const),
  ]);
  const own = again[0] as [SnmpCounters, Snmp6Counters] | undefined;
  if (own && own[0].Udp) snap.snmpAfterSockets = { snmp: own[0], snmp6: own[1] };
  const after = new Map(again.slice(1) as (readonly [number, NetnsSnmp | undefined])[]);
  for (const [ns, , got] of nsSnmp) {
    if (got) {
      const later = after.get(ns);
      snap.netnsSnmp.set(ns, later ? { ...got, after: { snmp: later.snmp, snmp6: later.snmp6 } } : got);
    } else if (udpNetns.has(ns)) {
      errors.push({ source: `netns:${ns}`, code: 'ESRCH', message: `cannot read the snmp of network namespace ${ns} through any of its processes` });
    }
  }
  return snap;
}

/** snmp + snmp6 of a namespace, through the first of its pids that is still there. */
async function readNetnsSnmp(procRoot: string, pids: readonly number[]): Promise<NetnsSnmp | undefined> {
  for (const pid of pids) {
    try {
      const [snmp, snmp6] = await Promise.all([readSnmp(procRoot, pid), readSnmp6(procRoot, pid)]);
      // A pid that exited reads as a missing file ({}): try the next one.
      if (Object.keys(snmp).length > 0) return { snmp, snmp6 };
    } catch {
      // unreadable or gone: the next pid of the same namespace may do
    }
  }
  return undefined;
}

export interface SnapshotReaderOptions extends Omit<SnapshotOptions, 'owners'> {
  /** Reuse an owner scan for at least this long (default 5000 ms); longer where a scan costs more. */
  ownersMaxAgeMs?: number;
}

/**
 * readSnapshot once per interval, for `stats`, `top` and `serve`. The owner scan (a readlink of
 * every fd of every process: 100,000 sockets are 100,000 links) is most of a snapshot's cost, and
 * owners change far less often than counters. So a full scan is reused for `ownersMaxAgeMs`, or
 * for 20 times its own cost when that is longer (at most ~5% of a CPU on scans, whatever the
 * host's size: see procnet/owner-cache.ts). A socket whose drops rose and that has no owner in
 * the scan (opened since) is looked for at once among its likely processes (new pids, its
 * netns and uid); only what that misses waits for the next full scan the cost bound allows.
 * Owners found that way carry their cgroup keys, as the first read's do.
 */
export class SnapshotReader {
  private readonly cache: OwnerCache;
  private prev?: CounterSnapshot;
  private readonly gate?: UdpGate;
  private readonly tcpGate?: TcpGate;
  private readonly reuse: NonNullable<ReadSocketsOptions['reuse']> = new WeakMap();

  constructor(private readonly opts: SnapshotReaderOptions = {}) {
    this.cache = new OwnerCache(opts.procRoot ?? '/proc', opts.ownersMaxAgeMs ?? 5000);
    if (process.env.RXTRACE_UDP_GATE !== '0') {
      this.gate = new UdpGate(opts.procRoot ?? '/proc', opts.ownersMaxAgeMs ?? 5000);
      this.tcpGate = new TcpGate(opts.ownersMaxAgeMs ?? 5000);
    }
  }

  /** UDP tables asked and carried over (for the bench and tests). */
  get gateStats(): UdpGateStats | undefined {
    return this.gate && { ...this.gate.stats, askedByNetns: { ...this.gate.stats.askedByNetns } };
  }

  /** TCP namespaces asked and carried over (for the bench and tests). */
  get tcpGateStats(): { asked: number; carried: number } | undefined {
    return this.tcpGate && { ...this.tcpGate.stats };
  }

  /** Full owner scans and targeted lookups so far (for the bench and tests). */
  get ownerStats(): OwnerStats {
    return this.cache.stats;
  }

  async read(): Promise<CounterSnapshot> {
    if (this.opts.sockets === false) return readSnapshot(this.opts);
    if (!this.cache.scan || nowMonoNs() >= this.cache.nextFullNs()) await this.cache.fullScan().catch(() => undefined);
    const snap = await readSnapshot({ ...this.opts, owners: this.cache.scan, gate: this.gate, tcpGate: this.tcpGate, reuse: this.reuse });
    const live = new Set(snap.netnsRead ?? []);
    this.gate?.retain(live);
    this.tcpGate?.retain(live);
    const unowned = snap.sockets ? this.unownedDroppers(snap) : [];
    if (unowned.length > 0) {
      let left = await this.cache.targeted(unowned.map((r) => ({ inode: r.inode, netns: r.netns ?? -1, uid: r.uid }))).catch(() => unowned);
      if (left.length > 0 && nowMonoNs() >= this.cache.nextFullNs()) {
        await this.cache.fullScan().catch(() => undefined);
        left = [];
      }
      const cgroups = new OwnerCgroups(this.opts.procRoot ?? '/proc');
      for (const r of unowned) {
        const o = this.cache.owners.get(r.inode);
        if (o) r.owners = cgroups.owners(o);
      }
    }
    this.prev = snap;
    return snap;
  }

  /** Sockets that dropped since the last read (or are new with drops) and have no owner. */
  private unownedDroppers(snap: CounterSnapshot): SocketSnapshotRow[] {
    const before = this.prev?.sockets;
    const out: SocketSnapshotRow[] = [];
    for (const row of snap.sockets!.values()) {
      if (row.owners.length > 0 || !row.drops) continue;
      const p = before?.get(row.inode);
      if (!p || p.drops !== row.drops) out.push(row);
    }
    return out;
  }
}
