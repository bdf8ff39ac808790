// /proc/net/sockstat and sockstat6 (sockets in use and protocol memory in pages), and the
// global protocol memory limits udp_mem / tcp_mem they are measured against. When
// `UDP: mem` reaches udp_mem[2], sock_exceed_buf_limit fires and UDP counts MemErrors.
import { ProcParseError } from './errors.js';
import { dict, procNetPath, readTextIfExists } from './read.js';

/** `sockstat.UDP.mem` (pages), `sockstat.sockets.used`, `sockstat.UDP6.inuse`… */
export type Sockstat = Record<string, Record<string, number>>;

/** [min, pressure, max] in pages. */
export type MemLimits = [min: number, pressure: number, max: number];

export interface ProtoMem {
  /** Absent inside a non-initial network namespace: the limits are global. */
  udp_mem?: MemLimits;
  tcp_mem?: MemLimits;
}

const KEY = /^[A-Za-z0-9_]+$/;
const VALUE = /^-?[0-9]{1,20}$/;

/** Parses `PROTO: key value key value …` lines; sockstat and sockstat6 share the format. */
export function parseSockstat(text: string, opts: { file?: string } = {}): Sockstat {
  const file = opts.file ?? '/proc/net/sockstat';
  const out = dict<Record<string, number>>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim().split(/\s+/);
    if (t[0] === '') continue;
    const proto = t[0].endsWith(':') ? t[0].slice(0, -1) : '';
    if (!KEY.test(proto)) throw new ProcParseError(file, i + 1, 'expected `PROTO:` at the start of the line', lines[i]);
    if (t.length % 2 !== 1) throw new ProcParseError(file, i + 1, 'expected `key value` pairs', lines[i]);
    const row = out[proto] ?? (out[proto] = dict<number>());
    for (let k = 1; k < t.length; k += 2) {
      if (!KEY.test(t[k]) || !VALUE.test(t[k + 1])) {
        throw new ProcParseError(file, i + 1, `bad pair ${t[k]} ${t[k + 1]}`, lines[i]);
      }
      row[t[k]] = Number(t[k + 1]);
    }
  }
  return out;
}

/** sockstat and sockstat6 merged (their protocol names differ: UDP vs UDP6). Missing → {}. */
export async function readSockstat(procRoot = '/proc', pid?: number): Promise<Sockstat> {
  const out = dict<Record<string, number>>();
  for (const name of ['sockstat', 'sockstat6']) {
    const path = procNetPath(name, procRoot, pid);
    const text = readTextIfExists(path);
    if (text !== undefined) Object.assign(out, parseSockstat(text, { file: path }));
  }
  return out;
}

/** The text of udp_mem / tcp_mem: three integers (pages). */
export function parseMemLimits(text: string, opts: { file?: string } = {}): MemLimits {
  const file = opts.file ?? '/proc/sys/net/ipv4/udp_mem';
  const t = text.trim().split(/\s+/);
  if (t.length !== 3 || !t.every((x) => VALUE.test(x))) {
    throw new ProcParseError(file, 1, 'expected three integers (min pressure max, in pages)', text);
  }
  return [Number(t[0]), Number(t[1]), Number(t[2])];
}

/** /proc/sys/net/ipv4/{udp_mem,tcp_mem}; each is omitted when its file is absent. */
export async function readProtoMem(procRoot = '/proc'): Promise<ProtoMem> {
  const out: ProtoMem = {};
  for (const name of ['udp_mem', 'tcp_mem'] as const) {
    const path = `${procRoot}/sys/net/ipv4/${name}`;
    const text = readTextIfExists(path);
    if (text !== undefined) out[name] = parseMemLimits(text, { file: path });
  }
  return out;
}
