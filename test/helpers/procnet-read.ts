// The kernel's ground truth for live tests: tiny readers of /proc/net, deliberately independent of
// the product's parsers (src/procnet), so that a bug there cannot hide behind the same bug here.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface SocketRow {
  table: string;
  inode: number;
  /** local port, or the echo ident for icmp tables */
  localPort: number;
  /** the raw local_address column, e.g. 0100007F:8F23 */
  local: string;
  tx_queue: number;
  rx_queue: number;
  drops: number;
}

function procNet(file: string, netnsPid?: number): string {
  return netnsPid === undefined ? `/proc/net/${file}` : `/proc/${netnsPid}/net/${file}`;
}

/** Every row of /proc/net/TABLE (or /proc/PID/net/TABLE: that process's netns). */
export function readSocketTable(table: string, netnsPid?: number): SocketRow[] {
  let text: string;
  try {
    text = readFileSync(procNet(table, netnsPid), 'utf8');
  } catch {
    return []; // e.g. udp6 without IPv6
  }
  // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const t = l.trim().split(/\s+/);
      const [tx, rx] = t[4].split(':');
      return {
        table,
        inode: Number(t[9]),
        localPort: parseInt(t[1].split(':')[1], 16),
        local: t[1],
        tx_queue: parseInt(tx, 16),
        rx_queue: parseInt(rx, 16),
        drops: Number(t[12]),
      };
    });
}

function findInode(tables: string[], inode: number, netnsPid?: number): SocketRow | undefined {
  for (const table of tables) {
    const row = readSocketTable(table, netnsPid).find((r) => r.inode === inode);
    if (row) return row;
  }
  return undefined;
}

/** {drops, rx_queue, …} of the UDP socket with this inode, from udp then udp6; undefined if gone.
 *  netnsPid: a pid inside the socket's netns (the sink's own pid works). */
export function udpSocketDrops(inode: number, netnsPid?: number): SocketRow | undefined {
  return findInode(['udp', 'udp6'], inode, netnsPid);
}

/** The `drops` column of a UDP sink's socket now (throws if the socket is gone); in its own netns when it has one. */
export function sinkUdpDrops(sink: { inode: number; pid: number; netns?: unknown }): number {
  const row = udpSocketDrops(sink.inode, sink.netns ? sink.pid : undefined);
  if (!row) throw new Error(`sink inode ${sink.inode} is not in /proc/net/udp*`);
  return row.drops;
}

/** Wait until a sink's drops counter is at least `atLeast` and stopped moving (two equal reads 100 ms apart; 10 s at most). */
export async function settledSinkUdpDrops(sink: { inode: number; pid: number; netns?: unknown }, atLeast: number): Promise<number> {
  let last = -1;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const d = sinkUdpDrops(sink);
    if (d === last && d >= atLeast) return d;
    if (Date.now() > deadline) return d;
    last = d;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The same for ICMP ping sockets (icmp, icmp6). */
export function icmpSocketDrops(inode: number, netnsPid?: number): SocketRow | undefined {
  return findInode(['icmp', 'icmp6'], inode, netnsPid);
}

/** One counter of /proc/net/snmp by name, e.g. snmpCounter('Udp', 'RcvbufErrors'). */
export function snmpCounter(proto: string, name: string, netnsPid?: number): number {
  const lines = readFileSync(procNet('snmp', netnsPid), 'utf8').split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = lines[i].split(/\s+/);
    const values = lines[i + 1].split(/\s+/);
    if (names[0] === `${proto}:` && values[0] === `${proto}:`) {
      const k = names.indexOf(name);
      if (k > 0) return Number(values[k]);
    }
  }
  throw new Error(`no ${proto} ${name} in ${procNet('snmp', netnsPid)}`);
}

/** One counter of /proc/net/snmp6, e.g. snmp6Counter('Udp6RcvbufErrors'). */
export function snmp6Counter(name: string, netnsPid?: number): number {
  for (const l of readFileSync(procNet('snmp6', netnsPid), 'utf8').split('\n')) {
    const [k, v] = l.split(/\s+/);
    if (k === name) return Number(v);
  }
  throw new Error(`no ${name} in ${procNet('snmp6', netnsPid)}`);
}

/** Absolute kernel counters from `nstat -asz` (no history file touched), in a netns if given. */
export function nstat(netns?: string): Record<string, number> {
  const argv = ['-asz'];
  const out = netns
    ? execFileSync('ip', ['netns', 'exec', netns, 'nstat', ...argv], { encoding: 'utf8' })
    : execFileSync('nstat', argv, { encoding: 'utf8' });
  const res: Record<string, number> = {};
  for (const l of out.split('\n')) {
    const [k, v] = l.trim().split(/\s+/);
    if (k && !k.startsWith('#') && v !== undefined) res[k] = Number(v);
  }
  return res;
}

/** Poll read() until ok(value) or timeout; returns the last value either way (assert on it). */
export async function pollUntil<T>(read: () => T, ok: (v: T) => boolean, timeoutMs = 3000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = read();
  while (!ok(v) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, everyMs));
    v = read();
  }
  return v;
}

/**
 * A UDP socket's `drops`, once it has stopped moving (loopback delivers in softirq, a little
 * after the sender returns): read every `everyMs` until two reads agree, at most `tries` times.
 */
export async function settledUdpSocketDrops(inode: number, tries = 50, everyMs = 60): Promise<number> {
  let last = udpSocketDrops(inode)?.drops ?? 0;
  for (let i = 0; i < tries; i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    const v = udpSocketDrops(inode)?.drops ?? 0;
    if (v === last) return v;
    last = v;
  }
  return last;
}
