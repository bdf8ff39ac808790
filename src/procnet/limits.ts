// /proc/self/limits: the soft resource limits rxtrace depends on (`Max locked memory` for the
// perf rings, `Max open files` for one perf fd per event per CPU). The one reader of the file:
// errors.ts and doctor both ask here.
import { readFileSync } from 'node:fs';

/** A soft limit: a number (bytes, files…) or 'unlimited'. */
export type Limit = number | 'unlimited';

/** The soft limit named `name` (the file's first column, e.g. `Max locked memory`) in limits text. */
export function parseLimit(limits: string, name: string): Limit | undefined {
  const m = new RegExp(`^${name}\\s+(\\S+)`, 'm').exec(limits);
  if (!m) return undefined;
  if (m[1] === 'unlimited') return 'unlimited';
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : undefined;
}

/** This process's soft limit named `name`; undefined when the file or the line cannot be read. */
export function readLimit(name: string, file = '/proc/self/limits'): Limit | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return parseLimit(text, name);
}
