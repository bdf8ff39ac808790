// Kernel filters: check a user's ftrace expression before it reaches the kernel (length,
// characters, field names), and build the filters that --port and --reason stand for.
import { RxtraceError } from './errors.js';
import type { EventSchema } from './format/schema.js';

export const MAX_FILTER_LENGTH = 4096;
// Identifiers, numbers, strings, comparison and logic operators, globs: what ftrace filters use.
const ALLOWED = /^[A-Za-z0-9_\s.:=!<>&|()"'~*[\]\-+/,^$?\\@%]*$/;
const KEYWORDS = new Set(['&&', '||']);

export function validateFilterText(filter: string): void {
  if (filter.length === 0) throw new RxtraceError('EBADFILTER', 'the filter is empty', { hint: 'give an expression such as "dport == 5000"' });
  if (filter.length > MAX_FILTER_LENGTH) {
    throw new RxtraceError('EBADFILTER', `the filter is ${filter.length} characters long; the limit is ${MAX_FILTER_LENGTH}`, {
      hint: 'shorten the expression',
    });
  }
  if (!ALLOWED.test(filter)) {
    const bad = [...filter].find((c) => !ALLOWED.test(c)) ?? '?';
    throw new RxtraceError('EBADFILTER', `the filter contains a character ftrace filters do not use: ${JSON.stringify(bad)}`, {
      hint: 'filters look like: dport == 5000 && rc == -12',
      details: { filter },
    });
  }
}

/** Field names an ftrace expression refers to: identifiers left of a comparison operator. */
export function filterFields(filter: string): string[] {
  const noStrings = filter.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  const names = new Set<string>();
  const re = /([A-Za-z_][A-Za-z0-9_.]*)\s*(==|!=|<=|>=|<|>|&|~)/g;
  for (let m = re.exec(noStrings); m; m = re.exec(noStrings)) {
    if (!KEYWORDS.has(m[1])) names.add(m[1]);
  }
  return [...names];
}

/** The fields a filter may use on this event (common_* included, as the kernel allows). */
export function filterableFields(schema: EventSchema): string[] {
  return schema.fields.map((f) => f.name).concat(['CPU', 'COMM', 'cpu', 'comm']);
}

/** `--port N`: the local port field of this kernel's layout (dport since 6.10, lport before). */
export function portField(schema: EventSchema): string | undefined {
  const names = new Set(schema.fields.map((f) => f.name));
  if (schema.system === 'udp' && names.has('dport')) return 'dport';
  if (names.has('lport')) return 'lport';
  return undefined;
}

/** `--reason A,B`: names → numbers from the event's __print_symbolic table, as a filter. */
export function reasonFilter(schema: EventSchema, reasons: string[]): string {
  const table = schema.symbols.get('reason');
  if (!table) {
    throw new RxtraceError('EBADREASON', `${schema.system}:${schema.name} has no drop reasons on this kernel (they arrived in 5.17)`, {
      hint: 'drop --reason, or trace on a newer kernel',
    });
  }
  const byName = new Map<string, number>();
  for (const [n, name] of table) byName.set(name, n);
  const nums: number[] = [];
  for (const raw of reasons) {
    const name = raw.trim().toUpperCase().replace(/^SKB_DROP_REASON_/, '');
    const n = byName.get(name);
    if (n === undefined) {
      const known = [...byName.keys()];
      const close = known.filter((k) => k.includes(name) || name.includes(k)).slice(0, 8);
      throw new RxtraceError('EBADREASON', `unknown drop reason "${raw}"${close.length ? `; did you mean ${close.join(', ')}?` : ''}`, {
        hint: `this kernel knows ${known.length} reasons, e.g. ${known.slice(0, 6).join(', ')}…`,
        details: { reason: raw, known },
      });
    }
    nums.push(n);
  }
  return nums.map((n) => `reason == ${n}`).join(' || ');
}

export const andFilters = (parts: (string | undefined)[]): string | undefined => {
  const p = parts.filter((x): x is string => !!x && x.trim().length > 0);
  if (p.length === 0) return undefined;
  if (p.length === 1) return p[0];
  return p.map((x) => `(${x})`).join(' && ');
};
