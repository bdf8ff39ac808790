// SockDiagSource: sockets asked of the kernel over NETLINK_SOCK_DIAG, one netlink socket per
// network namespace (opened by the addon after setns() on a thread of its own, cached, closed
// when its namespace has no process left), and the replies decoded here. A lookup costs what
// the sockets on one port cost, not what the whole table costs (/proc/net/udp is quadratic).
import { readlinkSync } from 'node:fs';
import { errnoCode, RxtraceError } from '../errors.js';
import { loadNative, type NativeSockDiag } from '../native.js';
import { netnsInodeFromLink } from '../procnet/owners.js';
import { decodeDiagReply, type DiagSocket } from './decode.js';
import { encodeDiagRequest, type DiagRequest } from './encode.js';

/** A namespace to ask in: its inode (the cache key) and pids that live in it (its way in). */
export interface NetnsRef {
  inode: number;
  /** Empty for our own namespace; else pids of that namespace, tried in order. */
  pids: readonly number[];
  /** True for the namespace rxtrace runs in (no setns needed). */
  self?: boolean;
}

export class SockDiagSource {
  private closed = false;
  /** Namespaces with an open netlink socket (as far as we know: a failed query closes its own). */
  private readonly keys = new Set<number>();
  /** Requests and replies, for tests and the bench ("no whole-table read per event"). */
  readonly stats = { queries: 0, requests: 0, sockets: 0, fullDumps: 0 };

  private constructor(private readonly native: NativeSockDiag, private readonly procRoot: string) {}

  /** Throws RxtraceError ENOSYS when the addon was built without sock_diag. */
  static open(procRoot = '/proc'): SockDiagSource {
    const addon = loadNative();
    if (typeof addon.SockDiag !== 'function') throw new RxtraceError('ENOSYS', 'this build of the rxtrace addon has no sock_diag support', { hint: 'rebuild it: npx node-gyp rebuild' });
    return new SockDiagSource(new addon.SockDiag(), procRoot);
  }

  /**
   * Run `requests` in namespace `ns`; one socket list per request. Through the first of `ns.pids`
   * that still lives in that namespace. Errors are RxtraceErrors: the errno name of the failed
   * call (ENOENT when the kernel has no diag module for a protocol, EPERM/EACCES when denied,
   * ESRCH when no pid of the namespace is left), EPARSE for a malformed reply.
   */
  async query(ns: NetnsRef, requests: readonly DiagRequest[]): Promise<DiagSocket[][]> {
    if (this.closed) throw new RxtraceError('EBADF', 'sock_diag source is closed');
    const bufs = requests.map(encodeDiagRequest);
    this.stats.queries++;
    this.stats.requests += requests.length;
    for (const r of requests) if (!r.localPorts || r.localPorts.length === 0) this.stats.fullDumps++;
    let replies: ArrayBuffer[] | undefined;
    if (ns.self) replies = await this.run(ns.inode, '', bufs);
    else {
      let last: unknown;
      for (const pid of ns.pids) {
        const path = `${this.procRoot}/${pid}/ns/net`;
        // The pid may have exited, or its number been reused in another namespace.
        let now: number | undefined;
        try {
          now = netnsInodeFromLink(readlinkSync(path));
        } catch (e) {
          last = e;
          continue;
        }
        if (now !== ns.inode) continue;
        try {
          replies = await this.run(ns.inode, path, bufs);
          break;
        } catch (e) {
          last = e;
          if (errnoCode(e) === 'ENOENT' && (e as { syscall?: string }).syscall?.startsWith('open(')) continue;
          throw e;
        }
      }
      if (!replies) {
        throw new RxtraceError('ESRCH', `no process left in network namespace ${ns.inode} to reach it through`, { cause: last, hint: 'the namespace has gone with its last process' });
      }
    }
    const out = replies.map((r) => decodeDiagReply(r));
    for (const l of out) this.stats.sockets += l.length;
    return out;
  }

  private async run(key: number, nsPath: string, bufs: ArrayBuffer[]): Promise<ArrayBuffer[]> {
    try {
      const r = await this.native.query(key, nsPath, bufs);
      this.keys.add(key);
      return r;
    } catch (e) {
      this.keys.delete(key);
      throw asError(e);
    }
  }

  /** Close the netlink sockets of namespaces not in `live` (each one pins its namespace). */
  retain(live: ReadonlySet<number>): void {
    for (const k of [...this.keys]) if (!live.has(k)) this.forget(k);
  }

  forget(netnsInode: number): void {
    this.keys.delete(netnsInode);
    if (!this.closed) this.native.forget(netnsInode);
  }

  /** Netlink sockets held open (one per namespace asked). */
  openCount(): number {
    return this.closed ? 0 : this.native.openCount();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}

function asError(e: unknown): RxtraceError {
  if (e instanceof RxtraceError) return e;
  const n = e as { code?: string; errno?: number; syscall?: string; message?: string };
  const code = n?.code ?? 'EIO';
  const hint =
    code === 'EPERM' || code === 'EACCES'
      ? 'entering another network namespace needs CAP_SYS_ADMIN; run as root, or force the /proc reader with RXTRACE_SOCKET_SOURCE=proc'
      : code === 'EPROTONOSUPPORT' || code === 'ENOENT'
        ? 'the kernel has no sock_diag for this (modprobe inet_diag udp_diag raw_diag), or force the /proc reader with RXTRACE_SOCKET_SOURCE=proc'
        : undefined;
  return new RxtraceError(code, `sock_diag: ${n?.message ?? String(e)}`, { errno: n?.errno, syscall: n?.syscall, cause: e, hint });
}
