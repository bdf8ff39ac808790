// IP: datagrams the IP layer discarded without an error in the packet (Ip InDiscards: no memory,
// a netfilter or policy drop on some kernels) or for a bad header or address (InHdrErrors,
// InAddrErrors: e.g. rp_filter, martians). Counted here so they are not blamed on a socket.
import type { ExplainInput, Finding } from './types.js';

export function ipFindings(input: ExplainInput): Finding[] {
  const ip = input.interval.delta.snmp.Ip ?? {};
  const ip6 = input.interval.delta.snmp6;
  const discards = (ip.InDiscards ?? 0) + (ip6.Ip6InDiscards ?? 0);
  const bad = (ip.InHdrErrors ?? 0) + (ip.InAddrErrors ?? 0) + (ip6.Ip6InHdrErrors ?? 0) + (ip6.Ip6InAddrErrors ?? 0);
  if (discards + bad <= 0) return [];
  return [
    {
      place: 'ip',
      cause: 'ip_discards',
      drops: discards + bad,
      socket: null,
      evidence: { InDiscards: ip.InDiscards ?? 0, InHdrErrors: ip.InHdrErrors ?? 0, InAddrErrors: ip.InAddrErrors ?? 0, Ip6InDiscards: ip6.Ip6InDiscards ?? 0, Ip6InHdrErrors: ip6.Ip6InHdrErrors ?? 0, Ip6InAddrErrors: ip6.Ip6InAddrErrors ?? 0 },
      fixes: [
        { kind: 'app', text: 'find the rule or check that drops them: rxtrace trace -e skb:kfree_skb --only names the reason of each drop (NETFILTER_DROP, IP_RPFILTER, IP_INHDR…)' },
      ],
      summary: `the IP layer dropped ${discards + bad} packets (InDiscards ${discards}, header or address errors ${bad}) before any socket`,
    },
  ];
}
