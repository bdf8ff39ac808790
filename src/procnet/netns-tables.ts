// Read socket tables in every network namespace that has a process: /proc/net/<table> for our
// own, /proc/<pid>/net/<table> through one pid of each other (tracepoints carry no netns, so
// every namespace must be looked at). Inodes are unique system-wide, so rows never collide.
import { readlinkSync } from 'node:fs';
import { errnoCode, RxtraceError } from '../errors.js';
import { netnsInodeFromLink } from './owners.js';
import { readSocketTable, type SocketRow, type SocketTable } from './sockets.js';
import { nowMonoNs } from '../decode/batch.js';

export interface NsRow extends SocketRow {
  /** Inode of the network namespace whose table listed this socket. */
  netns: number;
}

export interface TableRead {
  /** CLOCK_MONOTONIC ns when the read started (a socket in it existed at or after this time). */
  startNs: number;
  /** CLOCK_MONOTONIC ns when the read finished (every counter in it was read by then). */
  endNs: number;
  tables: ReadonlySet<SocketTable>;
  rows: Map<number, NsRow>;
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
): Promise<TableRead> {
  const startNs = nowMonoNs();
  const rows = new Map<number, NsRow>();
  const errors: RxtraceError[] = [];
  const namespaces = new Map(pidsByNetns);
  if (!namespaces.has(selfNetns)) namespaces.set(selfNetns, []);
  for (const [netns, pids] of namespaces) {
    for (const table of tables) {
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
  return { startNs, endNs: nowMonoNs(), tables: new Set(tables), rows, errors };
}

function asRxtraceError(e: unknown): RxtraceError {
  return e instanceof RxtraceError ? e : new RxtraceError(errnoCode(e) ?? 'EIO', e instanceof Error ? e.message : String(e), { cause: e });
}
