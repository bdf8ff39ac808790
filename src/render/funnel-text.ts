// `rxtrace stats --format text`: one compact funnel per interval, a line per layer and entity
// (device, CPU, protocol, socket) holding its non-zero counters under the kernel's names. Rows
// and counters that are zero are hidden unless `all`; the layer that loses the most is marked.
import type { FunnelInterval, LayerName } from '../counters/funnel.js';
import { compact, ownersText } from './units.js';
import { TCPEXT_RECEIVE } from '../procnet/netstat.js';

export interface FunnelTextOptions {
  /** Show zero counters and all-zero rows too. */
  all?: boolean;
}

const NIC_STATS = [
  'rx_packets', 'rx_dropped', 'rx_missed_errors', 'rx_fifo_errors', 'rx_over_errors', 'rx_errors',
  'rx_crc_errors', 'rx_frame_errors', 'rx_length_errors', 'rx_nohandler',
];
const NIC_DEV = ['rx_packets', 'rx_dropped', 'rx_fifo_errors', 'rx_frame_errors', 'rx_errors'];
const SOFTNET = ['processed', 'dropped', 'time_squeeze', 'received_rps', 'flow_limit_count'];
const IP = ['InReceives', 'InDelivers', 'InDiscards', 'InHdrErrors', 'InAddrErrors', 'InUnknownProtos'];
const IP6 = ['InReceives', 'InDelivers', 'InDiscards', 'InHdrErrors', 'InAddrErrors', 'InUnknownProtos', 'InNoRoutes', 'InTruncatedPkts'];
const UDP = ['InDatagrams', 'NoPorts', 'InErrors', 'RcvbufErrors', 'MemErrors', 'InCsumErrors', 'IgnoredMulti'];

function pairs(src: Readonly<Record<string, number>> | undefined, names: readonly string[], all: boolean, prefix = ''): string {
  if (!src) return '';
  const out: string[] = [];
  for (const n of names) {
    const v = src[prefix + n];
    if (v === undefined || (v === 0 && !all)) continue;
    out.push(`${n} ${v}`);
  }
  return out.join('  ');
}

function pct(part: number, whole: number): string {
  const p = (100 * part) / whole;
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toPrecision(2)} %`;
}

export function renderFunnelText(iv: FunnelInterval, opts: FunnelTextOptions = {}): string[] {
  const all = opts.all === true;
  const lines: string[] = [];
  const dropsOf = (l: LayerName): string => {
    const f = iv.funnel.find((x) => x.layer === l)!;
    return `${compact(f.drops_per_s)}/s`;
  };
  lines.push(`${iv.time}  interval ${iv.interval.toFixed(3)} s  ${iv.losing ? `losing packets at: ${iv.losing} (${dropsOf(iv.losing)})` : 'no drops'}`);
  const rows: [LayerName | 'tcp' | 'reconcile' | 'note', string, string][] = [];
  const add = (layer: LayerName | 'tcp' | 'reconcile' | 'note', entity: string, text: string): void => {
    if (text !== '') rows.push([layer, entity, text]);
  };

  for (const dev of Object.keys(iv.delta.dev).sort()) {
    const st = iv.delta.statistics[dev];
    add('nic', dev, st && st.rx_dropped !== undefined ? pairs(st, NIC_STATS, all) : pairs(iv.delta.dev[dev], NIC_DEV, all));
  }
  const sn = iv.delta.softnet_stat;
  let backlog = 0;
  let haveBacklog = false;
  for (const g of Object.values(iv.gauges.softnet_stat)) {
    if (g.backlog_len !== undefined) {
      backlog += g.backlog_len;
      haveBacklog = true;
    }
  }
  const backlogText = haveBacklog && (backlog > 0 || all) ? `  (backlog_len now ${backlog})` : '';
  const total = pairs(sn.total, SOFTNET, all);
  add('softnet', 'total', total === '' ? '' : total + backlogText);
  for (const cpu of Object.keys(sn.cpu).sort((a, b) => Number(a) - Number(b))) add('softnet', `cpu${cpu}`, pairs(sn.cpu[cpu], SOFTNET, all));
  add('ip', 'Ip', pairs(iv.delta.snmp.Ip, IP, all));
  add('ip', 'Ip6', pairs(iv.delta.snmp6, IP6, all, 'Ip6'));
  add('udp', 'Udp', pairs(iv.delta.snmp.Udp, UDP, all));
  add('udp', 'UdpLite', pairs(iv.delta.snmp.UdpLite, UDP, all));
  add('udp', 'Udp6', pairs(iv.delta.snmp6, UDP, all, 'Udp6'));
  add('udp', 'UdpLite6', pairs(iv.delta.snmp6, UDP, all, 'UdpLite6'));
  const mem = iv.gauges.sockstat.UDP?.mem;
  const max = iv.gauges.udp_mem?.[2];
  if (mem !== undefined && (mem > 0 || all)) {
    const kib = Math.round((mem * iv.gauges.page_size) / 1024);
    const limit = iv.gauges.udp_mem ? `; udp_mem ${iv.gauges.udp_mem.join(' ')} pages${max ? `, ${pct(mem, max)} of max` : ''}` : '';
    add('udp', 'memory', `UDP mem ${mem} pages (${kib} KiB)${limit}`);
  }
  for (const s of iv.delta.sockets) {
    const g = iv.gauges.sockets[String(s.inode)];
    add('socket', `${s.table} ${s.local}`, `drops ${s.drops}  rx_queue ${g?.rx_queue ?? '?'}  inode ${s.inode}  netns ${s.netns ?? '?'}  ${ownersText(s.owners)}`);
  }
  const tcp = iv.tcp;
  if (tcp && (tcp.drops > 0 || all)) {
    add('tcp', 'TcpExt', `${tcp.in !== null ? `InSegs ${tcp.in}  ` : ''}drops ${tcp.drops}  ${pairs(tcp.TcpExt, TCPEXT_RECEIVE, all)}`.trimEnd());
  }
  if (tcp && tcp.socket_drops !== null && (tcp.socket_drops > 0 || all)) {
    // sk_drops also counts what TcpExt has no drop counter for (checksum, filter, MD5…).
    add('tcp', 'sockets', `TCP socket drops ${tcp.socket_drops} (sock_diag) vs TcpExt drops ${tcp.drops}`);
  }
  for (const r of iv.reconcile) {
    if (!all && !r.socket_drops && !r.RcvbufErrors && !r.MemErrors && !r.sockets_closed) continue;
    const ns = `netns ${r.netns ?? '?'}${r.self ? ' (own)' : ''}`;
    const range = r.kernel_range && r.kernel_range[0] !== r.kernel_range[1] ? ` (${r.kernel_range[0]}..${r.kernel_range[1]} when the sockets were read)` : '';
    const kernel = r.RcvbufErrors === null ? 'RcvbufErrors + MemErrors unknown' : `RcvbufErrors ${r.RcvbufErrors} + MemErrors ${r.MemErrors}${range}`;
    const verdict = r.unexplained === null ? '' : r.unexplained === 0 ? ', all explained' : `, unexplained ${r.unexplained > 0 ? '+' : ''}${r.unexplained}`;
    const closed = r.sockets_closed ? ` (${r.sockets_closed} UDP sockets closed meanwhile)` : '';
    add('reconcile', ns, `socket drops ${r.socket_drops} vs ${kernel}${verdict}${closed}`);
  }
  if (iv.notes) {
    const n = iv.notes;
    if (n.resets.length) add('note', 'reset', `counters went down (delta = new value): ${n.resets.slice(0, 8).join(' ')}${n.resets.length > 8 ? ' …' : ''}`);
    const ents = [...n.appeared.map((a) => `+${a}`), ...n.vanished.map((v) => `-${v}`)];
    if (ents.length) add('note', 'changed', ents.slice(0, 8).join(' ') + (ents.length > 8 ? ' …' : ''));
  }
  for (const e of iv.errors ?? []) add('note', 'error', `${e.source}: ${e.message}`);

  const ew = Math.min(28, Math.max(0, ...rows.map((r) => r[1].length)));
  let last = '';
  for (const [layer, entity, text] of rows) {
    const mark = layer === iv.losing && layer !== last ? '>' : ' ';
    const label = layer === last ? '' : layer;
    last = layer;
    lines.push(`${mark} ${label.padEnd(9)} ${entity.padEnd(ew)}  ${text}`);
  }
  return lines;
}
