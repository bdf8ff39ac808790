// readSockets(): a snapshot of every UDP, raw and ICMP socket in every network namespace, with
// owners, like `ss -uam -p` across namespaces. Used by `rxtrace sockets`, `top` and the library.
import { ownNetns, readTables, type NsRow, type ReadTablesOptions } from './procnet/netns-tables.js';
import { openSocketSource } from './sockdiag/select.js';
import { diagTableReader } from './sockdiag/tables.js';
import type { SocketInfo } from './decode/events.js';
import { OwnerCgroups } from './procnet/owner-cgroups.js';
import { scanSocketOwners, type Owner, type SocketOwners } from './procnet/owners.js';
import { SOCKET_TABLES, type SocketTable } from './procnet/sockets.js';
import type { UdpGate } from './procnet/udp-gate.js';

export interface SocketSnapshotRow extends SocketInfo {
  tx_queue: number;
  /** sk_state (7 = unconnected, 1 = connected). */
  state: number;
  uid: number;
  /** sk_rcvbuf: the buffer `rx_queue` fills (sock_diag only; absent from the /proc source and for ping sockets). */
  rcvbuf?: number;
}

export interface ReadSocketsOptions {
  tables?: readonly SocketTable[];
  procRoot?: string;
  /** A scan already made (scanSocketOwners), so a caller that also needs its netns map scans once. */
  owners?: SocketOwners;
  /**
   * Which sockets' owners get their cgroup, unit, container and pod (one /proc/PID/cgroup read
   * per owner pid): 'all' (default), or 'dropping' (drops > 0) for callers that poll.
   */
  cgroups?: 'all' | 'dropping';
  /** false: no /proc/PID/fd scan (`owners` come out empty), like `ss` without -p. Default true. */
  withOwners?: boolean;
  /** 'auto' (default: RXTRACE_SOCKET_SOURCE, else sock_diag where the kernel answers), 'sock_diag' or 'proc'. */
  source?: 'auto' | 'sock_diag' | 'proc';
  /**
   * For callers that read again and again (stats, top, serve): carry a namespace's UDP rows over
   * from the last read while its UDP error counters have not moved (procnet/udp-gate.ts).
   */
  gate?: UdpGate;
  /**
   * For pollers: the rows of the last read, by the NsRow they were made from. A row the gate
   * carried over (the same NsRow) whose owners are the same list is handed out again as it was,
   * not rebuilt: an idle host of 100,000 sockets then costs a map lookup per socket per tick.
   */
  reuse?: WeakMap<NsRow, { owners: readonly Owner[] | undefined; row: SocketSnapshotRow }>;
  /** false: leave the rows in table order (pollers key them by inode). Default true. */
  sort?: boolean;
}

/** Sorted by drops (most first), then by table and local address. */
export async function readSockets(opts: ReadSocketsOptions = {}): Promise<SocketSnapshotRow[]> {
  const procRoot = opts.procRoot ?? '/proc';
  const owners = opts.owners ?? (await scanSocketOwners(procRoot, { fds: opts.withOwners !== false }));
  // sock_diag where the kernel answers: a full dump costs what ss costs, /proc/net/udp far more.
  const env = opts.source && opts.source !== 'auto' ? { ...process.env, RXTRACE_SOCKET_SOURCE: opts.source } : process.env;
  const opened = await openSocketSource({ env, procRoot });
  const readOpts: ReadTablesOptions = {};
  if (opened.diag) {
    readOpts.diag = diagTableReader(opened.diag, new Set(SOCKET_TABLES.filter((t) => opened.choice.tables[t] === 'sock_diag')));
    readOpts.gate = opts.gate;
  }
  let read;
  try {
    read = await readTables(opts.tables ?? SOCKET_TABLES, owners.pidsByNetns, ownNetns(procRoot), procRoot, readOpts);
  } finally {
    opened.diag?.close();
  }
  // A table we cannot parse (or read for a reason other than permissions) would otherwise look
  // like a table without sockets.
  const broken = read.errors?.find((e) => e.code !== 'EACCES' && e.code !== 'EPERM');
  if (broken) throw broken;
  const rows: SocketSnapshotRow[] = [];
  const withCgroups = ownersWithCgroups(procRoot, opts.cgroups ?? 'all');
  const reuse = opts.reuse;
  for (const r of read.rows.values()) {
    const found = owners.byInode.get(r.inode);
    const was = reuse?.get(r);
    if (was && was.owners === found) {
      rows.push(was.row);
      continue;
    }
    const row: SocketSnapshotRow = {
      table: r.table,
      inode: r.inode,
      local: r.localText,
      remote: r.remoteText,
      rx_queue: r.rx_queue,
      tx_queue: r.tx_queue,
      drops: r.drops ?? null,
      netns: r.netns || null,
      state: r.state,
      uid: r.uid,
      owners: withCgroups(found ?? [], r.drops),
    };
    if (r.rcvbuf !== undefined) row.rcvbuf = r.rcvbuf;
    rows.push(row);
    reuse?.set(r, { owners: found, row });
  }
  if (opts.sort !== false)
    rows.sort((a, b) => (b.drops ?? 0) - (a.drops ?? 0) || a.table.localeCompare(b.table) || a.local.localeCompare(b.local) || a.inode - b.inode);
  return rows;
}

/**
 * Owners with their cgroup keys under the `cgroups` rule of ReadSocketsOptions, for one read
 * (each owner pid's cgroup file is read once). Every path that sets a row's owners (readSockets,
 * SnapshotReader's rescan, TCP listeners in a snapshot) goes through one of these, so none hands
 * out owners without the keys the first read gave them.
 */
export function ownersWithCgroups(procRoot: string, rule: 'all' | 'dropping'): (list: readonly Owner[], drops: number | null | undefined) => Owner[] {
  const cgroups = new OwnerCgroups(procRoot);
  return (list, drops) => (rule === 'dropping' && !drops ? (list as Owner[]) : cgroups.owners(list));
}
