// The NIC ring: the card had no free descriptor for a packet (rx_missed_errors, rx_fifo_errors,
// rx_over_errors in /sys/class/net/DEV/statistics), so it never reached the kernel's softirq.
// A bigger ring (ethtool -G) absorbs bursts; more queues (RSS) or a faster softirq drain it.
import type { ExplainInput, Finding } from './types.js';

const RING = ['rx_missed_errors', 'rx_fifo_errors', 'rx_over_errors'] as const;

export function nicFindings(input: ExplainInput): Finding[] {
  const out: Finding[] = [];
  for (const [dev, d] of Object.entries(input.interval.delta.statistics)) {
    const counts = Object.fromEntries(RING.map((k) => [k, d[k] ?? 0]));
    // rx_over_errors often repeats rx_fifo_errors on the same drop: count the larger once.
    const drops = (d.rx_missed_errors ?? 0) + Math.max(d.rx_fifo_errors ?? 0, d.rx_over_errors ?? 0);
    if (drops <= 0) continue;
    out.push({
      place: 'nic',
      cause: 'nic_ring',
      drops,
      socket: null,
      evidence: { device: dev, ...counts },
      fixes: [
        { kind: 'ethtool', device: dev, command: `ethtool -G ${dev} rx 4096`, text: `grow the receive ring: ethtool -g ${dev} shows the current and maximum sizes; ethtool -G ${dev} rx <maximum>` },
        { kind: 'ethtool', device: dev, command: `ethtool -L ${dev} combined N`, text: `spread the load over more queues and CPUs: ethtool -l ${dev}, then ethtool -L ${dev} combined N` },
      ],
      summary: `the NIC ring of ${dev} overflowed: ${drops} packets dropped by the card before the kernel saw them`,
    });
  }
  return out;
}
