// Doctor: whether IPv6 UDP drops fire udp_fail_queue_rcv_skb on this kernel (6.5+), and if not,
// how rxtrace still sees them (skb:kfree_skb filtered to IPv6 socket-reason drops; plan-udp6.ts).
import { release } from 'node:os';
import type { EventSchema } from '../format/schema.js';
import { kfreeLacksUdp6Reasons, udp6EventFires, udp6KfreeFilter } from '../plan-udp6.js';
import type { DoctorCheck } from './types.js';

export function udp6Check(udp: EventSchema | undefined, kfree: EventSchema | null | undefined, kernelRelease = release()): DoctorCheck {
  const check = 'udp6 drop event';
  if (!udp) return { check, status: 'info', detail: 'not checked: udp:udp_fail_queue_rcv_skb could not be read (see its check)' };
  if (udp6EventFires(udp, kernelRelease)) {
    return { check, status: 'ok', detail: `IPv6 UDP drops fire udp:udp_fail_queue_rcv_skb here (Linux ${kernelRelease}; since 6.5)`, data: { udp6Event: true } };
  }
  const filter = kfree ? udp6KfreeFilter(kfree) : undefined;
  if (filter) {
    return {
      check,
      status: 'warn',
      detail: `IPv6 UDP drops fire no udp:udp_fail_queue_rcv_skb on Linux ${kernelRelease} (the udp6 call came in 6.5): rxtrace trace adds skb:kfree_skb with "${filter}" and matches those drops by whose drops rose`,
      hint: 'nothing to do; an IPv6 drop is matched to its socket unless two IPv6 sockets drop at once (ambiguous), or it is a protocol-memory drop (no socket)',
      data: { udp6Event: false, kfreeFilter: filter },
    };
  }
  return {
    check,
    status: 'warn',
    detail: `IPv6 UDP drops fire no udp:udp_fail_queue_rcv_skb on Linux ${kernelRelease} (before 6.5), and ${kfree ? `skb:kfree_skb ${kfreeLacksUdp6Reasons(kfree)} to see them by` : 'there is no skb:kfree_skb to see them by'}`,
    hint: 'IPv6 UDP drops show only in the counters here (rxtrace stats: Udp6RcvbufErrors, the sockets\' drops)',
    data: { udp6Event: false },
  };
}
