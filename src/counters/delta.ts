// Pure deltas between two reads of the kernel's counters: wrap, reset, and things that appear or
// vanish between reads. No I/O here; snapshot.ts reads, funnel.ts gives the deltas meaning.
//
// The rules (docs/funnel.md repeats them for users):
// - A u32 counter that went down wrapped at 2^32 (softnet_stat columns, a socket's `drops`):
//   delta = cur + 2^32 − prev. One wrap per interval at most: at 1 s that is 4 G events/s.
// - A u64 counter that went down was reset (a device re-created under the same name, a driver
//   that clears its statistics, a network namespace re-created). The delta is the new value,
//   which counts everything since the reset: a lower bound, as Prometheus' rate() does. The
//   counter's path is listed in notes.resets so that a reader can tell.
// - A counter present in only one of the two reads (a kernel without MemErrors, a module
//   loaded in between) has no delta: it is left out, never reported as 0.
// - An entity (device, CPU, socket) present in only one read: see each delta function.
import type { SoftnetRow } from '../procnet/softnet.js';

export const U32_RANGE = 2 ** 32;

/** How a counter overflows: u32 wraps at 2^32; u64 never does in practice, so going down is a reset. */
export type CounterWidth = 'u32' | 'u64';

export type DeltaKind = 'ok' | 'wrap' | 'reset';

/** What happened between two reads, besides plain increments. Paths are `source.entity.counter`. */
export interface DeltaNotes {
  /** u32 counters that wrapped (the delta is still exact). */
  wraps: string[];
  /** u64 counters that went down: the delta is the new value (a lower bound). */
  resets: string[];
  /** Entities only in the newer read, e.g. `dev.veth0`, `softnet_stat.cpu.3`. */
  appeared: string[];
  /** Entities only in the older read. */
  vanished: string[];
  /** Sockets come and go by the thousand (a DNS client opens one per query): counted, not listed. */
  sockets: { appeared: number; vanished: number };
}

export function newNotes(): DeltaNotes {
  return { wraps: [], resets: [], appeared: [], vanished: [], sockets: { appeared: 0, vanished: 0 } };
}

export function notesEmpty(n: DeltaNotes): boolean {
  return (
    n.wraps.length === 0 &&
    n.resets.length === 0 &&
    n.appeared.length === 0 &&
    n.vanished.length === 0 &&
    n.sockets.appeared === 0 &&
    n.sockets.vanished === 0
  );
}

/** The increase of one counter between two reads. */
export function counterDelta(prev: number, cur: number, width: CounterWidth): { value: number; kind: DeltaKind } {
  if (cur >= prev) return { value: cur - prev, kind: 'ok' };
  if (width === 'u32') return { value: cur + U32_RANGE - prev, kind: 'wrap' };
  return { value: cur, kind: 'reset' };
}

/** counterDelta that records a wrap or reset under `path` in notes. */
export function noteDelta(prev: number, cur: number, width: CounterWidth, path: string, notes: DeltaNotes): number {
  const d = counterDelta(prev, cur, width);
  if (d.kind === 'wrap') notes.wraps.push(path);
  else if (d.kind === 'reset') notes.resets.push(path);
  return d.value;
}

function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * Deltas of every counter present in both records (and accepted by `keep`), under the same
 * names. `path` prefixes the names in notes.
 */
export function deltaCounters(
  prev: Readonly<Record<string, number>> | undefined,
  cur: Readonly<Record<string, number>> | undefined,
  width: CounterWidth,
  path: string,
  notes: DeltaNotes,
  keep: (name: string) => boolean = () => true,
): Record<string, number> {
  const out = dict<number>();
  if (!prev || !cur) return out;
  for (const name of Object.keys(cur)) {
    if (!keep(name)) continue;
    const p = prev[name];
    if (p === undefined) continue;
    out[name] = noteDelta(p, cur[name], width, `${path}.${name}`, notes);
  }
  return out;
}

/**
 * Per-entity deltas (devices, protocols): entity name → counter → delta. An entity in only one
 * read has no delta and is noted as appeared or vanished (a new device may have been moved in
 * from another namespace with its counters, so its current value is not a delta).
 */
export function deltaEntities(
  prev: Readonly<Record<string, Readonly<Record<string, number>>>>,
  cur: Readonly<Record<string, Readonly<Record<string, number>>>>,
  width: CounterWidth,
  path: string,
  notes: DeltaNotes,
  keep?: (name: string) => boolean,
): Record<string, Record<string, number>> {
  const out = dict<Record<string, number>>();
  for (const name of Object.keys(cur)) {
    if (prev[name] === undefined) {
      notes.appeared.push(`${path}.${name}`);
      continue;
    }
    out[name] = deltaCounters(prev[name], cur[name], width, `${path}.${name}`, notes, keep);
  }
  for (const name of Object.keys(prev)) if (cur[name] === undefined) notes.vanished.push(`${path}.${name}`);
  return out;
}

/** The softnet_stat counters that are counters (the backlog lengths are gauges). */
export const SOFTNET_COUNTERS = ['processed', 'dropped', 'time_squeeze', 'received_rps', 'flow_limit_count'] as const;
export type SoftnetCounter = (typeof SOFTNET_COUNTERS)[number];

/** processed, dropped and time_squeeze always; received_rps and flow_limit_count when the kernel prints them (3.11+). */
export type SoftnetCounts = Record<'processed' | 'dropped' | 'time_squeeze', number> & Partial<Record<SoftnetCounter, number>>;

export interface SoftnetDelta {
  /** Sum over the CPUs present in both reads. */
  total: SoftnetCounts;
  /** CPU number (as text, a JSON key) → deltas. */
  cpu: Record<string, SoftnetCounts>;
}

/**
 * softnet_stat deltas per CPU and in total. The columns are u32 and wrap. A CPU that comes
 * online keeps the counts of its earlier life, so it has no delta until the next interval.
 * On kernels without the cpu column (11 columns, ≤ 5.9) a CPU is its line index, and when the
 * number of lines changes the indexes may all shift: no CPU gets a delta then.
 */
export function deltaSoftnet(prev: readonly SoftnetRow[], cur: readonly SoftnetRow[], notes: DeltaNotes): SoftnetDelta {
  // A counter is in the total when the kernel prints its column (older kernels have fewer).
  const total: SoftnetCounts = { processed: 0, dropped: 0, time_squeeze: 0 };
  for (const k of SOFTNET_COUNTERS) if (cur.some((r) => r[k] !== undefined)) total[k] = 0;
  const cpu = dict<SoftnetCounts>();
  const inexact = prev.some((r) => !r.cpu_exact) || cur.some((r) => !r.cpu_exact);
  if (inexact && prev.length !== cur.length) {
    for (const r of prev) notes.vanished.push(`softnet_stat.cpu.${r.cpu}`);
    for (const r of cur) notes.appeared.push(`softnet_stat.cpu.${r.cpu}`);
    return { total, cpu };
  }
  const before = new Map(prev.map((r) => [r.cpu, r]));
  const seen = new Set<number>();
  for (const r of cur) {
    seen.add(r.cpu);
    const p = before.get(r.cpu);
    if (!p) {
      notes.appeared.push(`softnet_stat.cpu.${r.cpu}`);
      continue;
    }
    const d = {} as SoftnetCounts;
    for (const k of SOFTNET_COUNTERS) {
      const was = p[k];
      const now = r[k];
      if (was === undefined || now === undefined) continue;
      d[k] = noteDelta(was, now, 'u32', `softnet_stat.cpu.${r.cpu}.${k}`, notes);
      total[k] = (total[k] ?? 0) + d[k];
    }
    cpu[String(r.cpu)] = d;
  }
  for (const r of prev) if (!seen.has(r.cpu)) notes.vanished.push(`softnet_stat.cpu.${r.cpu}`);
  return { total, cpu };
}

/** The part of a socket that its delta needs. */
export interface SocketCounter {
  inode: number;
  /** sk_drops, printed as u32; null when the table has no drops column. */
  drops: number | null;
  /** The network namespace the socket was read in (null: unknown). */
  netns: number | null;
}

/**
 * Each socket's increase of `drops`, by inode (inodes are unique system-wide, so an inode is one
 * socket for its whole life). A socket in the newer read only was opened during the interval,
 * and sk_drops starts at 0, so its delta is its current value; but only when its namespace was
 * read the first time too (`prevNetns`), else it may be an old socket seen for the first time,
 * and it gets no delta. A socket in the older read only was closed: its last drops are unknown.
 * Unknown deltas are absent from the result.
 */
export function deltaSockets(
  prev: ReadonlyMap<number, SocketCounter>,
  cur: ReadonlyMap<number, SocketCounter>,
  notes: DeltaNotes,
  prevNetns?: ReadonlySet<number>,
): Map<number, number> {
  const out = new Map<number, number>();
  for (const [inode, s] of cur) {
    const p = prev.get(inode);
    if (p === undefined) {
      notes.sockets.appeared++;
      const netnsWasRead = prevNetns === undefined || (s.netns !== null && prevNetns.has(s.netns));
      if (netnsWasRead && s.drops !== null) out.set(inode, s.drops);
      continue;
    }
    if (p.drops === null || s.drops === null) continue;
    // Most sockets of a large host never drop: no path string, no delta object for them.
    out.set(inode, p.drops === s.drops ? 0 : noteDelta(p.drops, s.drops, 'u32', `sockets.${inode}.drops`, notes));
  }
  for (const inode of prev.keys()) if (!cur.has(inode)) notes.sockets.vanished++;
  return out;
}
