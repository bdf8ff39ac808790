// What the attributor attaches to events besides the verdict: the protocol-memory figures of a
// `global` match, a per-event copy of a socket's info, and whether /proc shows real pointers.
import { readFileSync } from 'node:fs';
import { nowMonoNs } from '../decode/batch.js';
import type { SocketInfo } from '../decode/events.js';
import { getPageSize } from '../native.js';
import { readProtoMem, readSockstat } from '../procnet/sockstat.js';

/** udp_mem/tcp_mem and sockstat for `global` matches, read at most every 100 ms in a storm. */
export class GlobalFigures {
  private cache?: { atNs: number; value: Record<string, unknown> };

  constructor(private readonly procRoot: string) {}

  async read(): Promise<Record<string, unknown>> {
    const now = nowMonoNs();
    if (this.cache && now - this.cache.atNs < 100e6) return this.cache.value;
    const [mem, sockstat] = await Promise.all([readProtoMem(this.procRoot), readSockstat(this.procRoot)]);
    const value = {
      udp_mem: mem.udp_mem ?? null,
      tcp_mem: mem.tcp_mem ?? null,
      sockstat: { UDP: sockstat.UDP ?? null, UDP6: sockstat.UDP6 ?? null, TCP: sockstat.TCP ?? null },
      page_size: getPageSize(),
    };
    this.cache = { atNs: now, value };
    return value;
  }
}

/** A socket's info for one event (consumers may change theirs): optional keys only when set. */
export function copyInfo(i: SocketInfo): SocketInfo {
  const c: SocketInfo = { table: i.table, inode: i.inode, local: i.local, remote: i.remote, rx_queue: i.rx_queue, drops: i.drops, netns: i.netns, owners: i.owners };
  if (i.stale) c.stale = true;
  if (i.owners_unknown) c.owners_unknown = true;
  for (const k of ['cgroup', 'unit', 'container', 'pod'] as const) if (i[k] !== undefined) c[k] = i[k];
  if (i.owners_pending) c.owners_pending = true;
  return c;
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
