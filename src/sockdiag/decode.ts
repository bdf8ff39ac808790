// The reply side of NETLINK_SOCK_DIAG: walk the netlink messages of one dump, check every length
// against the buffer (a short or malformed reply is an error, never a silently shorter list),
// and decode each inet_diag_msg with the attributes rxtrace reads: SKMEMINFO, CGROUP_ID, SHUTDOWN.
import { RxtraceError } from '../errors.js';
import { ipv4FromBytes, ipv6FromBytes, type Endpoint } from '../procnet/addr.js';
import { AF_INET, AF_INET6, align4, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, SOCK_DIAG_BY_FAMILY } from './encode.js';

/** sizeof(struct inet_diag_msg). */
export const DIAG_MSG_LEN = 72;
const INET_DIAG_SKMEMINFO = 7;
const INET_DIAG_SHUTDOWN = 8;
const INET_DIAG_CGROUP_ID = 21;

/** INET_DIAG_SKMEMINFO: u32[SK_MEMINFO_VARS]; older kernels send fewer (no DROPS before 4.x). */
export interface SkMemInfo {
  rmemAlloc: number;
  rcvbuf: number;
  wmemAlloc: number;
  sndbuf: number;
  fwdAlloc: number;
  wmemQueued: number;
  optmem: number;
  backlog?: number;
  /** sk_drops; undefined when the kernel's array stops before it ("unknown", not 0). */
  drops?: number;
}

export interface DiagSocket {
  family: typeof AF_INET | typeof AF_INET6;
  /** sk_state: 7 TCP_CLOSE (unconnected UDP), 1 ESTABLISHED, 10 LISTEN… */
  state: number;
  local: Endpoint;
  remote: Endpoint;
  /** Bound device index (0 = none). */
  ifindex: number;
  /** sock_gen_cookie, as a decimal string (u64). */
  cookie: string;
  /** UDP: receive queue bytes; a TCP listener: its accept queue length. */
  rqueue: number;
  /** UDP: send queue bytes; a TCP listener: its accept backlog (listen() argument). */
  wqueue: number;
  uid: number;
  inode: number;
  mem?: SkMemInfo;
  /** The socket's cgroup v2 inode (5.8+), as a decimal string (u64). */
  cgroupId?: string;
  shutdown?: number;
}

export class SockDiagParseError extends RxtraceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('EPARSE', `sock_diag reply: ${message}`, { details, hint: 'report this with your kernel version (uname -r): rxtrace can fall back to /proc with RXTRACE_SOCKET_SOURCE=proc' });
    this.name = 'SockDiagParseError';
  }
}

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 22: 'EINVAL', 12: 'ENOMEM', 93: 'EPROTONOSUPPORT', 95: 'EOPNOTSUPP', 97: 'EAFNOSUPPORT' };

/**
 * The sockets in the reply bytes of one dump request. Throws RxtraceError with the errno's name
 * when the kernel answered NLMSG_ERROR (ENOENT: no diag module for that protocol), and
 * SockDiagParseError when the bytes do not hold whole messages or the dump did not end.
 */
export function decodeDiagReply(buf: ArrayBuffer | Uint8Array): DiagSocket[] {
  const u8 = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const out: DiagSocket[] = [];
  let off = 0;
  while (off < u8.length) {
    if (off + NLMSG_HDRLEN > u8.length) throw new SockDiagParseError(`truncated netlink header at byte ${off} of ${u8.length}`);
    const len = dv.getUint32(off, true);
    const type = dv.getUint16(off + 4, true);
    if (len < NLMSG_HDRLEN || off + len > u8.length) throw new SockDiagParseError(`netlink message length ${len} at byte ${off} runs past ${u8.length}`);
    if (type === NLMSG_DONE) return out;
    if (type === NLMSG_ERROR) {
      if (len < NLMSG_HDRLEN + 4) throw new SockDiagParseError('NLMSG_ERROR without an error code');
      const err = -dv.getInt32(off + NLMSG_HDRLEN, true);
      if (err === 0) return out; // an ACK
      const code = ERRNO_NAMES[err] ?? `E${err}`;
      throw new RxtraceError(code, `sock_diag request refused by the kernel: errno ${err} (${code})`, { errno: -err, syscall: 'sock_diag' });
    }
    if (type !== SOCK_DIAG_BY_FAMILY) throw new SockDiagParseError(`unexpected netlink message type ${type}`);
    out.push(decodeDiagMsg(dv, off + NLMSG_HDRLEN, off + len));
    off += align4(len);
  }
  throw new SockDiagParseError(`the dump ended without NLMSG_DONE after ${out.length} sockets`);
}

function decodeDiagMsg(dv: DataView, o: number, end: number): DiagSocket {
  if (o + DIAG_MSG_LEN > end) throw new SockDiagParseError(`inet_diag_msg of ${end - o} bytes, expected ${DIAG_MSG_LEN}`);
  const family = dv.getUint8(o);
  if (family !== AF_INET && family !== AF_INET6) throw new SockDiagParseError(`address family ${family}`);
  const u8 = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  const addr = (at: number): string => (family === AF_INET ? ipv4FromBytes(u8, at) : ipv6FromBytes(u8, at));
  const s: DiagSocket = {
    family,
    state: dv.getUint8(o + 1),
    local: { addr: addr(o + 8), port: dv.getUint16(o + 4, false) },
    remote: { addr: addr(o + 24), port: dv.getUint16(o + 6, false) },
    ifindex: dv.getUint32(o + 40, true),
    cookie: ((BigInt(dv.getUint32(o + 48, true)) << 32n) | BigInt(dv.getUint32(o + 44, true))).toString(),
    rqueue: dv.getUint32(o + 56, true),
    wqueue: dv.getUint32(o + 60, true),
    uid: dv.getUint32(o + 64, true),
    inode: dv.getUint32(o + 68, true),
  };
  let a = o + DIAG_MSG_LEN;
  while (a + 4 <= end) {
    const alen = dv.getUint16(a, true);
    const atype = dv.getUint16(a + 2, true) & 0x3fff; // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (alen < 4 || a + alen > end) throw new SockDiagParseError(`attribute ${atype} of length ${alen} runs past its message`);
    const p = a + 4;
    const plen = alen - 4;
    if (atype === INET_DIAG_SKMEMINFO) s.mem = memInfo(dv, p, plen);
    else if (atype === INET_DIAG_CGROUP_ID && plen >= 8) s.cgroupId = dv.getBigUint64(p, true).toString();
    else if (atype === INET_DIAG_SHUTDOWN && plen >= 1) s.shutdown = dv.getUint8(p);
    a += align4(alen);
  }
  return s;
}

function memInfo(dv: DataView, p: number, len: number): SkMemInfo {
  const n = Math.floor(len / 4);
  if (n < 7) throw new SockDiagParseError(`INET_DIAG_SKMEMINFO of ${len} bytes, expected at least 28`);
  const v = (i: number): number => dv.getUint32(p + 4 * i, true);
  const m: SkMemInfo = { rmemAlloc: v(0), rcvbuf: v(1), wmemAlloc: v(2), sndbuf: v(3), fwdAlloc: v(4), wmemQueued: v(5), optmem: v(6) };
  if (n > 7) m.backlog = v(7);
  if (n > 8) m.drops = v(8);
  return m;
}
