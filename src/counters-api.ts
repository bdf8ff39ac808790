// readCounters() for the library: the snapshot `rxtrace stats` takes (src/counters/snapshot.ts),
// under its public name and with its types, so there is one reader of the receive funnel.
import { readSnapshot } from './counters/snapshot.js';

export type { CounterSnapshot, SnapshotOptions as ReadCountersOptions, SourceError, NetnsSnmp } from './counters/snapshot.js';
export type { SoftnetRow } from './procnet/softnet.js';
export type { NetDevRow } from './procnet/netdev.js';
export type { SnmpCounters, Snmp6Counters } from './procnet/snmp.js';
export type { Sockstat, ProtoMem, MemLimits } from './procnet/sockstat.js';

/**
 * One read of every counter of the receive funnel, taken together, as the kernel reports them
 * (totals since boot, not rates):
 * - `softnet`: /proc/net/softnet_stat, one row per CPU (processed, dropped, time_squeeze…);
 * - `dev` and `statistics`: /proc/net/dev and /sys/class/net/DEV/statistics, per device;
 * - `snmp` (Ip, Udp, UdpLite… rows, e.g. `snmp.Udp.RcvbufErrors`) and `snmp6` (`Udp6RcvbufErrors`…);
 * - `sockstat` (`sockstat.UDP.mem`, in pages: × `pageSize`) and `protoMem.udp_mem` (min, pressure, max pages);
 * - `sockets`: every UDP, raw and ICMP socket of every network namespace, by inode, with owners
 *   (unless `{ sockets: false }`, which skips the /proc/PID/fd scan, the slow part).
 *
 * A source that cannot be read is listed in `errors` and left empty; the others are still read.
 * Two snapshots make an interval: subtract them yourself, or use `rxtrace stats`.
 *
 * @example
 * const c = await readCounters({ sockets: false });
 * console.log(c.snmp.Udp?.RcvbufErrors, c.softnet.map((r) => r.dropped));
 */
export const readCounters: typeof readSnapshot = readSnapshot;
