// Metric families of the TCP receive path: the TcpExt receive-drop counters of /proc/net/netstat
// (rxtrace's network namespace), named rxtrace_tcpext_<kernel name in snake case>_total so they
// can be grepped in the kernel source. Listeners' own drops (listen overflows) are in
// rxtrace_socket_drops_total{table="tcp"}, from sock_diag.
import type { CounterSnapshot } from '../counters/snapshot.js';
import { TCPEXT_RECEIVE } from '../procnet/netstat.js';
import { snakeCase, type FamilyDef } from './families.js';

const HELP: Record<(typeof TCPEXT_RECEIVE)[number], string> = {
  TCPRcvQDrop: 'TCP data dropped for want of receive memory (kfree_skb PROTO_MEM).',
  TCPBacklogDrop: 'TCP segments dropped because the socket backlog was full while the socket was owned by the application.',
  TCPZeroWindowDrop: 'TCP data dropped: it arrived into a zero window.',
  TCPOFODrop: 'TCP out-of-order data dropped for want of memory.',
  PruneCalled: 'Times a TCP receive queue was pruned for memory.',
  RcvPruned: 'Times pruning a TCP receive queue could not make room.',
  OfoPruned: 'Times a TCP out-of-order queue was pruned.',
  ListenOverflows: 'SYNs or final ACKs at a listener whose accept queue was full (no per-packet drop event).',
  ListenDrops: 'Every drop at a TCP listener (includes ListenOverflows and TCPReqQFullDrop).',
  TCPReqQFullDrop: 'SYNs dropped because the SYN queue was full and syncookies were off.',
  PFMemallocDrop: 'Packets from emergency memory reserves dropped for a socket not allowed them.',
};

export function tcpFamilies(): FamilyDef[] {
  return TCPEXT_RECEIVE.map((name) => ({
    name: `rxtrace_tcpext_${snakeCase(name)}_total`,
    help: `${HELP[name]} From /proc/net/netstat TcpExt (${name}), rxtrace's network namespace.`,
    type: 'counter' as const,
    labelNames: [],
    read: (snap: CounterSnapshot) => {
      const v = snap.netstat?.TcpExt?.[name];
      return v === undefined ? [] : [{ labels: {}, value: v }];
    },
  }));
}
