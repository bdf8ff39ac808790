// Event names → tracefs paths: resolve a user's name (sys:name, sys/name, or a unique bare
// name), list what the kernel has, and suggest close matches for a name it lacks.
import { readdirSync, readFileSync } from 'node:fs';
import { RxtraceError } from '../errors.js';

export interface EventRef {
  system: string;
  name: string;
}

export const fullName = (e: EventRef): string => `${e.system}:${e.name}`;

/** Every event tracefs offers, as sys:name. */
export function listEvents(root: string): string[] {
  const out: string[] = [];
  for (const sys of safeReaddir(`${root}/events`)) {
    for (const name of safeReaddir(`${root}/events/${sys}`)) {
      if (name === 'enable' || name === 'filter') continue;
      out.push(`${sys}:${name}`);
    }
  }
  return out;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

/** Parse and check one user-given event name against the kernel's list. */
export function resolveEventName(input: string, available: string[]): EventRef {
  const text = input.trim();
  const m = /^([A-Za-z0-9_]+)[:/]([A-Za-z0-9_]+)$/.exec(text);
  if (m) {
    const key = `${m[1]}:${m[2]}`;
    if (available.includes(key)) return { system: m[1], name: m[2] };
  } else if (/^[A-Za-z0-9_]+$/.test(text)) {
    const hits = available.filter((e) => e.endsWith(`:${text}`));
    if (hits.length === 1) {
      const [system, name] = hits[0].split(':');
      return { system, name };
    }
    if (hits.length > 1) {
      throw new RxtraceError('EUNKNOWNEVENT', `event name "${text}" is ambiguous: ${hits.join(', ')}`, {
        hint: 'write it as subsystem:name',
        details: { event: text, matches: hits },
      });
    }
  }
  const close = closeMatches(text, available);
  throw new RxtraceError('EUNKNOWNEVENT', `unknown tracepoint "${text}"${close.length ? `; did you mean ${close.join(', ')}?` : ''}`, {
    hint: 'rxtrace doctor shows which of rxtrace\'s tracepoints this kernel has; ls /sys/kernel/tracing/events/<subsystem> lists every event (as root, with tracefs mounted)',
    details: { event: text, suggestions: close },
  });
}

/** Up to five names closest to `word` by edit distance on the name part (and the whole). */
export function closeMatches(word: string, candidates: string[], max = 5): string[] {
  const w = word.toLowerCase();
  const scored = candidates.map((c) => {
    const lc = c.toLowerCase();
    const bare = lc.split(':')[1] ?? lc;
    const d = Math.min(editDistance(w, lc), editDistance(w.split(/[:/]/).pop() ?? w, bare));
    const sub = lc.includes(w.split(/[:/]/).pop() ?? w) ? -1 : 0;
    return { c, score: d + sub };
  });
  const limit = Math.max(3, Math.floor(w.length / 3));
  return scored
    .filter((s) => s.score <= limit)
    .sort((a, b) => a.score - b.score || a.c.localeCompare(b.c))
    .slice(0, max)
    .map((s) => s.c);
}

export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** Read an event's id and format text. */
export function readEventFiles(root: string, ev: EventRef): { id: number; format: string } {
  const dir = `${root}/events/${ev.system}/${ev.name}`;
  try {
    const idText = readFileSync(`${dir}/id`, 'utf8').trim();
    const format = readFileSync(`${dir}/format`, 'utf8');
    // common_type, which carries the id in every sample, is a u16.
    if (!/^\d{1,5}$/.test(idText) || Number(idText) > 65535) {
      throw new RxtraceError('EFORMAT', `${dir}/id is not a tracepoint id: ${JSON.stringify(idText.slice(0, 40))}`, {
        path: `${dir}/id`,
        hint: 'the tracefs tree is damaged or not a tracefs: rxtrace doctor shows which tree is used (RXTRACE_TRACEFS, or the mount) and checks its tracepoint files',
      });
    }
    return { id: Number(idText), format };
  } catch (e) {
    if (e instanceof RxtraceError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new RxtraceError(code === 'ENOENT' ? 'EUNKNOWNEVENT' : code, `cannot read ${dir}/{id,format}: ${(e as Error).message}`, {
      path: dir,
      hint: code === 'EACCES' ? 'run as root to read tracefs' : 'this kernel may lack the tracepoint',
      cause: e,
    });
  }
}
