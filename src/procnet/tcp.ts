// /proc/net/tcp and /proc/net/tcp6: the fallback TCP source when sock_diag cannot be used
// (RXTRACE_SOCKET_SOURCE=proc, no tcp_diag). The kernel prints the same first twelve columns as
// the UDP tables (get_tcp4_sock: sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref
// pointer), then rto ato qack cwnd ssthresh for a full socket, nothing more for TIME_WAIT and
// request sockets. There is no sk_drops column (the 13th is icsk_rto): rows carry drops
// undefined, never 0. For a listener rx_queue is its accept queue (sk_ack_backlog) and tx_queue
// its backlog (sk_max_ack_backlog), as ss prints them; otherwise unread and unacked bytes.
import { parseSocketTable, type SocketRow, type SocketTableParseOptions } from './sockets.js';

/** Parses /proc/net/tcp or tcp6. Throws ProcParseError on a line it cannot read. */
export function parseTcpTable(text: string, table: 'tcp' | 'tcp6', opts: Omit<SocketTableParseOptions, 'dropsColumn'> = {}): SocketRow[] {
  return parseSocketTable(text, table, { ...opts, dropsColumn: false });
}
