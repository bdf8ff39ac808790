// IPv6 UDP drops before 6.5: __udp6 queueing never called udp_fail_queue_rcv_skb (the call came
// with "udp6: add a missing call into udp_fail_queue_rcv_skb tracepoint", 6.5), so on such a
// kernel the default event set sees none of them. kfree_skb does: the plan adds it, filtered in
// the kernel to IPv6 packets (ETH_P_IPV6) freed for a socket reason, and says so once.
import { release } from 'node:os';
import type { EventSchema } from './format/schema.js';
import { reasonFilter } from './filter.js';

export const ETH_P_IPV6 = 34525;
/** The reasons __udpv6_queue_rcv_skb frees with: rcvbuf full, protocol memory (5.18+). */
export const UDP6_REASONS = ['SOCKET_RCVBUFF', 'PROTO_MEM'];

/**
 * Whether IPv6 UDP drops fire udp_fail_queue_rcv_skb here. The 6.10 layout (dport, family) is
 * newer than 6.5, so it settles it; otherwise the release decides (a distribution backport of
 * the fix would be missed: rxtrace then traces kfree_skb too, which costs events, not answers).
 */
export function udp6EventFires(udpSchema: EventSchema | undefined, kernelRelease = release()): boolean {
  if (udpSchema?.fields.some((f) => f.name === 'dport' || f.name === 'family')) return true;
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return true; // unknown: do not add events on a guess
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > 6 || (maj === 6 && min >= 5);
}

/**
 * Why kfree_skb cannot see IPv6 UDP drops here: no reasons at all (before 5.17), or an early set
 * without these two (5.15's stable backport, 5.15.58+, names 12 reasons and neither of them).
 */
export function kfreeLacksUdp6Reasons(kfree: EventSchema): string {
  return kfree.symbols.get('reason')?.size ? `names neither ${UDP6_REASONS.join(' nor ')} among its drop reasons` : 'has no drop reasons';
}

/** The kernel filter for kfree_skb: IPv6 packets freed for the UDP reasons this kernel names. */
export function udp6KfreeFilter(kfree: EventSchema): string | undefined {
  const table = kfree.symbols.get('reason');
  if (!table || !kfree.fields.some((f) => f.name === 'protocol')) return undefined;
  const names = new Set(table.values());
  const reasons = UDP6_REASONS.filter((r) => names.has(r));
  if (reasons.length === 0) return undefined;
  return `protocol == ${ETH_P_IPV6} && (${reasonFilter(kfree, reasons)})`;
}
