// Read socket tables in every network namespace that has a process: /proc/net/<table> for our
// own, /proc/<pid>/net/<table> through one pid of each other (tracepoints carry no netns, so
// every namespace must be looked at), or the same tables through sock_diag when the caller
// passes a source (src/sockdiag). Inodes are unique system-wide, so rows never collide.
import { readlinkSync } from 'node:fs';
import { errnoCode, RxtraceError } from '../errors.js';
import { netnsInodeFromLink } from './owners.js';
import { readSocketTable, type SocketRow, type SocketTable } from './sockets.js';
import { nowMonoNs } from '../decode/batch.js';
import type { SockDiagSource } from '../sockdiag/source.js';
import { readDiagTables } from '../sockdiag/tables.js';

export interface ReadTablesOptions {
  /** Read these tables through sock_diag instead of /proc (the rest still from /proc). */
  diag?: { source: SockDiagSource; tables: ReadonlySet<SocketTable> };
  /**
   * Only the sockets on these local ports of a table (sock_diag tables only: the kernel
   * filters). A /proc table is always read whole, and the read says so.
   */
  ports?: ReadonlyMap<SocketTable, readonly number[]>;
  /** Count of whole-table reads, by table (tests and the bench check none happens per event). */
  counter?: { wholeReads: Map<string, number> };
}

export interface NsRow extends SocketRow {
  /** Inode of the network namespace whose table listed this socket. */
  netns: number;
  /** The socket's cgroup v2 inode (sock_diag INET_DIAG_CGROUP_ID), when known: its owners' cgroup. */
  cgroupId?: string;
}

export interface TableRead {
  /** CLOCK_MONOTONIC ns when the read started (a socket in it existed at or after this time). */
  startNs: number;
  /** CLOCK_MONOTONIC ns when the read finished (every counter in it was read by then). */
  endNs: number;
  tables: ReadonlySet<SocketTable>;
  /**
   * Tables this read covers only in part: just the sockets on these local ports (a sock_diag
   * read scoped by the kernel). A table in `tables` and not here was read whole.
   */
  ports?: ReadonlyMap<SocketTable, ReadonlySet<number>>;
  rows: Map<number, NsRow>;
  /** Some rows came from sock_diag, which has no `pointer` column: no use to the pointer strategy. */
  noPointers?: boolean;
  /** Tables read without a drops counter (/proc/net/tcp, tcp6): their rows say drops undefined. */
  noDrops?: ReadonlySet<SocketTable>;
  /** Tables (or namespaces) this read could not cover, and why: a parse error, EACCES, EMFILE. */
  errors?: RxtraceError[];
}

/** The inode of our own network namespace (0 when /proc/self/ns/net cannot be read). */
export function ownNetns(procRoot = '/proc'): number {
  try {
    return netnsInodeFromLink(readlinkSync(`${procRoot}/self/ns/net`)) ?? 0;
  } catch {
    return 0;
  }
}

/**
 * One read of `tables` across namespaces. `pidsByNetns` maps each netns to its pids; a pid
 * that has exited is skipped for the next one of the same namespace.
 */
export async function readTables(
  tables: readonly SocketTable[],
  pidsByNetns: Map<number, number[]>,
  selfNetns: number,
  procRoot = '/proc',
  opts: ReadTablesOptions = {},
): Promise<TableRead> {
  const startNs = nowMonoNs();
  const rows = new Map<number, NsRow>();
  const errors: RxtraceError[] = [];
  const namespaces = new Map(pidsByNetns);
  if (!namespaces.has(selfNetns)) namespaces.set(selfNetns, []);
  const diag = opts.diag;
  const viaDiag = diag ? tables.filter((t) => diag.tables.has(t)) : [];
  const viaProc = diag ? tables.filter((t) => !diag.tables.has(t)) : tables;
  const scoped = new Map<SocketTable, ReadonlySet<number>>();
  for (const t of viaDiag) {
    const p = opts.ports?.get(t);
    if (p !== undefined) scoped.set(t, new Set(p));
  }
  if (opts.counter) for (const t of tables) if (!scoped.has(t)) opts.counter.wholeReads.set(t, (opts.counter.wholeReads.get(t) ?? 0) + 1);
  for (const [netns, pids] of namespaces) {
    if (diag && viaDiag.length > 0) {
      try {
        await readDiagTables(diag.source, { inode: netns, pids, self: netns === selfNetns }, viaDiag, opts.ports, rows);
      } catch (e) {
        // ESRCH: every pid of that namespace exited (it went with them). Anything else is said.
        if (errnoCode(e) !== 'ESRCH') errors.push(asRxtraceError(e));
      }
    }
    for (const table of viaProc) {
      const list = netns === selfNetns ? [undefined] : pids;
      let denied: RxtraceError | undefined;
      for (const pid of list) {
        try {
          for (const row of await readSocketTable(table, procRoot, pid)) rows.set(row.inode, { ...row, netns });
          denied = undefined;
          break;
        } catch (e) {
          const code = errnoCode(e);
          // That pid exited: another of the same namespace will do.
          if (code === 'ESRCH') continue;
          // Unreadable through this pid (hidepid, another user's namespace): try the next one,
          // and report it only if none of them could be read.
          if (code === 'EACCES' || code === 'EPERM') {
            denied = asRxtraceError(e);
            continue;
          }
          // A layout we cannot parse, EMFILE, EIO…: the same through every pid. Say so; never
          // let it pass as "no socket matched".
          errors.push(asRxtraceError(e));
          break;
        }
      }
      if (denied) errors.push(denied);
    }
  }
  const read: TableRead = { startNs, endNs: nowMonoNs(), tables: new Set(tables), rows, errors };
  if (scoped.size > 0) read.ports = scoped;
  if (viaDiag.length > 0) read.noPointers = true;
  const noDrops = viaProc.filter((t) => t === 'tcp' || t === 'tcp6');
  if (noDrops.length > 0) read.noDrops = new Set(noDrops);
  return read;
}

function asRxtraceError(e: unknown): RxtraceError {
  return e instanceof RxtraceError ? e : new RxtraceError(errnoCode(e) ?? 'EIO', e instanceof Error ? e.message : String(e), { cause: e });
}
