// Read socket tables in every network namespace that has a process: /proc/net/<table> for our
// own, /proc/<pid>/net/<table> through one pid of each other (tracepoints carry no netns, so
// every namespace must be looked at). Inodes are unique system-wide, so rows never collide.
import { readlinkSync } from 'node:fs';
import { netnsInodeFromLink } from '../procnet/owners.js';
import { readSocketTable, type SocketTable } from '../procnet/sockets.js';
import { nowMonoNs } from '../decode/batch.js';
import type { NsRow, TableRead } from './history.js';

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
  const namespaces = new Map(pidsByNetns);
  if (!namespaces.has(selfNetns)) namespaces.set(selfNetns, []);
  for (const [netns, pids] of namespaces) {
    for (const table of tables) {
      const list = netns === selfNetns ? [undefined] : pids;
      for (const pid of list) {
        try {
          for (const row of await readSocketTable(table, procRoot, pid)) rows.set(row.inode, { ...row, netns });
          break;
        } catch {
          // That pid exited (or its /proc is unreadable): try another of the same namespace.
        }
      }
    }
  }
  return { startNs, endNs: nowMonoNs(), tables: new Set(tables), rows };
}
