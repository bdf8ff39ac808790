// Text lines for people at a TTY: time, cpu, event, the interesting fields, then the socket.
import type { DropEvent, LostEvent } from '../decode/events.js';
import { ownersText } from './units.js';

const SKIP = new Set(['saddr', 'daddr', 'sport', 'dport', 'family']);

function fieldText(e: DropEvent): string {
  const f = e.fields;
  const parts: string[] = [];
  if (typeof f.saddr === 'string' || typeof f.daddr === 'string') {
    parts.push(`${f.saddr ?? '?'} > ${f.daddr ?? '?'}`);
  }
  for (const [k, v] of Object.entries(f)) {
    if (SKIP.has(k) && parts.length > 0) continue;
    if (k === 'skbaddr' || k === 'location') continue;
    parts.push(`${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  }
  return parts.join(' ');
}

function socketText(e: DropEvent): string {
  if (e.match === undefined) return '';
  const s = e.socket;
  if (!s) {
    if (e.match === 'ambiguous') return `  [ambiguous: ${e.candidates?.join(',') ?? ''}]`;
    if (e.match === 'global') return '  [global protocol memory]';
    return '  [no socket]';
  }
  const owners = ownersText(s.owners, 'no owner');
  return `  ${s.table} ${s.local} inode=${s.inode} ${owners} rx_queue=${s.rx_queue} drops=${s.drops ?? '?'}${s.stale ? ' (closed)' : ''} (${e.match})`;
}

export function dropToText(e: DropEvent): string {
  const t = e.time.slice(11, 26);
  const name = e.event.split(':')[1] ?? e.event;
  return `${t} cpu${e.cpu} ${name} ${fieldText(e)}${socketText(e)}`;
}

export function lostToText(e: LostEvent): string {
  const why = e.cause === 'unsampled' ? 'counted by the kernel, no sample written' : 'ring full';
  return `${e.time.slice(11, 26)} cpu${e.cpu} LOST ${e.lost} events (${why})`;
}

export function recordToText(e: DropEvent | LostEvent): string {
  return e.event === 'lost' ? lostToText(e as LostEvent) : dropToText(e as DropEvent);
}
