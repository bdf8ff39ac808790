// /proc/net/softnet_stat: per-CPU receive backlog counters (struct softnet_data), in hex.
// The column count depends on the kernel: 9 (before 2.6.35), 10 (+received_rps, before 3.11),
// 11 (+flow_limit_count, ≤ 5.9), 13 (5.10+: backlog_len, cpu), 15 (6.4+: input_pkt_queue_len,
// process_queue_len). Columns are read by position; a column the kernel does not print is
// absent from the row (not 0), and anything past the 15th is ignored, so a new kernel's extra
// column does not break us.
import { ProcParseError } from './errors.js';
import { procNetPath, readTextIfExists } from './read.js';

export interface SoftnetRow {
  /**
   * The CPU number: from the `cpu` column (5.10+). On older layouts it is the line index,
   * which is wrong when a CPU below the last one is offline (the kernel skips offline CPUs).
   */
  cpu: number;
  /** True when `cpu` came from the kernel's column, false when it is the line index. */
  cpu_exact: boolean;
  /** Packets taken off the backlog / processed by NAPI on this CPU. */
  processed: number;
  /** Packets dropped because the backlog was full (netdev_max_backlog) or flow limit hit. */
  dropped: number;
  /** net_rx_action ran out of budget or time with work left (netdev_budget[_usecs]). */
  time_squeeze: number;
  /** RPS inter-processor interrupts received (column 10: absent before 2.6.35). */
  received_rps?: number;
  /** Packets dropped by the flow limit (net.core.flow_limit_*) (column 11: absent before 3.11). */
  flow_limit_count?: number;
  /** input_pkt_queue_len + process_queue_len, at read time (5.10+). */
  backlog_len?: number;
  /** 6.4+. */
  input_pkt_queue_len?: number;
  /** 6.4+. */
  process_queue_len?: number;
}

const U32HEX = /^[0-9A-Fa-f]{1,8}$/;
const MIN_COLUMNS = 9;

/** /proc/net/softnet_stat text → one row per line (per online CPU). Throws ProcParseError. */
export function parseSoftnetStat(text: string, opts: { file?: string } = {}): SoftnetRow[] {
  const file = opts.file ?? '/proc/net/softnet_stat';
  const rows: SoftnetRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim().split(/\s+/);
    if (t[0] === '') continue;
    if (t.length < MIN_COLUMNS) {
      throw new ProcParseError(file, i + 1, `expected at least ${MIN_COLUMNS} columns, got ${t.length}`, lines[i]);
    }
    const n = Math.min(t.length, 15);
    const v: number[] = [];
    for (let k = 0; k < n; k++) {
      if (!U32HEX.test(t[k])) throw new ProcParseError(file, i + 1, `column ${k + 1} is not a u32 in hex`, lines[i]);
      v.push(parseInt(t[k], 16));
    }
    const row: SoftnetRow = {
      cpu: n >= 13 ? v[12] : rows.length,
      cpu_exact: n >= 13,
      processed: v[0],
      dropped: v[1],
      time_squeeze: v[2],
    };
    if (n >= 10) row.received_rps = v[9];
    if (n >= 11) row.flow_limit_count = v[10];
    if (n >= 12) row.backlog_len = v[11];
    if (n >= 15) {
      row.input_pkt_queue_len = v[13];
      row.process_queue_len = v[14];
    }
    rows.push(row);
  }
  return rows;
}

/** /proc/net/softnet_stat. The counters are global: every network namespace sees the same. */
export async function readSoftnetStat(procRoot = '/proc'): Promise<SoftnetRow[]> {
  const path = procNetPath('softnet_stat', procRoot);
  const text = readTextIfExists(path);
  return text === undefined ? [] : parseSoftnetStat(text, { file: path });
}
