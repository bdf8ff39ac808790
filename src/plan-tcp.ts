// `rxtrace trace --proto tcp`: TCP receive drops have no event of their own like UDP's; they are
// skb:kfree_skb with a TCP receive reason, filtered in the kernel to the reasons this kernel
// names in `print fmt`, plus sock:sock_exceed_buf_limit for tcp_mem. Listen overflows fire no
// drop event at all (the SYN is consumed): trace reports them from TcpExt in its summary.
import type { EventSchema } from './format/schema.js';

export const TCP_EVENTS = ['skb:kfree_skb', 'sock:sock_exceed_buf_limit'];

/**
 * The receive-side reasons a TCP drop is freed with (include/net/dropreason-core.h); each kernel
 * has the ones it has (TCP_LISTEN_OVERFLOW is newer than most). PROTO_MEM and SOCKET_RCVBUFF
 * are shared with UDP, raw and ping sockets.
 */
export const TCP_RECEIVE_REASONS = [
  'SOCKET_BACKLOG',
  'TCP_ZEROWINDOW',
  'TCP_OFO_QUEUE_PRUNE',
  'TCP_OFO_DROP',
  'TCP_OFOMERGE',
  'PROTO_MEM',
  'TCP_LISTEN_OVERFLOW',
  'SOCKET_RCVBUFF',
];

/** The TCP receive reasons this kfree_skb layout names (in the order above); [] before 5.17. */
export function tcpReasons(kfree: EventSchema): string[] {
  const names = new Set(kfree.symbols.get('reason')?.values() ?? []);
  return TCP_RECEIVE_REASONS.filter((r) => names.has(r));
}
