// One watched window for `rxtrace explain`: the tracer (drops by cause, per socket) and two reads
// of every counter (counters/snapshot.ts) around it, then each dropping socket's sk_rcvbuf (sock_diag; ss for the rest)
// and the sysctls the findings quote. The only I/O of explain; everything it reads is the
// host's own state, and nothing is written.
import { readFileSync } from 'node:fs';
import { buildInterval } from '../counters/funnel.js';
import { RcvbufReader } from '../counters/rcvbuf.js';
import { readSnapshot } from '../counters/snapshot.js';
import { onlineCpus } from '../cpus.js';
import type { DropEvent, SocketOwner } from '../decode/events.js';
import { hasOwnerSelector, ownersMatch, type OwnerSelector } from '../owner-match.js';
import { scanSocketOwners } from '../procnet/owners.js';
import { LISTEN_STATES, readTcpSockets, type TcpSocketRow } from '../tcp-sockets.js';
import { openTracer, type RxTracer } from '../tracer.js';
import type { ExplainInput, Listener, Sysctls, Traced } from './types.js';

export interface WindowOptions {
  seconds: number;
  port?: number;
  owners?: OwnerSelector;
  /** Count drops by cause with the tracer (default true); without it, counters only. */
  trace?: boolean;
  /** Ends the window early (a stop signal): what was seen so far is explained. */
  signal?: AbortSignal;
  procRoot?: string;
  /** Called with the tracer's errors and warnings (attribution trouble), once each. */
  onProblem?: (e: Error) => void;
  /** Called when the window opens: the tracer is on and the counters' first read is done. */
  onOpen?: () => void;
}

const INT_SYSCTLS = [
  'net.core.rmem_default',
  'net.core.rmem_max',
  'net.core.netdev_max_backlog',
  'net.core.netdev_budget',
  'net.core.netdev_budget_usecs',
  'net.core.somaxconn',
  'net.ipv4.udp_rmem_min',
] as const;

export function readSysctls(procRoot = '/proc'): Sysctls {
  const out: Sysctls = {};
  const read = (name: string): string | undefined => {
    try {
      return readFileSync(`${procRoot}/sys/${name.replaceAll('.', '/')}`, 'utf8').trim();
    } catch {
      return undefined; // absent on this kernel or in this namespace: the finding says "unknown"
    }
  };
  for (const name of INT_SYSCTLS) {
    const v = Number(read(name));
    if (Number.isFinite(v) && read(name) !== undefined) out[name] = v;
  }
  for (const name of ['net.ipv4.udp_mem', 'net.ipv4.tcp_mem'] as const) {
    const t = read(name)?.split(/\s+/).map(Number);
    if (t && t.length === 3 && t.every(Number.isFinite)) out[name] = t as [number, number, number];
  }
  return out;
}

/** Tallies drops by cause per socket inode; with `aggregate`, one event stands for `count` drops. */
export function tally(t: Traced, d: DropEvent): void {
  const n = d.count ?? 1;
  t.events[d.event] = (t.events[d.event] ?? 0) + n;
  if (d.event === 'sock:sock_exceed_buf_limit') {
    // kind SK_MEM_RECV (1): receive memory; send-side excesses are not receive drops.
    const kind = d.fields.kind;
    if (kind === 'SK_MEM_RECV' || kind === 1) {
      const name = String(d.fields.name ?? '?');
      t.exceed[name] = (t.exceed[name] ?? 0) + n;
    }
    return;
  }
  if (!d.socket) {
    t.unmatched += n;
    return;
  }
  const key = String(d.socket.inode);
  const s = (t.sockets[key] ??= { rcvbuf: 0, protomem: 0, other: 0 });
  const rc = d.fields.rc;
  if (d.event === 'udp:udp_fail_queue_rcv_skb' && rc === -12) s.rcvbuf += n;
  else if (d.event === 'udp:udp_fail_queue_rcv_skb' && rc === -105) s.protomem += n;
  else s.other += n;
}

const wait = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** TCP listeners by inode (sock_diag, listeners only: the cost does not grow with connections); undefined when unreadable. */
async function readListeners(owners: Awaited<ReturnType<typeof scanSocketOwners>> | undefined, procRoot: string): Promise<Map<number, TcpSocketRow> | undefined> {
  if (!owners || procRoot !== '/proc') return undefined; // sock_diag asks the running kernel, never a fixture's /proc
  try {
    const { rows } = await readTcpSockets(owners, procRoot, undefined, LISTEN_STATES);
    return new Map(rows.filter((r) => r.inode !== 0).map((r) => [r.inode, r]));
  } catch {
    return undefined; // no sock_diag (old addon, EPERM): the TcpExt counters still speak through stats
  }
}

/** Listeners present at both ends whose sk_drops rose. */
export function listenerDeltas(prev: Map<number, TcpSocketRow>, cur: Map<number, TcpSocketRow>): Listener[] {
  const out: Listener[] = [];
  for (const [inode, c] of cur) {
    const p = prev.get(inode);
    if (!p || p.drops === null || c.drops === null || c.drops <= p.drops) continue;
    out.push({ table: c.table, inode, local: c.local, netns: c.netns, owners: c.owners, drops: c.drops - p.drops, accept_queue: c.accept_queue ?? c.rx_queue, backlog: c.backlog ?? c.tx_queue });
  }
  return out.sort((a, b) => b.drops - a.drops || a.inode - b.inode);
}

/** Watch the host for `seconds` and return what the rules need. */
export async function watchWindow(opts: WindowOptions): Promise<ExplainInput> {
  const procRoot = opts.procRoot ?? '/proc';
  let tracer: RxTracer | undefined;
  let traced: Traced | null = null;
  if (opts.trace !== false) {
    const t: Traced = { events: {}, lost: 0, sockets: {}, exceed: {}, unmatched: 0 };
    // aggregate: the reader thread counts identical drops, so a storm costs little JavaScript.
    tracer = await openTracer({ port: opts.port, resolve: true, aggregate: true, signal: opts.signal });
    tracer.on('drop', (d) => tally(t, d));
    tracer.on('lost', (l) => (t.lost += l.lost));
    tracer.on('error', (e) => opts.onProblem?.(e));
    tracer.on('warning', (e) => opts.onProblem?.(e));
    traced = t;
  }
  try {
    // TCP sockets of every state are not read (tcp: false): explain follows listeners only.
    const owners0 = await scanSocketOwners(procRoot).catch(() => undefined);
    const prev = await readSnapshot({ procRoot, tcp: false, owners: owners0 });
    const listen0 = await readListeners(owners0, procRoot);
    // Only now does the window count: start-up can take seconds (a slow or emulated host).
    opts.onOpen?.();
    await wait(opts.seconds * 1000, opts.signal);
    const owners1 = await scanSocketOwners(procRoot).catch(() => undefined);
    const cur = await readSnapshot({ procRoot, tcp: false, owners: owners1 });
    const listen1 = await readListeners(owners1, procRoot);
    // Drops still in the rings belong to the window: close() delivers them before it resolves.
    await tracer?.close();
    tracer = undefined;
    const interval = buildInterval(prev, cur);
    const otherNetns = new Map<number, number>();
    for (const s of interval.delta.sockets) {
      if (s.netns !== null && s.netns !== cur.selfNetns && s.owners[0] && !otherNetns.has(s.netns)) otherNetns.set(s.netns, s.owners[0].pid);
    }
    const skmem: ExplainInput['skmem'] = {};
    // sock_diag rows carry sk_rcvbuf; ss is asked only for sockets without it (ping, /proc source).
    const lacking = interval.delta.sockets.filter((s) => {
      const row = cur.sockets?.get(s.inode);
      if (row?.rcvbuf === undefined) return true;
      skmem[String(s.inode)] = { rcvbuf: row.rcvbuf, rmem_alloc: row.rx_queue };
      return false;
    });
    if (lacking.length > 0) {
      const all = await new RcvbufReader().read(otherNetns);
      for (const s of lacking) {
        const m = all.get(s.inode);
        if (m) skmem[String(s.inode)] = { rcvbuf: m.rcvbuf, rmem_alloc: m.rmem_alloc };
      }
    }
    const sel = opts.owners ?? {};
    const port = opts.port;
    const keepSocket =
      port !== undefined || hasOwnerSelector(sel)
        ? (s: { local: string; owners: SocketOwner[] }) =>
            (port === undefined || s.local.endsWith(`:${port}`)) && (!hasOwnerSelector(sel) || ownersMatch(s.owners, sel))
        : undefined;
    const listeners = listen0 && listen1 ? listenerDeltas(listen0, listen1) : undefined;
    return { interval, sysctl: readSysctls(procRoot), skmem, traced, cpus: onlineCpus().length, keepSocket, listeners };
  } finally {
    await tracer?.close();
  }
}
