// Socket owners without a full /proc/*/fd scan per new socket. A new socket's owners are looked
// for first among its likely processes: those of its cgroup (sock_diag's cgroup id is the cgroup2
// directory's inode → cgroup.procs, through cgroup-id.ts), processes started since the last
// scan, and processes of its namespace with its uid. Only what that misses costs a full scan, and
// full scans are rate-bounded by their own cost, so a host with 100,000 open sockets does not
// spend its CPU re-reading them.
import { readdirSync, statSync } from 'node:fs';
import { nowMonoNs } from '../decode/batch.js';
import { CgroupTree } from './cgroup-id.js';
import { scanSocketOwners, type DeniedProcess, type Owner, type SocketOwners } from './owners.js';
import type { NsRow } from './netns-tables.js';

export interface OwnerStats {
  /** Full /proc/*\/fd scans, and the last one's cost in ms. */
  fullScans: number;
  lastFullScanMs: number;
  /** Candidate-only scans (cgroup, new pids, same netns and uid), and sockets they resolved. */
  targetedScans: number;
  targetedFound: number;
  /** Times an event waited for a full scan, and for how long in all (ms). */
  waits: number;
  waitedMs: number;
  /** Sockets that went out marked owners_pending (a full scan was not allowed in time). */
  pending: number;
}

export class OwnerCache {
  owners = new Map<number, Owner[]>();
  pidsByNetns = new Map<number, number[]>();
  private netnsByPid = new Map<number, number>();
  /** The pids the last scan saw (to forget per-pid facts of processes that are gone). */
  get livePids(): ReadonlyMap<number, number> {
    return this.netnsByPid;
  }
  ownersDenied: DeniedProcess[] = [];
  private lastScan?: SocketOwners;
  /** The last full scan with what targeted scans added since; undefined before the first. */
  get scan(): SocketOwners | undefined {
    if (!this.lastScan) return undefined;
    return { ...this.lastScan, byInode: this.owners, pidsByNetns: this.pidsByNetns, netnsByPid: this.netnsByPid, ownersDenied: this.ownersDenied };
  }
  /** Start of the last full fd scan (CLOCK_MONOTONIC ns); a socket seen before it and owner-less has no owner. */
  lastFullNs = -Infinity;
  private fullCostNs = 0;
  readonly stats: OwnerStats = { fullScans: 0, lastFullScanMs: 0, targetedScans: 0, targetedFound: 0, waits: 0, waitedMs: 0, pending: 0 };

  constructor(
    private readonly procRoot = '/proc',
    /** Floor between two full scans (ms); the cost-based bound (20 × the last scan's cost) may be larger. */
    private readonly minFullGapMs = 100,
    /** The cgroup2 tree (shared with the attributor, which names sockets' cgroups from it). */
    private readonly cgroups = new CgroupTree(procRoot),
  ) {}

  async fullScan(): Promise<void> {
    const t0 = nowMonoNs();
    this.lastFullNs = t0;
    const s = await scanSocketOwners(this.procRoot);
    this.lastScan = s;
    this.owners = s.byInode;
    this.pidsByNetns = s.pidsByNetns;
    this.netnsByPid = s.netnsByPid;
    this.ownersDenied = s.ownersDenied;
    this.fullCostNs = nowMonoNs() - t0;
    this.stats.fullScans++;
    this.stats.lastFullScanMs = Math.round(this.fullCostNs / 1e5) / 10;
  }

  /** When the next full scan may start: at most ~5% of one CPU goes to full scans. */
  nextFullNs(): number {
    return this.lastFullNs + Math.max(this.minFullGapMs * 1e6, 20 * this.fullCostNs);
  }

  /** Refresh the namespace map only (readlink ns/net per pid, no fds): finds new namespaces cheaply. */
  async refreshNamespaces(): Promise<void> {
    const s = await scanSocketOwners(this.procRoot, { fds: false });
    this.pidsByNetns = s.pidsByNetns;
    this.netnsByPid = s.netnsByPid;
  }

  /**
   * Look for the owners of `rows` among their likely processes. Sets what it finds; returns the
   * rows still owner-less (for a full scan to settle).
   */
  async targeted<R extends Pick<NsRow, 'inode' | 'netns' | 'uid' | 'cgroupId'>>(rows: readonly R[]): Promise<R[]> {
    if (rows.length === 0) return [];
    const cands = new Set<number>();
    let live: number[] = [];
    try {
      live = readdirSync(this.procRoot).filter((n) => /^[0-9]+$/.test(n)).map(Number);
    } catch {
      /* no /proc listing: the full scan will say why */
    }
    for (const pid of live) if (!this.netnsByPid.has(pid)) cands.add(pid); // started since the last scan
    const uids = new Map<number, Set<number>>();
    for (const r of rows) {
      for (const pid of this.cgroups.procs(r.cgroupId)) cands.add(pid);
      let u = uids.get(r.netns);
      if (u === undefined) uids.set(r.netns, (u = new Set()));
      u.add(r.uid);
    }
    for (const [netns, us] of uids) {
      for (const pid of this.pidsByNetns.get(netns) ?? []) {
        if (cands.has(pid)) continue;
        try {
          if (us.has(statSync(`${this.procRoot}/${pid}`).uid)) cands.add(pid);
        } catch {
          /* exited */
        }
      }
    }
    this.stats.targetedScans++;
    const s = await scanSocketOwners(this.procRoot, { pids: [...cands] });
    for (const [pid, ns] of s.netnsByPid) {
      if (this.netnsByPid.has(pid)) continue;
      this.netnsByPid.set(pid, ns);
      const list = this.pidsByNetns.get(ns);
      if (list) list.push(pid);
      else this.pidsByNetns.set(ns, [pid]);
    }
    const left: R[] = [];
    for (const r of rows) {
      const o = s.byInode.get(r.inode);
      if (o) {
        this.owners.set(r.inode, o);
        this.stats.targetedFound++;
      } else left.push(r);
    }
    return left;
  }
}
