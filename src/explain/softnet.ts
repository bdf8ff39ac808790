// The softnet backlog (per CPU, before IP): a packet is dropped when the CPU's backlog already
// holds net.core.netdev_max_backlog packets (softnet_stat `dropped`); `time_squeeze` counts the
// times a softirq run ended with work left because net.core.netdev_budget packets or
// netdev_budget_usecs passed. When one CPU takes most of the packets, RPS (or RSS on the NIC)
// would spread them: a bigger backlog on one CPU only delays the same overload.
import { sysctlFix } from './format.js';
import type { ExplainInput, Finding, Fix } from './types.js';

/** One CPU with at least this share of the packets, on a machine with more than one, is an imbalance. */
const HOT_SHARE = 0.7;

function allCpuMask(cpus: number): string {
  // rps_cpus is a hex mask in 32-bit groups separated by commas.
  const groups: string[] = [];
  for (let left = cpus; left > 0; left -= 32) {
    const n = Math.min(32, left);
    groups.unshift((n === 32 ? 0xffffffff : 2 ** n - 1).toString(16));
  }
  return groups.join(',') || '1';
}

export function softnetFindings(input: ExplainInput): Finding[] {
  const out: Finding[] = [];
  const sn = input.interval.delta.softnet_stat;
  const max = input.sysctl['net.core.netdev_max_backlog'];
  const perCpu = Object.entries(sn.cpu).map(([cpu, d]) => ({ cpu: Number(cpu), ...d }));
  const hot = perCpu.reduce<(typeof perCpu)[number] | undefined>((a, c) => (a === undefined || c.processed > a.processed ? c : a), undefined);
  const share = hot && sn.total.processed > 0 ? hot.processed / sn.total.processed : 0;
  const imbalanced = input.cpus > 1 && perCpu.length > 1 && share >= HOT_SHARE;
  if (sn.total.dropped > 0) {
    const fixes: Fix[] = [];
    if (max !== undefined) fixes.push(sysctlFix('net.core.netdev_max_backlog', max, Math.max(max * 2, 2000), 'let each CPU\'s backlog hold more packets'));
    if (imbalanced) fixes.push({ kind: 'app', text: `spread the load first: cpu${hot!.cpu} takes ${Math.round(share * 100)} % of the packets (see the rps_imbalance finding)` });
    fixes.push({ kind: 'app', text: 'or make the softirq faster: fewer netfilter rules on the path, GRO on (ethtool -K DEV gro on)' });
    out.push({
      place: 'softnet',
      cause: 'netdev_max_backlog',
      drops: sn.total.dropped,
      socket: null,
      evidence: {
        dropped: sn.total.dropped,
        processed: sn.total.processed,
        per_cpu: Object.fromEntries(perCpu.filter((c) => c.dropped > 0 || c.processed > 0).map((c) => [c.cpu, { processed: c.processed, dropped: c.dropped }])),
        'net.core.netdev_max_backlog': max ?? null,
        backlog_len: input.interval.gauges.softnet_stat,
      },
      fixes,
      summary: `the softnet backlog overflowed: ${sn.total.dropped} packets dropped before IP because a CPU's backlog held net.core.netdev_max_backlog (${max ?? '?'}) packets`,
    });
  }
  if (sn.total.time_squeeze > 0) {
    const budget = input.sysctl['net.core.netdev_budget'];
    const usecs = input.sysctl['net.core.netdev_budget_usecs'];
    const fixes: Fix[] = [];
    if (budget !== undefined) fixes.push(sysctlFix('net.core.netdev_budget', budget, budget * 2, 'let one softirq run handle more packets'));
    if (usecs !== undefined) fixes.push(sysctlFix('net.core.netdev_budget_usecs', usecs, usecs * 2, 'and run longer'));
    out.push({
      place: 'softnet',
      cause: 'softnet_budget',
      drops: 0,
      socket: null,
      evidence: {
        time_squeeze: sn.total.time_squeeze,
        per_cpu: Object.fromEntries(perCpu.filter((c) => c.time_squeeze > 0).map((c) => [c.cpu, c.time_squeeze])),
        'net.core.netdev_budget': budget ?? null,
        'net.core.netdev_budget_usecs': usecs ?? null,
      },
      fixes,
      summary: `softirq runs ran out of budget ${sn.total.time_squeeze} times (time_squeeze): packets wait longer in the NIC ring and the backlog, which overflow next`,
    });
  }
  if (imbalanced && (sn.total.dropped > 0 || sn.total.time_squeeze > 0)) {
    const mask = allCpuMask(input.cpus);
    out.push({
      place: 'softnet',
      cause: 'rps_imbalance',
      drops: hot!.dropped,
      socket: null,
      evidence: { cpu: hot!.cpu, share: Math.round(share * 1000) / 1000, processed: hot!.processed, dropped: hot!.dropped, total_processed: sn.total.processed, cpus: input.cpus },
      fixes: [
        { kind: 'ethtool', device: 'DEV', command: 'ethtool -L DEV combined N', text: 'with a multi-queue NIC, use more RSS queues: ethtool -l DEV shows the maximum, ethtool -L DEV combined N sets it' },
        {
          kind: 'sysfs',
          path: '/sys/class/net/DEV/queues/rx-*/rps_cpus',
          value: mask,
          command: `for q in /sys/class/net/DEV/queues/rx-*/rps_cpus; do echo ${mask} > $q; done`,
          text: `or spread the packets in software with RPS over all ${input.cpus} CPUs (mask ${mask})`,
        },
      ],
      summary: `one CPU does the receive work: cpu${hot!.cpu} handled ${Math.round(share * 100)} % of the packets and dropped ${hot!.dropped}`,
    });
  }
  return out;
}
