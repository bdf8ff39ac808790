// The /proc attributor: fills `match`/`socket` on every drop. Socket tables are read on
// demand, at most every `minReadIntervalMs`, so that each event lies between a read before it
// and a read after it; owners are rescanned on a timer and when an unknown socket shows up.
// Never per event: a batch of a hundred thousand drops costs one or two reads. Per event, only
// memo lookups: what an event needs (its key) is worked out once per distinct payload, and a
// verdict once per key and window, because a storm is a few flows repeated a million times.
import { nowMonoNs } from '../decode/batch.js';
import type { DropEvent, LostEvent, SocketInfo } from '../decode/events.js';
import { OwnerCache } from '../procnet/owner-cache.js';
import { UdpGate } from '../procnet/udp-gate.js';
import type { SocketTable } from '../procnet/sockets.js';
import { dropEncoding } from '../decode/drop.js';
import { RxtraceError } from '../errors.js';
import { OwnerCgroups } from '../procnet/owner-cgroups.js';
import { CgroupTree } from '../procnet/cgroup-id.js';
import { pathIdentity } from '../procnet/cgroup.js';
import { NEED_POINTERS, ReadHistory, type NsRow } from './history.js';
import { ownNetns, readTables, type DiagTableReader, type ReadTablesOptions } from '../procnet/netns-tables.js';
import { openSocketSource, type SourceChoice } from '../sockdiag/select.js';
import type { SockDiagSource } from '../sockdiag/source.js';
import { diagTableReader } from '../sockdiag/tables.js';
import { ALL_TABLES, ALL_WITH_TCP, byAddress, byDrops, type Verdict } from './strategies.js';
import { makeNeed, type Need } from './needs.js';
import { copyInfo, GlobalFigures, pointersAreReal } from './event-facts.js';
import type { AttributionStats, Attributor, ProcAttributorOptions } from './types.js';

export type { ProcAttributorOptions } from './types.js';
import { KfreePairer, RxSkMap } from './kfree.js';
import { applyPairs, judgeKfree, tcpNoDrops } from './kfree-judge.js';
import { DropsCap } from './drops-cap.js';

const NONE: Verdict = { match: 'none' };

// Not unref()d: a close() waiting on attribution must keep the process alive until it resolves.
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ProcAttributor implements Attributor {
  private readonly procRoot: string;
  private readonly history = new ReadHistory(24);
  private readonly oc: OwnerCache;
  private readonly cgroups: OwnerCgroups;
  private readonly cgroupIds: CgroupTree;
  private readonly maxOwnerWaitNs: number;
  /** When the namespace map was last refreshed (a miss after it may be a namespace born since). */
  private lastNsRefreshNs = -Infinity;
  private lastReadNs = -Infinity;
  private readonly selfNetns: number;
  private readonly minReadNs: number;
  private readonly ownerRescanNs: number;
  private readonly realPointers: boolean;
  /** TCP sockets come from sock_diag, with drops (from /proc/net/tcp they have none). */
  private tcpDrops = false;
  private readonly globalFigures: GlobalFigures;
  /** When each socket inode first appeared in a read (to know whether an owner scan postdates it). */
  private readonly firstSeen = new Map<number, number>();
  private closed = false;
  /** Need per distinct payload (dropEncoding.identityKey), and the last event's, for a run of equals. */
  private readonly needs = new Map<string, Need>();
  private lastEvent?: DropEvent;
  private lastNeed?: Need;
  /** Sockets whose owners a full scan has yet to settle (they go out owners_pending). */
  private readonly pendingOwners = new Set<number>();
  /** The first full owner scan, started in the background by create(). */
  private firstScan?: Promise<void>;
  private onError?: (e: RxtraceError) => void;
  private onWarning?: (e: RxtraceError) => void;
  private readonly pending: { e: RxtraceError; warning: boolean }[] = [];
  /** Each kind of trouble is said once (code + file), not once per read. */
  private readonly reported = new Set<string>();
  /** sock_diag, for the tables the kernel answers (undefined: everything from /proc). */
  private diag?: { source: SockDiagSource; reader: DiagTableReader };
  private sourceChoice?: SourceChoice;
  /** Whole-table reads so far, by table (a storm must not cost one per event). */
  readonly readCounter = { wholeReads: new Map<string, number>() };
  /** kfree_skb ↔ udp event pairs, the UDP verdicts they take, and rx_sk → socket (kfree.ts). */
  private readonly pairer = new KfreePairer();
  private readonly udpVerdicts = new WeakMap<DropEvent, Verdict>();
  /** skb:kfree_skb is in the plan (create()'s `tcp`), or one has been seen: keep UDP verdicts for pairs across batches. */
  private kfreeTraced: boolean;
  readonly learned = new RxSkMap();
  private readonly dropsCap = new DropsCap();
  /** Asks a namespace's UDP tables only when its UDP error counters moved (off: RXTRACE_UDP_GATE=0). */
  private readonly udpGate?: UdpGate;

  private constructor(opts: ProcAttributorOptions) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.globalFigures = new GlobalFigures(this.procRoot);
    this.cgroups = new OwnerCgroups(this.procRoot);
    this.cgroupIds = new CgroupTree(this.procRoot);
    this.selfNetns = ownNetns(this.procRoot);
    this.minReadNs = (opts.minReadIntervalMs ?? 20) * 1e6;
    this.ownerRescanNs = (opts.ownerRescanMs ?? 2000) * 1e6;
    this.realPointers = opts.pointers === 'real' || (opts.pointers !== 'hashed' && pointersAreReal(this.procRoot));
    this.oc = new OwnerCache(this.procRoot, undefined, this.cgroupIds);
    this.maxOwnerWaitNs = (opts.maxOwnerWaitMs ?? 1000) * 1e6;
    if (process.env.RXTRACE_UDP_GATE !== '0') this.udpGate = new UdpGate(this.procRoot);
    this.kfreeTraced = opts.tcp === true;
  }

  stats(): AttributionStats {
    const s: AttributionStats = { source: { ...(this.sourceChoice?.tables ?? {}) }, wholeReads: Object.fromEntries(this.readCounter.wholeReads), owners: { ...this.oc.stats } };
    if (this.udpGate) s.udpGate = { ...this.udpGate.stats, askedByNetns: { ...this.udpGate.stats.askedByNetns } };
    return s;
  }

  /** Take the first owner scan and table read before tracing starts: every later event has a read before it. */
  static async create(opts: ProcAttributorOptions = {}): Promise<ProcAttributor> {
    const a = new ProcAttributor(opts);
    const env = opts.source && opts.source !== 'auto' ? { ...process.env, RXTRACE_SOCKET_SOURCE: opts.source } : process.env;
    const opened = await openSocketSource({ env, procRoot: opts.procRoot });
    a.sourceChoice = opened.choice;
    if (opened.diag) {
      const tables = new Set(ALL_WITH_TCP.filter((t) => opened.choice.tables[t] === 'sock_diag'));
      a.diag = { source: opened.diag, reader: diagTableReader(opened.diag, tables) };
      a.tcpDrops = tables.has('tcp') && tables.has('tcp6');
    }
    if (opts.tcp && !a.tcpDrops) a.report('tcp-no-drops', tcpNoDrops(opened.choice.why.tcp), true);
    try {
      // Namespaces now (cheap: no fds); the full owner scan (100,000 fds take seconds) runs in
      // the background, so tracing starts in well under a second whatever the fd count.
      a.lastNsRefreshNs = nowMonoNs();
      await a.oc.refreshNamespaces();
      // The start-up read is every later event's first `before`: pinned while newer reads rotate.
      // With --port only that port's sockets (sock_diag filters in the kernel: fast at any scale).
      const scoped = opts.portTables ?? ALL_TABLES.filter((t) => t.startsWith('udp'));
      const ports = opts.ports && opts.ports.length > 0 && scoped.length > 0 ? new Map(scoped.map((t) => [t, opts.ports!])) : undefined;
      await a.read(opts.tcp ? ALL_WITH_TCP : ALL_TABLES, ports, false, true);
    } catch (e) {
      a.close();
      throw e;
    }
    a.firstScan = a.scanOwners().catch((e: unknown) => {
      a.report('owner-scan', e instanceof RxtraceError ? e : new RxtraceError('EIO', String(e)));
    });
    return a;
  }

  /** Which source each table is read from, and why (doctor, the trace summary). */
  get socketSource(): SourceChoice | undefined {
    return this.sourceChoice;
  }

  /** The sock_diag source, while open (for tests: its request counts). */
  get diagSource(): SockDiagSource | undefined {
    return this.diag?.source;
  }

  get pointerMode(): 'real' | 'hashed' {
    return this.realPointers ? 'real' : 'hashed';
  }

  /**
   * Where attribution says what it could not do, each kind once; tracing goes on. Errors: a
   * table it cannot parse or read (its events say `none`). Warnings: a dropping socket whose
   * owners may be among the processes it could not look into (`owners_unknown`). What came
   * before the handlers were set is handed over now.
   */
  setErrorHandler(onError: (e: RxtraceError) => void, onWarning?: (e: RxtraceError) => void): void {
    this.onError = onError;
    this.onWarning = onWarning;
    for (const p of this.pending.splice(0)) this.deliverReport(p.e, p.warning);
  }

  private report(kind: string, e: RxtraceError, warning = false): void {
    if (this.reported.has(kind)) return;
    this.reported.add(kind);
    if (this.onError) this.deliverReport(e, warning);
    else this.pending.push({ e, warning });
  }

  private deliverReport(e: RxtraceError, warning: boolean): void {
    if (warning) this.onWarning?.(e);
    else this.onError?.(e);
  }

  private async scanOwners(): Promise<void> {
    this.lastNsRefreshNs = nowMonoNs();
    await this.oc.fullScan();
    this.cgroups.retain(this.oc.livePids);
    this.pendingOwners.clear();
    this.retainNamespaces();
  }

  /** A netlink socket pins its namespace: let go of those whose last process has gone. */
  private retainNamespaces(): void {
    const live = new Set([...this.oc.pidsByNetns.keys(), this.selfNetns]);
    if (this.diag) this.diag.source.retain(live);
    this.udpGate?.retain(live);
  }

  /** Said once, when a dropping socket first comes out owner-less while some fds were unreadable. */
  private warnOwnersUnknown(row: NsRow): void {
    if (this.reported.has('owners-denied')) return;
    // The socket's uid (its table's uid column) points at the likeliest owners: those first.
    const d = [...this.oc.ownersDenied].sort((x, y) => Number(y.uid === row.uid) - Number(x.uid === row.uid) || x.pid - y.pid);
    const shown = d.slice(0, 5).map((p) => `${p.pid} (${p.comm || '?'}${p.uid !== undefined ? `, uid ${p.uid}` : ''})`);
    const more = d.length > 5 ? ` and ${d.length - 5} more` : '';
    this.report(
      'owners-denied',
      new RxtraceError('EACCES', `no owner found for ${row.table} ${row.localText} (inode ${row.inode}, uid ${row.uid}): could not read the open files of process ${shown.join(', ')}${more}, so such sockets are marked "owners_unknown"`, {
        path: `${this.procRoot}/${d[0].pid}/fd`,
        hint: 'run rxtrace as root with CAP_SYS_PTRACE (and /proc without hidepid) to see every owner',
      }),
      true,
    );
  }

  /**
   * One read of `tables` in every namespace; sock_diag tables only on `ports` where given.
   * `pointers`: from /proc only (the pointer strategy needs its `pointer` column).
   */
  private async read(tables: readonly SocketTable[], ports?: ReadonlyMap<SocketTable, readonly number[]>, pointers = false, pin = false): Promise<void> {
    const wait = this.lastReadNs + this.minReadNs - nowMonoNs();
    if (wait > 0) await sleep(wait / 1e6);
    const opts: ReadTablesOptions = { counter: this.readCounter };
    if (this.diag && !pointers) {
      opts.diag = this.diag.reader;
      opts.ports = ports;
      opts.gate = this.udpGate;
    }
    const r = await readTables(tables, this.oc.pidsByNetns, this.selfNetns, this.procRoot, opts);
    this.lastReadNs = r.startNs;
    this.history.add(r, pin);
    this.learned.prune(r);
    for (const e of r.errors ?? []) this.report(`${e.code}:${e.path ?? e.message}`.replace(/\/\d+\/net\//, '/PID/net/'), e);
    for (const inode of r.rows.keys()) if (!this.firstSeen.has(inode)) this.firstSeen.set(inode, r.startNs);
    if (this.firstSeen.size > 4 * r.rows.size + 1024) {
      // Forget sockets that are gone, so the map tracks the live table, not history.
      if (ALL_TABLES.every((t) => r.tables.has(t)) && !r.ports) for (const inode of this.firstSeen.keys()) if (!r.rows.has(inode)) this.firstSeen.delete(inode);
    }
  }

  /** The Need of an event: from the memo when another event had the same payload. */
  private need(ev: DropEvent): Need {
    const last = this.lastEvent;
    if (last !== undefined && dropEncoding.sameIdentity(ev, last)) return this.lastNeed!;
    const k = dropEncoding.identityKey(ev);
    if (k !== undefined) {
      let n = this.needs.get(k);
      if (n === undefined) {
        if (this.needs.size >= 4096) this.needs.clear();
        n = makeNeed(this.realPointers, ev.event, dropEncoding.fieldsOf(ev), this.tcpDrops);
        this.needs.set(k, n);
      }
      this.lastEvent = ev;
      this.lastNeed = n;
      return n;
    }
    return makeNeed(this.realPointers, ev.event, ev.fields, this.tcpDrops);
  }

  /** `records`: the batch in ring order with lost records (pairing needs adjacency); default `events`. */
  async attribute(events: DropEvent[], records?: readonly (DropEvent | LostEvent)[]): Promise<void> {
    if (events.length === 0 || this.closed) return;
    const pairs = this.pairer.pair(records ?? events, fieldsOf);
    const needs = new Array<Need>(events.length);
    // One read after the newest event of each distinct need, covering every table (and, for
    // sock_diag tables, every local port) this batch needs.
    const newest = new Map<Need, number>();
    let prevNeed: Need | undefined;
    for (let i = 0; i < events.length; i++) {
      const n = (needs[i] = this.need(events[i]));
      if (n.tables.length === 0) continue;
      const t = events[i].lastMonoNs ?? events[i].monoNs;
      if (n === prevNeed && t <= newest.get(n)!) continue;
      prevNeed = n;
      if (t > (newest.get(n) ?? -Infinity)) newest.set(n, t);
    }
    const tables = new Set<SocketTable>();
    const whole = new Set<SocketTable>();
    const ports = new Map<SocketTable, Set<number>>();
    let pointers = false;
    let stale = false;
    for (const [n, t] of newest) {
      for (const tb of n.tables) {
        tables.add(tb);
        if (n.port < 0) whole.add(tb);
        else {
          let set = ports.get(tb);
          if (set === undefined) ports.set(tb, (set = new Set()));
          set.add(n.port);
        }
      }
      if (n.port === NEED_POINTERS) pointers = true;
      if (this.history.coveredUntil(n.tables, n.port) < t) stale = true;
    }
    const readPorts = new Map<SocketTable, readonly number[]>();
    for (const [tb, set] of ports) if (!whole.has(tb)) readPorts.set(tb, [...set]);
    const readAgain = (): Promise<void> => this.read([...tables], readPorts, pointers);
    if (stale) await readAgain();

    // A miss may be a socket in a namespace the first read after the event did not cover: judge
    // again against the newest read; if that still misses, rescan owners (new namespaces), read
    // again, and judge once more.
    const isMiss = (v: Verdict, i: number): boolean => v.match === 'none' && needs[i].tables.length > 0;
    const verdicts = new Array<Verdict>(events.length);
    // Each verdict's window (the reads it was judged against), for the drops cap (drops-cap.ts).
    const windows = new Array<Need['memo']>(events.length);
    const judgeAt = (i: number, wide = false): Verdict => ((verdicts[i] = this.judge(events[i], needs[i], wide)), (windows[i] = needs[i].memo), verdicts[i]);
    let misses = false;
    for (let i = 0; i < events.length; i++) if (isMiss(judgeAt(i), i)) misses = true;
    if (misses) {
      verdicts.forEach((v, i) => isMiss(v, i) && judgeAt(i, true));
      // A namespace born after the last look at namespaces: refresh the map (cheap: no fds), read again.
      if (verdicts.some((v, i) => isMiss(v, i) && events[i].monoNs > this.lastNsRefreshNs)) {
        this.lastNsRefreshNs = nowMonoNs();
        await this.oc.refreshNamespaces();
        this.retainNamespaces();
        await readAgain();
        verdicts.forEach((v, i) => isMiss(v, i) && judgeAt(i, true));
      }
    }
    if (!this.kfreeTraced && needs.some((n) => n.kind === 'kfree')) this.kfreeTraced = true;
    applyPairs(this.udpVerdicts, this.learned, events, needs, verdicts, pairs, this.kfreeTraced);
    this.dropsCap.apply(verdicts, windows, (i) => events[i].count ?? 1);
    // Owners for sockets the last full scan predates: first among their likely processes (cgroup,
    // new pids, same netns and uid); what that misses waits for a full scan (its rate is bounded
    // by its cost), at most maxOwnerWaitMs, else goes out owners_pending. An event never goes out
    // owner-less just because its socket is new. A socket first seen before the last full scan
    // and still owner-less has no owner (a kernel socket, or its process exited).
    if (this.firstScan) {
      await this.firstScan;
      this.firstScan = undefined;
    }
    const missing = new Map<number, NsRow>();
    let prevV: Verdict | undefined;
    for (const v of verdicts) {
      if (v === prevV) continue; // memoized: a run of events shares one verdict object
      prevV = v;
      if ('row' in v && !this.oc.owners.has(v.row.inode) && (this.firstSeen.get(v.row.inode) ?? Infinity) >= this.oc.lastFullNs) missing.set(v.row.inode, v.row);
    }
    const now = nowMonoNs();
    if (missing.size > 0) {
      const left = await this.oc.targeted([...missing.values()]);
      if (left.length > 0) {
        const wait = this.oc.nextFullNs() - nowMonoNs();
        if (wait <= this.maxOwnerWaitNs) {
          if (wait > 0) {
            this.oc.stats.waits++;
            this.oc.stats.waitedMs += Math.round(wait / 1e6);
            await sleep(wait / 1e6);
          }
          await this.scanOwners();
        } else {
          for (const r of left) if (!this.pendingOwners.has(r.inode)) this.pendingOwners.add(r.inode);
        }
      }
    } else if (now - this.oc.lastFullNs > this.ownerRescanNs && now >= this.oc.nextFullNs()) {
      await this.scanOwners();
    }
    let global: Record<string, unknown> | undefined;
    // The SocketInfo of the previous verdict, copied per event (consumers may change theirs).
    let infoOf: Verdict | undefined;
    let info: SocketInfo | undefined;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      const v = verdicts[i];
      if (needs[i].kind === 'global') {
        global ??= await this.globalFigures.read();
        ev.match = 'global';
        ev.socket = null;
        ev.global = { ...global, proto: ev.fields.name };
        continue;
      }
      ev.match = v.match;
      if ('row' in v) {
        if (v !== infoOf) {
          info = this.socketInfo(v.row, v.stale);
          infoOf = v;
        }
        ev.socket = copyInfo(info!);
      } else ev.socket = null;
      if (v.match === 'ambiguous') ev.candidates = v.candidates.slice();
    }
  }

  /**
   * `wide`: measure up to the newest read instead of the first read after the event (a retry
   * after a rescan found a namespace the first read did not cover). Wider, still exact.
   */
  private judge(ev: DropEvent, need: Need, wide = false): Verdict {
    if (need.tables.length === 0) return NONE;
    const w = this.history.window(ev.monoNs, need.tables, need.port);
    // An aggregate spans its first to its last drop: the read before the first, the read after the last.
    const last = ev.lastMonoNs;
    const wAfter = last === undefined || last === ev.monoNs ? w : this.history.window(last, need.tables, need.port);
    const before = w.before;
    const after = wide ? this.history.latestCovering(need.tables, need.port) ?? wAfter.after : wAfter.after;
    const m = need.memo;
    const learned = need.kind === 'kfree' ? this.learned.version : 0;
    if (m !== undefined && m.before === before && m.after === after && m.learned === learned) return m.verdict;
    let verdict: Verdict = NONE;
    if (need.kind === 'udp') verdict = need.key ? byAddress(need.key, before, after) : NONE;
    else if (need.kind === 'rcvqueue') verdict = byDrops(need.tables, before, after);
    else if (need.kind === 'kfree') verdict = judgeKfree(this.learned, this.realPointers, ev, need, before, after);
    need.memo = { before, after, learned: need.kind === 'kfree' ? this.learned.version : 0, verdict };
    return verdict;
  }

  private socketInfo(row: NsRow, stale: boolean): SocketInfo {
    const owners = this.oc.owners.get(row.inode);
    const info: SocketInfo = {
      table: row.table,
      inode: row.inode,
      local: row.localText,
      remote: row.remoteText,
      rx_queue: row.rx_queue,
      drops: row.drops ?? null,
      netns: row.netns || null,
      owners: owners ? this.cgroups.owners(owners) : [],
    };
    const cgroup = this.cgroupIds.path(row.cgroupId);
    if (cgroup !== undefined) Object.assign(info, pathIdentity(cgroup));
    if (stale) info.stale = true;
    if (owners === undefined && this.pendingOwners.has(row.inode)) {
      info.owners_pending = true;
      this.oc.stats.pending++;
    }
    // No owner found while some processes' fds were unreadable: "nobody" would be a guess.
    if (owners === undefined && this.oc.ownersDenied.length > 0) {
      info.owners_unknown = true;
      this.warnOwnersUnknown(row);
    }
    return info;
  }

  close(): void {
    this.closed = true;
    this.firstScan?.catch(() => undefined);
    this.diag?.source.close();
  }
}

/** The fields pairing looks at (a fresh object for a decoded event: nothing is kept on it). */
function fieldsOf(ev: DropEvent): Record<string, unknown> {
  return dropEncoding.fieldsOf(ev);
}
