// /proc/net/{udp,udp6,raw,raw6,icmp,icmp6}: one row per socket with its addresses, queues,
// inode (for owners), kernel pointer (for kfree_skb rx_sk) and `drops` counter. /proc/net/tcp
// shares the first twelve columns but has no drops: its parser is procnet/tcp.ts.
// Columns are positional (the header names do not match the data tokens: `tx_queue rx_queue`
// is printed as one `%08X:%08X` token), as in ss and the kernel's own *_format_sock().
import { statSync } from 'node:fs';
import { RxtraceError } from '../errors.js';
import { decodeProcEndpoint, formatSockaddr, HOST_ENDIANNESS, type Endianness, type Endpoint } from './addr.js';
import { ProcParseError } from './errors.js';
import { procNetPath, readTextIfExists } from './read.js';
import { parseTcpTable } from './tcp.js';

/** The UDP-side tables (`rxtrace sockets`' default), plus TCP's two, which attribution reads for TCP drops. */
export type SocketTable = 'udp' | 'udp6' | 'raw' | 'raw6' | 'icmp' | 'icmp6' | 'tcp' | 'tcp6';
export const SOCKET_TABLES: readonly SocketTable[] = ['udp', 'udp6', 'raw', 'raw6', 'icmp', 'icmp6'];
export const TCP_TABLES: readonly SocketTable[] = ['tcp', 'tcp6'];

export interface SocketRow {
  table: SocketTable;
  /** In raw tables `port` is the protocol number (inet_num), e.g. 1 for ICMP. */
  local: Endpoint;
  remote: Endpoint;
  /** formatSockaddr(local): `127.0.0.1:5000`, `[::1]:5000`, `[::ffff:127.0.0.1]:5000`. */
  localText: string;
  remoteText: string;
  /** sk_state, printed in hex: 7 = TCP_CLOSE (unconnected), 1 = TCP_ESTABLISHED (connected). */
  state: number;
  /** Bytes: sk_wmem_alloc and sk_rmem_alloc (UDP: rx_queue is the receive queue's memory). */
  tx_queue: number;
  rx_queue: number;
  /** The socket's uid, as seen from the reader's user namespace. */
  uid: number;
  /** Socket inode: unique system-wide; /proc/PID/fd links read `socket:[inode]`. */
  inode: number;
  /** sk_refcnt. */
  ref: number;
  /**
   * The `sk` address as printed (%pK): a hash with kptr_restrict=0, the real address with
   * kptr_restrict=1 for root (then it equals kfree_skb's rx_sk), zeros otherwise.
   */
  pointer: string;
  /**
   * sk_drops. undefined when the line has no such column (pre-2.6.34 kernels, or a layout rxtrace
   * does not know): "unknown" must not read as "no drops".
   */
  drops: number | undefined;
  /** sk_rcvbuf, where the reader knows it (sock_diag SKMEMINFO); /proc tables do not show it. */
  rcvbuf?: number;
}

export interface SocketTableParseOptions {
  /** Name used in errors; defaults to `/proc/net/<table>`. */
  file?: string;
  /** Byte order of the machine that printed the table; defaults to this host's. */
  endian?: Endianness;
  /**
   * Whether column 13 is sk_drops (default true). In /proc/net/tcp it is the retransmit timeout
   * (icsk_rto): parseTcpTable says false, and its rows carry no drops.
   */
  dropsColumn?: boolean;
}

const IPV6_TABLES = new Set<SocketTable>(['udp6', 'raw6', 'icmp6', 'tcp6']);
const SL = /^[0-9]+:$/;
const HEX = /^[0-9A-Fa-f]{1,16}$/;
const DEC = /^[0-9]{1,15}$/;
const SDEC = /^-?[0-9]{1,15}$/;
const QUEUES = /^([0-9A-Fa-f]{1,8}):([0-9A-Fa-f]{1,8})$/;
/** sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer [drops] */
const MIN_TOKENS = 12;

/** Parses the text of one socket table. Throws ProcParseError on a line it cannot read. */
export function parseSocketTable(text: string, table: SocketTable, opts: SocketTableParseOptions = {}): SocketRow[] {
  const file = opts.file ?? `/proc/net/${table}`;
  const endian = opts.endian ?? HOST_ENDIANNESS;
  const v6 = IPV6_TABLES.has(table);
  const rows: SocketRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const t = line.trim().split(/\s+/);
    if (t[0] === '') continue; // blank line
    if (t[0] === 'sl') continue; // header
    const fail = (msg: string): ProcParseError => new ProcParseError(file, i + 1, msg, line);
    if (t.length < MIN_TOKENS) throw fail(`expected at least ${MIN_TOKENS} columns, got ${t.length}`);
    if (!SL.test(t[0])) throw fail('expected a slot number `N:` in the first column');
    const endpoint = (tok: string): Endpoint => {
      let ep;
      try {
        ep = decodeProcEndpoint(tok, endian);
      } catch (e) {
        if (e instanceof ProcParseError) throw fail(e.message);
        throw e;
      }
      if ((ep.family === 6) !== v6) throw fail(`an IPv${ep.family} address in ${table}`);
      return { addr: ep.addr, port: ep.port };
    };
    const local = endpoint(t[1]);
    const remote = endpoint(t[2]);
    const q = QUEUES.exec(t[4]);
    if (!HEX.test(t[3])) throw fail('bad st');
    if (!q) throw fail('bad tx_queue:rx_queue');
    if (!DEC.test(t[7])) throw fail('bad uid');
    // The inode is an identity, so it must be exact: no precision loss above 2^53.
    if (!/^[0-9]+$/.test(t[9]) || !Number.isSafeInteger(Number(t[9]))) throw fail('bad inode');
    if (!SDEC.test(t[10])) throw fail('bad ref');
    if (!HEX.test(t[11])) throw fail('bad pointer');
    let drops: number | undefined;
    if (t.length > MIN_TOKENS && opts.dropsColumn !== false) {
      if (!DEC.test(t[12])) throw fail('bad drops');
      drops = Number(t[12]);
    }
    rows.push({
      table,
      local,
      remote,
      localText: formatSockaddr(local.addr, local.port),
      remoteText: formatSockaddr(remote.addr, remote.port),
      state: parseInt(t[3], 16),
      tx_queue: parseInt(q[1], 16),
      rx_queue: parseInt(q[2], 16),
      uid: Number(t[7]),
      inode: Number(t[9]),
      ref: Number(t[10]),
      pointer: t[11],
      drops,
    });
  }
  return rows;
}

/**
 * Reads `/proc/net/<table>`, or `/proc/<pid>/net/<table>` to see the network namespace of `pid`.
 * A table the kernel does not have (no IPv6, no ping sockets) gives []. When `pid` is given and
 * the process has gone, throws RxtraceError `ESRCH` rather than report an empty namespace.
 */
export async function readSocketTable(table: SocketTable, procRoot = '/proc', pid?: number): Promise<SocketRow[]> {
  const path = procNetPath(table, procRoot, pid);
  const text = readTextIfExists(path);
  if (text !== undefined) return table === 'tcp' || table === 'tcp6' ? parseTcpTable(text, table, { file: path }) : parseSocketTable(text, table, { file: path });
  if (pid !== undefined && !(await exists(`${procRoot}/${pid}/net`))) {
    throw new RxtraceError('ESRCH', `process ${pid} has exited; cannot read its network namespace`, {
      path,
      hint: 'read the table through another process of that namespace',
    });
  }
  return [];
}

async function exists(path: string): Promise<boolean> {
  try {
    statSync(path); // sync, as readTextIfExists: see read.ts
    return true;
  } catch {
    return false;
  }
}

/** Names of sk_state values that appear in these tables (the TCP state names, as ss prints). */
export const SOCKET_STATES: Readonly<Record<number, string>> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'NEW_SYN_RECV',
};
