// The /proc attributor: fills `match`/`socket` on every drop. Socket tables are read on
// demand, at most every `minReadIntervalMs`, so that each event lies between a read before it
// and a read after it; owners are rescanned on a timer and when an unknown socket shows up.
// Never per event: a batch of a hundred thousand drops costs one or two reads.
import { readFileSync } from 'node:fs';
import { nowMonoNs } from '../decode/batch.js';
import type { DropEvent, SocketInfo } from '../decode/events.js';
import { scanSocketOwners, type Owner } from '../procnet/owners.js';
import type { SocketTable } from '../procnet/sockets.js';
import { getPageSize, readProtoMem, readSockstat } from '../procnet/sockstat.js';
import { ReadHistory, type NsRow } from './history.js';
import { ownNetns, readTables } from './netns-tables.js';
import { ALL_TABLES, byAddress, byDrops, byPointer, RCVQUEUE_TABLES, udpKey, type Verdict } from './strategies.js';
import type { Attributor } from './types.js';

export interface ProcAttributorOptions {
  procRoot?: string;
  /** Shortest gap between two table reads (default 20 ms): bounds /proc cost in a storm. */
  minReadIntervalMs?: number;
  /** Rescan owners (and discover new namespaces) at least this often while drops arrive (default 2000 ms). */
  ownerRescanMs?: number;
  /** Whether the `pointer` column holds real addresses: 'auto' reads kptr_restrict (1 + root = real). */
  pointers?: 'auto' | 'real' | 'hashed';
}

type Need = { kind: 'udp' | 'rcvqueue' | 'kfree' | 'global' | 'other'; tables: readonly SocketTable[] };

// Not unref()d: a close() waiting on attribution must keep the process alive until it resolves.
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ProcAttributor implements Attributor {
  private readonly procRoot: string;
  private readonly history = new ReadHistory(24);
  private owners = new Map<number, Owner[]>();
  private pidsByNetns = new Map<number, number[]>();
  private lastOwnerScanNs = -Infinity;
  private lastReadNs = -Infinity;
  private readonly selfNetns: number;
  private readonly minReadNs: number;
  private readonly ownerRescanNs: number;
  private readonly realPointers: boolean;
  private globalCache?: { atNs: number; value: Record<string, unknown> };
  /** When each socket inode first appeared in a read (to know whether an owner scan postdates it). */
  private readonly firstSeen = new Map<number, number>();
  private closed = false;

  private constructor(opts: ProcAttributorOptions) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.selfNetns = ownNetns(this.procRoot);
    this.minReadNs = (opts.minReadIntervalMs ?? 20) * 1e6;
    this.ownerRescanNs = (opts.ownerRescanMs ?? 2000) * 1e6;
    this.realPointers = opts.pointers === 'real' || (opts.pointers !== 'hashed' && pointersAreReal(this.procRoot));
  }

  /** Take the first owner scan and table read before tracing starts: every later event has a read before it. */
  static async create(opts: ProcAttributorOptions = {}): Promise<ProcAttributor> {
    const a = new ProcAttributor(opts);
    await a.scanOwners();
    await a.read(ALL_TABLES);
    return a;
  }

  get pointerMode(): 'real' | 'hashed' {
    return this.realPointers ? 'real' : 'hashed';
  }

  private async scanOwners(): Promise<void> {
    this.lastOwnerScanNs = nowMonoNs();
    const s = await scanSocketOwners(this.procRoot);
    this.owners = s.byInode;
    this.pidsByNetns = s.pidsByNetns;
  }

  private async read(tables: readonly SocketTable[]): Promise<void> {
    const wait = this.lastReadNs + this.minReadNs - nowMonoNs();
    if (wait > 0) await sleep(wait / 1e6);
    const r = await readTables(tables, this.pidsByNetns, this.selfNetns, this.procRoot);
    this.lastReadNs = r.startNs;
    this.history.add(r);
    for (const inode of r.rows.keys()) if (!this.firstSeen.has(inode)) this.firstSeen.set(inode, r.startNs);
    if (this.firstSeen.size > 4 * r.rows.size + 1024) {
      // Forget sockets that are gone, so the map tracks the live table, not history.
      for (const inode of this.firstSeen.keys()) if (!r.rows.has(inode) && r.tables.size === ALL_TABLES.length) this.firstSeen.delete(inode);
    }
  }

  private need(ev: DropEvent): Need {
    switch (ev.event) {
      case 'udp:udp_fail_queue_rcv_skb':
        return { kind: 'udp', tables: udpKey(ev.fields)?.tables ?? [] };
      case 'sock:sock_rcvqueue_full':
        return { kind: 'rcvqueue', tables: RCVQUEUE_TABLES };
      case 'sock:sock_exceed_buf_limit':
        return { kind: 'global', tables: [] };
      case 'skb:kfree_skb':
        // Only a real pointer identifies the socket: kfree_skb carries no address, and "whose drops
        // rose" would be a guess here (TCP drops, whose sockets we do not list, share the reasons).
        return { kind: 'kfree', tables: this.realPointers && !isNullPointer(ev.fields.rx_sk) ? ALL_TABLES : [] };
      default:
        return { kind: 'other', tables: [] };
    }
  }

  async attribute(events: DropEvent[]): Promise<void> {
    if (events.length === 0 || this.closed) return;
    const needs = events.map((e) => this.need(e));
    // One read after the newest event, covering every table this batch needs.
    const tables = new Set<SocketTable>();
    let tMax = -Infinity;
    needs.forEach((n, i) => {
      if (n.tables.length === 0) return;
      n.tables.forEach((t) => tables.add(t));
      tMax = Math.max(tMax, events[i].monoNs);
    });
    if (tables.size > 0 && this.history.coveredUntil([...tables]) < tMax) await this.read([...tables]);

    const verdicts = events.map((e, i) => this.judge(e, needs[i]));
    // A miss may be a socket in a namespace the first read after the event did not cover: judge
    // again against the newest read; if that still misses, rescan owners (new namespaces), read
    // again, and judge once more.
    const isMiss = (v: Verdict, i: number): boolean => v.match === 'none' && needs[i].tables.length > 0;
    if (verdicts.some(isMiss)) {
      verdicts.forEach((v, i) => {
        if (isMiss(v, i)) verdicts[i] = this.judge(events[i], needs[i], true);
      });
      if (verdicts.some(isMiss) && nowMonoNs() - this.lastOwnerScanNs > 250e6) {
        await this.scanOwners();
        await this.read([...tables]);
        verdicts.forEach((v, i) => {
          if (isMiss(v, i)) verdicts[i] = this.judge(events[i], needs[i], true);
        });
      }
    }
    // Owners for sockets the last scan predates: wait out the rate limit rather than skip, so an
    // event never goes out owner-less just because its socket is new. A socket first seen before
    // the last scan and still owner-less has no owner (a kernel socket, or its process exited).
    const needScan = verdicts.some((v) => 'row' in v && !this.owners.has(v.row.inode) && (this.firstSeen.get(v.row.inode) ?? Infinity) >= this.lastOwnerScanNs);
    if (needScan || nowMonoNs() - this.lastOwnerScanNs > this.ownerRescanNs) {
      const wait = this.lastOwnerScanNs + 100e6 - nowMonoNs();
      if (needScan && wait > 0) await sleep(wait / 1e6);
      await this.scanOwners();
    }
    let global: Record<string, unknown> | undefined;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      const v = verdicts[i];
      if (needs[i].kind === 'global') {
        global ??= await this.globalFigures();
        ev.match = 'global';
        ev.socket = null;
        ev.global = { ...global, proto: ev.fields.name };
        continue;
      }
      ev.match = v.match;
      if ('row' in v) ev.socket = this.socketInfo(v.row, v.stale);
      else ev.socket = null;
      if (v.match === 'ambiguous') ev.candidates = v.candidates;
    }
  }

  /**
   * `wide`: measure up to the newest read instead of the first read after the event (a retry
   * after a rescan found a namespace the first read did not cover). Wider, still exact.
   */
  private judge(ev: DropEvent, need: Need, wide = false): Verdict {
    if (need.tables.length === 0) return { match: 'none' };
    const w = this.history.window(ev.monoNs, need.tables);
    const before = w.before;
    const after = wide ? this.history.latestCovering(need.tables) ?? w.after : w.after;
    if (need.kind === 'udp') {
      const key = udpKey(ev.fields);
      return key ? byAddress(key, before, after) : { match: 'none' };
    }
    if (need.kind === 'rcvqueue') return byDrops(need.tables, before, after);
    if (need.kind === 'kfree') {
      return typeof ev.fields.rx_sk === 'string' ? byPointer(ev.fields.rx_sk, before, after) : { match: 'none' };
    }
    return { match: 'none' };
  }

  private socketInfo(row: NsRow, stale: boolean): SocketInfo {
    const info: SocketInfo = {
      table: row.table,
      inode: row.inode,
      local: row.localText,
      remote: row.remoteText,
      rx_queue: row.rx_queue,
      drops: row.drops ?? null,
      netns: row.netns || null,
      owners: this.owners.get(row.inode) ?? [],
    };
    if (stale) info.stale = true;
    return info;
  }

  private async globalFigures(): Promise<Record<string, unknown>> {
    const now = nowMonoNs();
    if (this.globalCache && now - this.globalCache.atNs < 100e6) return this.globalCache.value;
    const [mem, sockstat] = await Promise.all([readProtoMem(this.procRoot), readSockstat(this.procRoot)]);
    const value = {
      udp_mem: mem.udp_mem ?? null,
      tcp_mem: mem.tcp_mem ?? null,
      sockstat: { UDP: sockstat.UDP ?? null, UDP6: sockstat.UDP6 ?? null, TCP: sockstat.TCP ?? null },
      page_size: getPageSize(),
    };
    this.globalCache = { atNs: now, value };
    return value;
  }

  close(): void {
    this.closed = true;
  }
}

function isNullPointer(v: unknown): boolean {
  return v === undefined || v === null || v === '0x0' || v === 0;
}

/** kptr_restrict=1 prints real addresses to a reader with CAP_SYSLOG (root); 0 hashes, 2 zeroes. */
export function pointersAreReal(procRoot = '/proc'): boolean {
  try {
    const v = readFileSync(`${procRoot}/sys/kernel/kptr_restrict`, 'utf8').trim();
    return v === '1' && process.getuid?.() === 0;
  } catch {
    return false;
  }
}
