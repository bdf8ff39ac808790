// /proc/net/snmp (per protocol, a line of names then a line of values) and /proc/net/snmp6
// (`Name value` lines; /proc/net/dev_snmp6/<dev> has the same shape). Parsed by name, so a
// kernel that adds or drops a counter (Udp MemErrors, 5.11) changes nothing here.
//
// Values are JavaScript numbers: the kernel's u64 counters lose precision above 2^53 (≈ 9e15;
// 28 years at 10 M packets/s), which deltas and rates can live with. Values may be negative
// (`Tcp: MaxConn -1`).
import { ProcParseError } from './errors.js';
import { dict, procNetPath, readTextIfExists } from './read.js';

/** `snmp.Udp.RcvbufErrors`: protocol (without the colon) → counter name → value. */
export type SnmpCounters = Record<string, Record<string, number>>;
/** `snmp6.Udp6RcvbufErrors` → value. */
export type Snmp6Counters = Record<string, number>;

const VALUE = /^-?[0-9]{1,20}$/;
const PROTO = /^([A-Za-z0-9_]+):$/;
/** A counter's name as the kernel prints it (`RcvbufErrors`, `Udp6InErrors`, `ifIndex`): no colon, no punctuation. */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** /proc/net/snmp text → counters by protocol and name. Throws ProcParseError. */
export function parseSnmp(text: string, opts: { file?: string } = {}): SnmpCounters {
  const file = opts.file ?? '/proc/net/snmp';
  const out = dict<Record<string, number>>();
  const lines = text.split('\n');
  let names: { proto: string; tokens: string[]; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim().split(/\s+/);
    if (t[0] === '') continue;
    const m = PROTO.exec(t[0]);
    if (!m) throw new ProcParseError(file, i + 1, 'expected `Proto:` at the start of the line', lines[i]);
    if (names === undefined) {
      const tokens = t.slice(1);
      const bad = tokens.find((n) => !NAME.test(n));
      if (bad !== undefined) throw new ProcParseError(file, i + 1, `\`${bad}\` is not a counter name`, lines[i]);
      names = { proto: m[1], tokens, line: i + 1 };
      continue;
    }
    if (m[1] !== names.proto) {
      throw new ProcParseError(file, i + 1, `expected the values of ${names.proto}, got ${m[1]}`, lines[i]);
    }
    const values = t.slice(1);
    if (values.length !== names.tokens.length) {
      throw new ProcParseError(file, i + 1, `${names.tokens.length} names but ${values.length} values`, lines[i]);
    }
    const row = out[m[1]] ?? (out[m[1]] = dict<number>());
    for (let k = 0; k < values.length; k++) {
      if (!VALUE.test(values[k])) throw new ProcParseError(file, i + 1, `bad value for ${names.tokens[k]}`, lines[i]);
      row[names.tokens[k]] = Number(values[k]);
    }
    names = undefined;
  }
  if (names !== undefined) {
    throw new ProcParseError(file, names.line, `the names of ${names.proto} have no line of values (truncated?)`);
  }
  return out;
}

/** /proc/net/snmp6 (or /proc/net/dev_snmp6/<dev>) text → counters by name. Throws ProcParseError. */
export function parseSnmp6(text: string, opts: { file?: string } = {}): Snmp6Counters {
  const file = opts.file ?? '/proc/net/snmp6';
  const out = dict<number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim().split(/\s+/);
    if (t[0] === '') continue;
    // The name is checked too: a line such as `Mode: 644` (appended by some capture tools) is no counter.
    if (t.length !== 2 || !NAME.test(t[0]) || !VALUE.test(t[1])) {
      throw new ProcParseError(file, i + 1, 'expected `Name value`', lines[i]);
    }
    out[t[0]] = Number(t[1]);
  }
  return out;
}

/** /proc/net/snmp (of `pid`'s network namespace when given). Missing file → {}. */
export async function readSnmp(procRoot = '/proc', pid?: number): Promise<SnmpCounters> {
  const path = procNetPath('snmp', procRoot, pid);
  const text = readTextIfExists(path);
  return text === undefined ? dict() : parseSnmp(text, { file: path });
}

/** /proc/net/snmp6 (absent without IPv6 → {}). */
export async function readSnmp6(procRoot = '/proc', pid?: number): Promise<Snmp6Counters> {
  const path = procNetPath('snmp6', procRoot, pid);
  const text = readTextIfExists(path);
  return text === undefined ? dict() : parseSnmp6(text, { file: path });
}
