// `rxtrace explain`'s reasoning: one watched window in, findings out, ranked by drops. Each
// place on the receive path has its own rule file; this one runs them, orders the findings,
// and compares two windows for --verify. Pure: no I/O here (gather.ts reads the host).
import { ipFindings } from './ip.js';
import { listenFindings } from './listen.js';
import { nicFindings } from './nic.js';
import { protoMemFindings } from './protomem.js';
import { socketFindings } from './socket.js';
import { softnetFindings } from './softnet.js';
import type { ExplainInput, Finding } from './types.js';

export type { ExplainInput, Finding, Fix, FindingSocket, Listener, Place, Sysctls, Traced, TracedSocket } from './types.js';

/** Along the path a packet takes: among equal drops, the earlier place first. */
const PLACE_ORDER = ['nic', 'softnet', 'ip', 'udp', 'tcp', 'listener', 'socket'];

export function explain(input: ExplainInput): Finding[] {
  const all = [...nicFindings(input), ...softnetFindings(input), ...ipFindings(input), ...protoMemFindings(input), ...listenFindings(input), ...socketFindings(input)];
  return all.sort((a, b) => b.drops - a.drops || PLACE_ORDER.indexOf(a.place) - PLACE_ORDER.indexOf(b.place) || a.cause.localeCompare(b.cause));
}

/** Identity of a finding across two windows: place, cause and socket. */
export function findingKey(f: Finding): string {
  return `${f.place}/${f.cause}/${f.socket?.inode ?? ''}`;
}

export type VerifyResult = 'stopped' | 'fewer' | 'same' | 'more' | 'new';

export interface VerifyLine {
  verify: true;
  place: Finding['place'];
  cause: string;
  socket: Finding['socket'];
  before: { drops: number; per_s: number };
  after: { drops: number; per_s: number };
  result: VerifyResult;
  summary: string;
}

const rate = (n: number, s: number): number => (s > 0 ? Math.round((n / s) * 10) / 10 : 0);

/**
 * Before and after per finding (by rate, since the windows may differ in length): `stopped`
 * when the second window has none of it, `fewer`/`more` beyond ±10 %, `new` when only the
 * second has it. Warnings without drops (time_squeeze) compare by their presence.
 */
export function verify(before: Finding[], beforeSeconds: number, after: Finding[], afterSeconds: number): VerifyLine[] {
  const later = new Map(after.map((f) => [findingKey(f), f]));
  const out: VerifyLine[] = [];
  const line = (f: Finding, b: number, a: number, result: VerifyResult, summary: string): VerifyLine => ({
    verify: true,
    place: f.place,
    cause: f.cause,
    socket: f.socket,
    before: { drops: b, per_s: rate(b, beforeSeconds) },
    after: { drops: a, per_s: rate(a, afterSeconds) },
    result,
    summary,
  });
  for (const f of before) {
    const g = later.get(findingKey(f));
    later.delete(findingKey(f));
    if (!g) {
      out.push(line(f, f.drops, 0, 'stopped', `${f.cause}: stopped (${f.drops} drops before, none after)`));
      continue;
    }
    const rb = rate(f.drops, beforeSeconds);
    const ra = rate(g.drops, afterSeconds);
    const result: VerifyResult = ra < rb * 0.9 ? 'fewer' : ra > rb * 1.1 ? 'more' : 'same';
    out.push(line(f, f.drops, g.drops, result, `${f.cause}: ${result} (${rb}/s before, ${ra}/s after)`));
  }
  for (const g of later.values()) out.push(line(g, 0, g.drops, 'new', `${g.cause}: new (${g.drops} drops after, none before)`));
  return out;
}
