// /proc/net/dev: per-interface counters of the reader's network namespace. Several columns
// are sums of rtnl_link_stats64 fields (see NetDevRow); /sys/class/net/<dev>/statistics has
// them one by one (sysfs-stats.ts).
import { ProcParseError } from './errors.js';
import { dict, procNetPath, readTextIfExists } from './read.js';

/** Named after struct rtnl_link_stats64, in the order of the file's 16 columns. */
export interface NetDevRow {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  /** rx_dropped + rx_missed_errors (the file's `drop` column is the sum). */
  rx_dropped: number;
  rx_fifo_errors: number;
  /** rx_length_errors + rx_over_errors + rx_crc_errors + rx_frame_errors. */
  rx_frame_errors: number;
  rx_compressed: number;
  multicast: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
  tx_fifo_errors: number;
  collisions: number;
  /** tx_carrier_errors + tx_aborted_errors + tx_window_errors + tx_heartbeat_errors. */
  tx_carrier_errors: number;
  tx_compressed: number;
}

export const NETDEV_COLUMNS: readonly (keyof NetDevRow)[] = [
  'rx_bytes', 'rx_packets', 'rx_errors', 'rx_dropped', 'rx_fifo_errors', 'rx_frame_errors', 'rx_compressed', 'multicast',
  'tx_bytes', 'tx_packets', 'tx_errors', 'tx_dropped', 'tx_fifo_errors', 'collisions', 'tx_carrier_errors', 'tx_compressed',
];

const U64 = /^[0-9]{1,20}$/;

/** Device name → counters. Counters above 2^53 lose precision (see snmp.ts). */
export function parseNetDev(text: string, opts: { file?: string } = {}): Record<string, NetDevRow> {
  const file = opts.file ?? '/proc/net/dev';
  const out = dict<NetDevRow>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    // Device names cannot contain ':' or spaces (dev_valid_name), so the first ':' ends the
    // name, and old kernels' `eth0:123` (no space after the colon) splits the same way.
    const colon = line.indexOf(':');
    if (colon < 0) {
      if (line.trim() === '' || line.includes('|')) continue; // blank, or one of the two headers
      throw new ProcParseError(file, i + 1, 'expected `name: counters…`', line);
    }
    const name = line.slice(0, colon).trim();
    if (name === '' || /\s/.test(name)) throw new ProcParseError(file, i + 1, 'bad device name', line);
    const t = line.slice(colon + 1).trim().split(/\s+/);
    if (t.length < NETDEV_COLUMNS.length) {
      throw new ProcParseError(file, i + 1, `expected ${NETDEV_COLUMNS.length} counters, got ${t.length}`, line);
    }
    const row = {} as NetDevRow;
    for (let k = 0; k < NETDEV_COLUMNS.length; k++) {
      if (!U64.test(t[k])) throw new ProcParseError(file, i + 1, `bad ${NETDEV_COLUMNS[k]}`, line);
      row[NETDEV_COLUMNS[k]] = Number(t[k]);
    }
    out[name] = row;
  }
  return out;
}

/** /proc/net/dev (of `pid`'s network namespace when given). */
export async function readNetDev(procRoot = '/proc', pid?: number): Promise<Record<string, NetDevRow>> {
  const path = procNetPath('dev', procRoot, pid);
  const text = readTextIfExists(path);
  return text === undefined ? dict() : parseNetDev(text, { file: path });
}
