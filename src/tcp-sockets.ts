// TCP sockets in every network namespace through sock_diag (what `ss -tam` shows): state, the
// queues (for a listener: the accept queue against its backlog), sk_drops (a listener's rises on
// every accept-queue overflow: the only per-socket trace of a listen overflow), uid, inode and
// owners. /proc/net/tcp has no drops column, so sock_diag is the source; when it cannot be used
// the caller says so (RXTRACE_SOCKET_SOURCE=proc gives no TCP drops).
import { ownNetns } from './procnet/netns-tables.js';
import type { SocketOwners } from './procnet/owners.js';
import { formatSockaddr } from './procnet/addr.js';
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

/**
 * Every TCP socket (all states, IPv4 and IPv6) of every namespace that has a process. Throws the
 * sock_diag error of our own namespace (ENOSYS: addon without it; EPERM…); another namespace
 * that cannot be reached is skipped and named in `errors`. `states`: a bitmask of 1 << state
 * (LISTEN_STATES: listeners only, what explain reads), all states when absent.
 */
export async function readTcpSockets(owners: SocketOwners, procRoot = '/proc', source?: SockDiagSource, states?: number): Promise<{ rows: TcpSocketRow[]; errors: Error[] }> {
  const diag = source ?? SockDiagSource.open(procRoot);
  const self = ownNetns(procRoot);
  const rows: TcpSocketRow[] = [];
  const errors: Error[] = [];
  try {
    const spaces: NetnsRef[] = [{ inode: self, pids: [], self: true }];
    for (const [ns, pids] of owners.pidsByNetns) if (ns !== self) spaces.push({ inode: ns, pids });
    for (const ns of spaces) {
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
      for (const l of lists) for (const d of l) rows.push(tcpRow(d, ns.inode, owners.byInode));
    }
  } finally {
    if (!source) diag.close();
  }
  return { rows, errors };
}
