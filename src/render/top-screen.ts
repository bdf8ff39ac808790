// The `rxtrace top` screen as plain lines (no escape codes: the CLI adds emphasis and cursor
// moves): a header with the funnel's rates per layer, the layer that loses packets marked, then
// one row per socket with drops/s, drops, rx_queue against rcvbuf, a one-minute trend and owners.
// renderTopText is the same content for a pipe, printed once per interval.
import type { FunnelInterval, LayerName } from '../counters/funnel.js';
import { fillOf, type EventTotals, type SortKey, type TopRow } from '../counters/top-model.js';
import { compact, ownersText } from './units.js';

export { compact };

export interface TopView {
  /**
   * "counting" (kernel counters per tracepoint; per-socket rates from the sockets' drops
   * counters), "tracing" (every drop an event), each with the tracepoints, or "counters" with
   * why tracing is off.
   */
  mode: 'counting' | 'tracing' | 'counters';
  modeDetail: string;
  /** Counting mode: drops the kernel counted per tracepoint in the last interval. */
  counted?: ReadonlyMap<string, number>;
  interval?: FunnelInterval;
  events: EventTotals;
  rows: TopRow[];
  sort: SortKey;
  paused: boolean;
  /** Wall clock of the view. */
  now: Date;
  /** Block characters for the trend; ASCII otherwise. */
  utf8: boolean;
  /** Extra line under the header (a warning), if any. */
  message?: string;
  /** Sockets read but not listed: no drops ever, nothing queued (TopModel.idle). */
  idle?: number;
}

export interface Screen {
  lines: string[];
  /** Indexes into `lines` to show emphasised (the losing layer). */
  emphasis: number[];
  /** Index of the column-title line (shown in reverse video). */
  titles: number;
}

const BLOCKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const ASCII = ['.', ':', '-', '=', '+', '*', '#', '@'];
export const TREND_WIDTH = 12;

/** The last minute in TREND_WIDTH buckets (mean of each), scaled to the row's own peak; blank = no drops. */
export function sparkline(samples: readonly number[], utf8: boolean, width = TREND_WIDTH): string {
  const glyphs = utf8 ? BLOCKS : ASCII;
  if (samples.length === 0) return ' '.repeat(width);
  const buckets: number[] = [];
  const per = Math.max(1, samples.length / width);
  for (let b = 0; b < width; b++) {
    const from = Math.floor(b * per);
    const to = Math.min(samples.length, Math.floor((b + 1) * per));
    if (from >= samples.length || to <= from) {
      buckets.push(-1);
      continue;
    }
    let s = 0;
    for (let i = from; i < to; i++) s += samples[i];
    buckets.push(s / (to - from));
  }
  // Right-align: the newest sample is always the last character.
  const filled = buckets.filter((b) => b >= 0);
  const peak = Math.max(0, ...filled);
  const chars = filled.map((v) => (v <= 0 || peak <= 0 ? ' ' : glyphs[Math.min(glyphs.length - 1, Math.floor((v / peak) * (glyphs.length - 1) + 0.5))]));
  return ' '.repeat(width - chars.length) + chars.join('');
}

function fit(s: string, width: number): string {
  return s.length <= width ? s : width <= 1 ? s.slice(0, width) : `${s.slice(0, width - 1)}…`;
}

function layerLines(v: TopView): { lines: string[]; losingIndex: number } {
  const iv = v.interval;
  if (!iv) return { lines: ['collecting the first interval…'], losingIndex: -1 };
  const secs = iv.interval > 0 ? iv.interval : 1;
  const per = (n: number | undefined): string => compact((n ?? 0) / secs);
  const f = (l: LayerName) => iv.funnel.find((x) => x.layer === l)!;
  const d = iv.delta;
  const extra: Record<LayerName, string> = { nic: '', softnet: '', ip: '', udp: '', socket: '' };

  const devDrops = Object.entries(d.statistics)
    .map(([dev, s]) => [dev, (s.rx_dropped ?? 0) + (s.rx_missed_errors ?? 0) + (s.rx_errors ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3);
  extra.nic = devDrops.length ? devDrops.map(([dev, n]) => `${dev} ${per(n)}/s`).join('  ') : '';
  let backlog = 0;
  for (const g of Object.values(iv.gauges.softnet_stat)) backlog += g.backlog_len ?? 0;
  extra.softnet = `time_squeeze ${per(d.softnet_stat.total.time_squeeze)}/s  backlog_len ${backlog}`;
  const ip = d.snmp.Ip ?? {};
  extra.ip = `InDiscards ${per((ip.InDiscards ?? 0) + (d.snmp6.Ip6InDiscards ?? 0))}/s  InHdrErrors ${per((ip.InHdrErrors ?? 0) + (d.snmp6.Ip6InHdrErrors ?? 0))}/s`;
  const udp = d.snmp.Udp ?? {};
  const s6 = d.snmp6;
  const mem = iv.gauges.sockstat.UDP?.mem;
  const max = iv.gauges.udp_mem?.[2];
  extra.udp =
    `NoPorts ${per((udp.NoPorts ?? 0) + (s6.Udp6NoPorts ?? 0))}/s  InCsumErrors ${per((udp.InCsumErrors ?? 0) + (s6.Udp6InCsumErrors ?? 0))}/s` +
    (mem !== undefined ? `  mem ${mem}${max ? `/${max}` : ''} pages` : '');
  const rcv = (udp.RcvbufErrors ?? 0) + (s6.Udp6RcvbufErrors ?? 0);
  const memErr = (udp.MemErrors ?? 0) + (s6.Udp6MemErrors ?? 0);
  extra.socket = `RcvbufErrors ${per(rcv)}/s  MemErrors ${per(memErr)}/s`;
  if (v.mode === 'tracing') {
    const e = v.events;
    extra.socket += `  events ${per(e.attributed)}/s${e.global ? `  global ${per(e.global)}/s` : ''}${e.unattributed ? `  unattributed ${per(e.unattributed)}/s` : ''}  lost ${e.lost}${e.complete ? '' : ' (tracer behind: rates from counters)'}`;
  } else if (v.mode === 'counting' && v.counted) {
    extra.socket += `  counted ${[...v.counted].map(([ev, n]) => `${ev.split(':')[1] ?? ev} ${per(n)}/s`).join('  ')}`;
  }
  const lines = [`  LAYER      IN/s    DROPS/s`];
  let losingIndex = -1;
  for (const l of ['nic', 'softnet', 'ip', 'udp', 'socket'] as const) {
    const x = f(l);
    const losing = iv.losing === l;
    if (losing) losingIndex = lines.length;
    const inn = x.in_per_s === null ? '' : compact(x.in_per_s);
    lines.push(`${losing ? '>' : ' '} ${l.padEnd(8)} ${inn.padStart(7)} ${compact(x.drops_per_s).padStart(10)}${losing ? ' ◀ LOSING' : '         '}  ${extra[l]}`);
  }
  if (iv.tcp) {
    // TCP beside the UDP funnel: listen overflows fire no drop event, so these come from TcpExt.
    const t = iv.tcp;
    const x = t.TcpExt;
    lines.push(
      `  ${'tcp'.padEnd(8)} ${(t.in_per_s === null ? '' : compact(t.in_per_s)).padStart(7)} ${compact(t.drops_per_s).padStart(10)}           ` +
        `ListenDrops ${per(x.ListenDrops)}/s (overflows ${per(x.ListenOverflows)}/s)  RcvQDrop ${per(x.TCPRcvQDrop)}/s  BacklogDrop ${per(x.TCPBacklogDrop)}/s  ZeroWindowDrop ${per(x.TCPZeroWindowDrop)}/s  OFODrop ${per(x.TCPOFODrop)}/s`,
    );
  }
  const recs = iv.reconcile.filter((r) => r.socket_drops || r.RcvbufErrors || r.MemErrors);
  const rtext = recs.length
    ? recs
        .map((r) => {
          const who = r.self ? 'own netns' : `netns ${r.netns}`;
          if (r.unexplained === null) return `${who}: socket drops ${per(r.socket_drops)}/s, kernel side unknown`;
          const kernel = per((r.RcvbufErrors ?? 0) + (r.MemErrors ?? 0));
          return `${who}: socket drops ${per(r.socket_drops)}/s vs RcvbufErrors+MemErrors ${kernel}/s${r.unexplained === 0 ? ' ✓' : `, unexplained ${r.unexplained > 0 ? '+' : ''}${r.unexplained}`}`;
        })
        .join(' | ')
    : 'no socket-buffer drops';
  lines.push(`  reconcile: ${rtext}`);
  return { lines, losingIndex };
}

function utf8Fix(s: string, utf8: boolean): string {
  return utf8 ? s : s.replace(/◀/g, '<').replace(/✓/g, 'ok').replace(/…/g, '~');
}

function rowColumns(rows: readonly TopRow[], v: TopView): { title: string; lines: string[] } {
  const localW = Math.min(47, Math.max(5, ...rows.map((r) => r.local.length)));
  const title = `${'DROPS/s'.padStart(8)}  ${'DROPS'.padStart(11)}  ${'RX_QUEUE'.padStart(9)}  ${'RCVBUF'.padStart(8)}  ${'FILL'.padStart(4)}  ${'TREND 60s'.padEnd(TREND_WIDTH)}  ${'PROTO'.padEnd(5)}  ${'LOCAL'.padEnd(localW)}  OWNER`;
  const lines = rows.map((r) => {
    const fill = fillOf(r);
    const owner = r.owners.length ? ownersText(r.owners) : r.netns === null ? '-' : `- (netns ${r.netns})`;
    return (
      `${compact(r.rate).padStart(8)}${r.source === 'counters' && v.mode === 'tracing' && r.rate > 0 ? '*' : ' '} ` +
      `${(r.drops === null ? '?' : String(r.drops)).padStart(11)}  ${String(r.rx_queue).padStart(9)}  ` +
      `${(r.rcvbuf === null ? '-' : String(r.rcvbuf)).padStart(8)}  ${(fill === null ? '-' : `${Math.min(999, Math.round(fill * 100))}%`).padStart(4)}  ` +
      `${sparkline(r.trend, v.utf8)}  ${r.table.padEnd(5)}  ${r.local.padEnd(localW)}  ${owner}${r.closed ? ' (closed)' : ''}`
    );
  });
  return { title, lines };
}

function headline(v: TopView): string {
  const t = v.now.toTimeString().slice(0, 8);
  const mode = v.mode === 'counters' ? `counters only (${v.modeDetail})` : `${v.mode}: ${v.modeDetail}`;
  return `rxtrace top  ${t}  ${mode}${v.paused ? '  [PAUSED]' : ''}`;
}

/** The full screen, `height` lines at most, each `width` characters at most. */
export function renderTopScreen(v: TopView, width: number, height: number): Screen {
  const { lines: layers, losingIndex } = layerLines(v);
  const head = [headline(v), ...layers];
  if (v.message) head.push(`! ${v.message}`);
  head.push(
    `keys: q quit  s sort (now: ${v.sort})  p ${v.paused ? 'resume' : 'pause'}${v.mode === 'tracing' ? '   * = rate from the drops counter' : ''}` +
      (v.idle ? `   ${v.idle} idle socket${v.idle === 1 ? '' : 's'} not listed` : ''),
  );
  const room = Math.max(0, height - head.length - 1);
  const { title, lines } = rowColumns(v.rows.slice(0, room), v);
  const all = [...head, title, ...lines].map((l) => fit(utf8Fix(l, v.utf8), width));
  return {
    lines: all.slice(0, height),
    emphasis: losingIndex >= 0 ? [losingIndex + 1] : [],
    titles: head.length,
  };
}

/** For a pipe: the same content without the keys line, the first `limit` sockets. */
export function renderTopText(v: TopView, limit: number): string[] {
  const { lines: layers } = layerLines(v);
  const rows = v.rows.filter((r) => r.rate > 0 || (r.drops ?? 0) > 0 || r.rx_queue > 0).slice(0, limit);
  const { title, lines } = rowColumns(rows, v);
  return [headline(v), ...layers, ...(v.message ? [`! ${v.message}`] : []), title, ...lines, ''].map((l) => utf8Fix(l, v.utf8));
}
