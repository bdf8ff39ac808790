// Socket-table rows from sock_diag: the same NsRow shape the /proc reader gives, so the
// attribution strategies do not care where a row came from. A read may be scoped to some local
// ports of a table ("udp sockets on port P in every netns"): the kernel filters, we decode only those.
import { formatSockaddr } from '../procnet/addr.js';
import type { SocketTable } from '../procnet/sockets.js';
import type { NsRow } from '../procnet/netns-tables.js';
import type { DiagSocket } from './decode.js';
import { AF_INET, AF_INET6, IPPROTO_RAW, IPPROTO_TCP, IPPROTO_UDP, type DiagRequest } from './encode.js';
import type { NetnsRef, SockDiagSource } from './source.js';

/** The tables sock_diag can list (ping sockets have no diag handler: icmp/icmp6 stay on /proc). */
export const DIAG_TABLES: ReadonlySet<SocketTable> = new Set<SocketTable>(['udp', 'udp6', 'raw', 'raw6', 'tcp', 'tcp6']);

/**
 * TCP states worth asking for: not TIME_WAIT (6) nor NEW_SYN_RECV (12), which are not full
 * sockets (no inode, no sk_drops): on a busy server they are most of the table.
 */
const TCP_FULL_STATES = 0xffffffff & ~(1 << 6) & ~(1 << 12);

const SPEC: Partial<Record<SocketTable, Pick<DiagRequest, 'family' | 'protocol' | 'states'>>> = {
  udp: { family: AF_INET, protocol: IPPROTO_UDP },
  udp6: { family: AF_INET6, protocol: IPPROTO_UDP },
  raw: { family: AF_INET, protocol: IPPROTO_RAW },
  raw6: { family: AF_INET6, protocol: IPPROTO_RAW },
  tcp: { family: AF_INET, protocol: IPPROTO_TCP, states: TCP_FULL_STATES },
  tcp6: { family: AF_INET6, protocol: IPPROTO_TCP, states: TCP_FULL_STATES },
};

/** One request per table: its whole table, or only `ports` of it. */
export function requestFor(table: SocketTable, ports?: readonly number[]): DiagRequest {
  const s = SPEC[table];
  if (!s) throw new Error(`no sock_diag request for table ${table}`);
  return { ...s, localPorts: ports };
}

export function rowFromDiag(table: SocketTable, s: DiagSocket, netns: number): NsRow {
  const row: NsRow = {
    table,
    local: s.local,
    remote: s.remote,
    localText: formatSockaddr(s.local.addr, s.local.port),
    remoteText: formatSockaddr(s.remote.addr, s.remote.port),
    state: s.state,
    tx_queue: s.wqueue,
    rx_queue: s.rqueue,
    uid: s.uid,
    inode: s.inode,
    ref: 0,
    // sock_diag gives a cookie, not the address: the `pointer` strategy reads /proc instead.
    pointer: '0',
    drops: s.mem?.drops,
    netns,
  };
  if (s.cgroupId !== undefined) row.cgroupId = s.cgroupId;
  if (s.mem) row.rcvbuf = s.mem.rcvbuf;
  return row;
}

/** Read `tables` (each whole, or scoped to ports) in one namespace; rows go into `into`. */
export async function readDiagTables(
  src: SockDiagSource,
  ns: NetnsRef,
  tables: readonly SocketTable[],
  ports: ReadonlyMap<SocketTable, readonly number[]> | undefined,
  into: Map<number, NsRow>,
): Promise<void> {
  const reqs = tables.map((t) => requestFor(t, ports?.get(t)));
  const replies = await src.query(ns, reqs);
  for (let i = 0; i < tables.length; i++) {
    for (const s of replies[i]) {
      // An inode of 0 is a socket being torn down (no file any more): nothing to own or match.
      // (A TCP socket orphaned by close() has inode 0 too; data reaching it is reset with
      // TCP_ABORT_ON_DATA, not queued, so none of the receive-queue reasons can be its.)
      if (s.inode !== 0) into.set(s.inode, rowFromDiag(tables[i], s, ns.inode));
    }
  }
}
