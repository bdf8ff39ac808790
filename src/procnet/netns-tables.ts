// Read socket tables in every network namespace that has a process: /proc/net/<table> for our
// own, /proc/<pid>/net/<table> through one pid of each other (tracepoints carry no netns, so
// every namespace must be looked at), or some of the tables through sock_diag when the caller
// passes a reader for them (src/sockdiag's diagTableReader: procnet never imports sockdiag,
// which imports procnet). Inodes are unique system-wide, so rows never collide.
import { readlinkSync } from 'node:fs';
import { errnoCode, RxtraceError } from '../errors.js';
import { netnsInodeFromLink } from './owners.js';
import { readSocketTable, type SocketRow, type SocketTable } from './sockets.js';
import { nowMonoNs } from '../decode/batch.js';
import { GATED_TABLES, type UdpGate } from './udp-gate.js';

/** Namespaces read at once (sock_diag dumps overlap on the libuv pool; /proc reads are synchronous). */
const NS_AT_ONCE = 3;

/** Reads some tables of one namespace another way than /proc (sock_diag: sockdiag/tables.ts). */
export interface DiagTableReader {
  /** The tables it reads (the rest still come from /proc). */
  tables: ReadonlySet<SocketTable>;
  /** Put the rows of `tables` in the namespace `ns` into `rows`, only `ports` where given. */
  read(
    ns: { inode: number; pids: number[]; self: boolean },
    tables: readonly SocketTable[],
    ports: ReadonlyMap<SocketTable, readonly number[]> | undefined,
    rows: Map<number, NsRow>,
  ): Promise<void>;
}

export interface ReadTablesOptions {
  /** Read its tables through sock_diag instead of /proc (the rest still from /proc). */
  diag?: DiagTableReader;
  /**
   * Only the sockets on these local ports of a table (sock_diag tables only: the kernel
   * filters). A /proc table is always read whole, and the read says so.
   */
  ports?: ReadonlyMap<SocketTable, readonly number[]>;
  /**
   * Carry a namespace's UDP rows over from the last read that asked it while its UDP error
   * counters have not moved (udp-gate.ts says why that is exact). sock_diag tables only.
   */
  gate?: UdpGate;
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
  // The gate's counters are read first, at the start of the read, before any table is asked.
  const gate = diag && viaDiag.some((t) => GATED_TABLES.has(t)) ? opts.gate : undefined;
  const sigs = gate?.signatures(namespaces, selfNetns);
  const readOne = async (netns: number, pids: number[]): Promise<void> => {
    if (diag && viaDiag.length > 0) {
      const sig = sigs?.get(netns);
      let ask = viaDiag;
      if (gate) {
        ask = [];
        for (const t of viaDiag) {
          const kept = gate.carry(netns, t, sig, opts.ports?.get(t));
          if (kept) for (const r of kept) rows.set(r.inode, r);
          else ask.push(t);
        }
      }
      if (ask.length > 0) {
        try {
          const got = gate ? new Map<number, NsRow>() : rows;
          const t0 = nowMonoNs();
          await diag.read({ inode: netns, pids, self: netns === selfNetns }, ask, opts.ports, got);
          if (gate) {
            const costNs = nowMonoNs() - t0;
            for (const t of ask) if (GATED_TABLES.has(t)) gate.asked(netns, t, sig, opts.ports?.get(t), [...got.values()].filter((r) => r.table === t), costNs);
            for (const [inode, r] of got) rows.set(inode, r);
          }
        } catch (e) {
          // ESRCH: every pid of that namespace exited (it went with them). Anything else is said.
          if (errnoCode(e) !== 'ESRCH') errors.push(asRxtraceError(e));
        }
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
  };
  // A few namespaces at once: each sock_diag dump walks the kernel's global hash, and the addon
  // runs dumps of different namespaces side by side on the libuv pool (4 threads by default).
  const queue = [...namespaces];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) await readOne(next[0], next[1]);
  };
  await Promise.all(Array.from({ length: Math.min(NS_AT_ONCE, queue.length) }, worker));
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
