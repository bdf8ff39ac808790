// Read `print fmt: "…", args…` far enough to learn how each field is shown: which are socket
// addresses (%pIS…), raw IPv4/IPv6 (%pI4/%pI6), and which go through __print_symbolic (and
// with what number → name table). Reason numbers differ between kernels; names do not.
import type { FieldDisplay } from './schema.js';

export interface PrintFmtInfo {
  display: Map<string, FieldDisplay>;
  symbols: Map<string, Map<number, string>>;
}

export function parsePrintFmt(text: string): PrintFmtInfo {
  const display = new Map<string, FieldDisplay>();
  const symbols = new Map<string, Map<number, string>>();
  const str = readQuoted(text);
  if (!str) return { display, symbols };
  const convs = conversions(str.value);
  const args = splitTopLevel(text.slice(str.end)).map((a) => a.trim()).filter((a) => a.length > 0);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const sym = /^__print_symbolic\s*\(\s*REC->(\w+)/.exec(arg);
    if (sym) {
      symbols.set(sym[1], symbolTable(arg));
      display.set(sym[1], 'symbolic');
      continue;
    }
    const direct = /^REC->(\w+)$/.exec(arg);
    const conv = convs[i];
    if (!direct || !conv) continue;
    if (conv.startsWith('%pIS')) display.set(direct[1], 'sockaddr');
    else if (/^%p[Ii]4/.test(conv)) display.set(direct[1], 'ipv4');
    else if (/^%p[Ii]6/.test(conv)) display.set(direct[1], 'ipv6');
  }
  return { display, symbols };
}

function symbolTable(arg: string): Map<number, string> {
  const table = new Map<number, string>();
  const re = /\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*"((?:[^"\\]|\\.)*)"\s*\}/g;
  for (let m = re.exec(arg); m; m = re.exec(arg)) {
    // Number('-0x10') is NaN: the sign is read apart from the (hex or decimal) magnitude.
    const neg = m[1].startsWith('-');
    const n = Number(neg ? m[1].slice(1) : m[1]);
    if (Number.isSafeInteger(n)) table.set(neg ? -n : n, m[2]);
  }
  return table;
}

/** The first double-quoted C string and where it ends. */
function readQuoted(text: string): { value: string; end: number } | undefined {
  const start = text.indexOf('"');
  if (start < 0) return undefined;
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      value += text[i + 1];
      i++;
    } else if (c === '"') {
      return { value, end: i + 1 };
    } else {
      value += c;
    }
  }
  return undefined;
}

/** printf conversions in order; %p keeps its extension letters (%pISpc, %pI4, %pS). */
function conversions(fmt: string): string[] {
  const out: string[] = [];
  const re = /%(%|[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|z|j|t)?(p[A-Za-z0-9]*|[diouxXeEfgGcsaA]))/g;
  for (let m = re.exec(fmt); m; m = re.exec(fmt)) {
    if (m[1] === '%') continue;
    out.push(`%${m[2]}`);
  }
  return out;
}

/** Split `, a, f(b, c), { d, e }` at top-level commas. The leading comma yields an empty item. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  let quote = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      cur += c;
      if (c === '\\' && i + 1 < s.length) cur += s[++i];
      else if (c === '"') quote = false;
      continue;
    }
    if (c === '"') quote = true;
    else if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}
