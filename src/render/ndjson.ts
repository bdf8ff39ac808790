// NDJSON: one object per line, the contract of DESIGN.md. Keys in a fixed order; internal
// fields (monoNs) never serialised.
import type { DropEvent, LostEvent } from '../decode/events.js';

export function dropToJson(e: DropEvent): string {
  let s = `{"time":"${e.time}","cpu":${e.cpu},"pid":${e.pid},"tid":${e.tid},"event":${JSON.stringify(e.event)},"fields":${JSON.stringify(e.fields)}`;
  if (e.match !== undefined) s += `,"match":"${e.match}","socket":${JSON.stringify(e.socket ?? null)}`;
  if (e.candidates !== undefined) s += `,"candidates":${JSON.stringify(e.candidates)}`;
  if (e.global !== undefined) s += `,"global":${JSON.stringify(e.global)}`;
  return s + '}';
}

export function lostToJson(e: LostEvent): string {
  return `{"event":"lost","time":"${e.time}","cpu":${e.cpu},"lost":${e.lost}}`;
}

export function recordToJson(e: DropEvent | LostEvent): string {
  return e.event === 'lost' ? lostToJson(e as LostEvent) : dropToJson(e as DropEvent);
}
