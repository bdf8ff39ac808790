// TCP sockets in every network namespace through sock_diag (what `ss -tam` shows): state, the
// queues (for a listener: the accept queue against its backlog), sk_drops (a listener's rises on
// every accept-queue overflow: the only per-socket trace of a listen overflow), uid, inode and
// owners. /proc/net/tcp has no drops column, so sock_diag is the source; `sockets` falls back to
// /proc/net/tcp when it cannot be used (RXTRACE_SOCKET_SOURCE=proc), with drops null, and says so.
import { errnoCode, type RxtraceError } from './errors.js';
import { ownNetns } from './procnet/netns-tables.js';
import { readSocketTable, TCP_TABLES, type SocketRow } from './procnet/sockets.js';
import { requestedSource, SOURCE_ENV } from './sockdiag/select.js';
import type { SocketOwners } from './procnet/owners.js';
import { formatSockaddr } from './procnet/addr.js';
import { nowMonoNs } from './decode/batch.js';
import { AF_INET, AF_INET6, EXT_SKMEMINFO, IPPROTO_TCP, SockDiagSource, type DiagSocket, type NetnsRef } from './sockdiag/index.js';
import type { SocketSnapshotRow } from './sockets.js';

/** include/net/tcp_states.h */
export const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV'];
export const TCP_LISTEN = 10;
/** sock_diag's states mask for listeners only. */
export const LISTEN_STATES = 1 << TCP_LISTEN;

export interface TcpSocketRow extends SocketSnapshotRow {
  table: 'tcp' | 'tcp6';
  state_name: string;
  /** A listener: connections waiting in the accept queue (sk_ack_backlog) and its limit (the listen() backlog). */
  accept_queue?: number;
  backlog?: number;
}

/** One row as `ss -tam` would show it. */
export function tcpRow(d: DiagSocket, netns: number, owners: SocketOwners['byInode']): TcpSocketRow {
  const listen = d.state === TCP_LISTEN;
  const row: TcpSocketRow = {
    table: d.family === AF_INET6 ? 'tcp6' : 'tcp',
    inode: d.inode,
    local: formatSockaddr(d.local.addr, d.local.port),
    remote: formatSockaddr(d.remote.addr, d.remote.port),
    // ss: Recv-Q is the accept queue of a listener, else the bytes not yet read; Send-Q the backlog / unsent bytes.
    rx_queue: d.rqueue,
    tx_queue: d.wqueue,
    drops: d.mem?.drops ?? null,
    netns: netns || null,
    state: d.state,
    state_name: TCP_STATES[d.state] ?? String(d.state),
    uid: d.uid,
    owners: owners.get(d.inode) ?? [],
  };
  if (d.mem) row.rcvbuf = d.mem.rcvbuf;
  if (listen) {
    row.accept_queue = d.rqueue;
    row.backlog = d.wqueue;
  }
  return row;
}

export interface TcpSocketsRead {
  rows: TcpSocketRow[];
  errors: Error[];
  /** Where the rows came from: /proc/net/tcp{,6} rows carry no drops (null). */
  source: 'sock_diag' | 'proc';
  /** Why /proc (the environment, no sock_diag…), when it is. */
  why?: string;
}

/**
 * Every TCP socket (all states, IPv4 and IPv6) of every namespace that has a process. Throws the
 * sock_diag error of our own namespace (ENOSYS: addon without it; EPERM…); another namespace
 * that cannot be reached is skipped and named in `errors`. `states`: a bitmask of 1 << state
 * (LISTEN_STATES: listeners only, what explain reads), all states when absent. `proc`: fall back
 * to /proc/net/tcp{,6} (RXTRACE_SOCKET_SOURCE=proc, no sock_diag, a fixture procRoot) instead of
 * throwing: rows without drops (that table has no such column), what `sockets` shows.
 */
/**
 * For pollers (counters/snapshot.ts's TcpGate): a namespace's rows from an earlier read while
 * nothing TCP happened there, or undefined to ask the kernel; and what was asked.
 */
export interface TcpCarry {
  carry(netns: number): readonly TcpSocketRow[] | undefined;
  asked(netns: number, rows: TcpSocketRow[], costNs: number): void;
}

export async function readTcpSockets(
  owners: SocketOwners,
  procRoot = '/proc',
  source?: SockDiagSource,
  states?: number,
  proc = false,
  env: NodeJS.ProcessEnv = process.env,
  carry?: TcpCarry,
): Promise<TcpSocketsRead> {
  let why: string | undefined;
  if (proc && !source) {
    const want = requestedSource(env);
    if (want === 'proc') why = `${SOURCE_ENV}=proc`;
    else if (procRoot !== '/proc') why = `procRoot is ${procRoot}`;
  }
  if (why === undefined) {
    try {
      return await readTcpDiag(owners, procRoot, source, states, carry);
    } catch (e) {
      const code = (e as RxtraceError).code;
      // Refused for a reason /proc can help with: no sock_diag in the addon or no tcp_diag in the kernel.
      if (!proc || source || requestedSource(env) === 'sock_diag' || !['ENOSYS', 'ENOENT', 'EPROTONOSUPPORT', 'EOPNOTSUPP'].includes(code)) throw e;
      why = `sock_diag unavailable: ${(e as Error).message}`;
    }
  }
  return { ...(await readTcpProc(owners, procRoot, states)), source: 'proc', why };
}

async function readTcpDiag(owners: SocketOwners, procRoot: string, source: SockDiagSource | undefined, states: number | undefined, carry?: TcpCarry): Promise<TcpSocketsRead> {
  const diag = source ?? SockDiagSource.open(procRoot);
  const self = ownNetns(procRoot);
  const rows: TcpSocketRow[] = [];
  const errors: Error[] = [];
  try {
    const spaces: NetnsRef[] = [{ inode: self, pids: [], self: true }];
    for (const [ns, pids] of owners.pidsByNetns) if (ns !== self) spaces.push({ inode: ns, pids });
    for (const ns of spaces) {
      const kept = carry?.carry(ns.inode);
      if (kept) {
        // The rows stand; their owners come from this read's scan.
        for (const r of kept) rows.push({ ...r, owners: owners.byInode.get(r.inode) ?? [] });
        continue;
      }
      const t0 = nowMonoNs();
      let lists: DiagSocket[][];
      try {
        lists = await diag.query(ns, [
          { family: AF_INET, protocol: IPPROTO_TCP, ext: EXT_SKMEMINFO, states },
          { family: AF_INET6, protocol: IPPROTO_TCP, ext: EXT_SKMEMINFO, states },
        ]);
      } catch (e) {
        if (ns.self) throw e;
        errors.push(e as Error);
        continue;
      }
      const mine: TcpSocketRow[] = [];
      for (const l of lists) for (const d of l) mine.push(tcpRow(d, ns.inode, owners.byInode));
      carry?.asked(ns.inode, mine, nowMonoNs() - t0);
      for (const r of mine) rows.push(r);
    }
  } finally {
    if (!source) diag.close();
  }
  return { rows, errors, source: 'sock_diag' };
}

/** /proc/net/tcp{,6} of each namespace (through one of its pids): the queues and state, drops null. */
async function readTcpProc(owners: SocketOwners, procRoot: string, states: number | undefined): Promise<{ rows: TcpSocketRow[]; errors: Error[] }> {
  const self = ownNetns(procRoot);
  const rows: TcpSocketRow[] = [];
  const errors: Error[] = [];
  const spaces = new Map(owners.pidsByNetns);
  spaces.set(self, []);
  for (const [ns, pids] of spaces) {
    for (const table of TCP_TABLES) {
      let last: unknown;
      let done = false;
      for (const pid of ns === self ? [undefined] : pids) {
        try {
          for (const r of await readSocketTable(table, procRoot, pid)) {
            if (states !== undefined && ((states >>> r.state) & 1) === 0) continue;
            rows.push(procRow(r, table as 'tcp' | 'tcp6', ns, owners.byInode));
          }
          done = true;
          break;
        } catch (e) {
          last = e;
          if (errnoCode(e) === 'ESRCH' || errnoCode(e) === 'EACCES') continue;
          break;
        }
      }
      if (!done && last !== undefined) errors.push(last as Error);
    }
  }
  return { rows, errors };
}

function procRow(r: SocketRow, table: 'tcp' | 'tcp6', netns: number, owners: SocketOwners['byInode']): TcpSocketRow {
  const row: TcpSocketRow = {
    table,
    inode: r.inode,
    local: r.localText,
    remote: r.remoteText,
    rx_queue: r.rx_queue,
    tx_queue: r.tx_queue,
    drops: null,
    netns: netns || null,
    state: r.state,
    state_name: TCP_STATES[r.state] ?? String(r.state),
    uid: r.uid,
    owners: r.inode === 0 ? [] : owners.get(r.inode) ?? [],
  };
  // A listener's rx_queue is its accept queue (sk_ack_backlog); /proc does not print its backlog
  // (tx_queue is write_seq - snd_una there, 0), so `backlog` stays absent.
  if (r.state === TCP_LISTEN) row.accept_queue = r.rx_queue;
  return row;
}
