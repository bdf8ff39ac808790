// The request side of NETLINK_SOCK_DIAG: one SOCK_DIAG_BY_FAMILY dump message, an
// inet_diag_req_v2 (include/uapi/linux/inet_diag.h) and an optional INET_DIAG_REQ_BYTECODE
// filter on the local port, so the kernel sends only the sockets in play (as `ss 'sport = :P'`).
// Little-endian host fields are written in host order; ports in the bytecode are host order too.
import { RxtraceError } from '../errors.js';

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH
/** sizeof(struct inet_diag_req_v2): family, protocol, ext, pad/raw protocol, states, sockid(48). */
export const REQ_V2_LEN = 56;
const INET_DIAG_REQ_BYTECODE = 1;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_UDPLITE = 136;
export const IPPROTO_RAW = 255;

/** Reply attributes asked for with idiag_ext (bit = 1 << (attr - 1)). */
export const EXT_MEMINFO = 1 << 0; // INET_DIAG_MEMINFO
export const EXT_INFO = 1 << 1; // INET_DIAG_INFO (tcp_info)
export const EXT_SKMEMINFO = 1 << 6; // INET_DIAG_SKMEMINFO (u32[SK_MEMINFO_VARS], drops at [8])

/** Every state (UDP sockets are TCP_CLOSE 7 or TCP_ESTABLISHED 1; TCP asks for a mask). */
export const ALL_STATES = 0xffffffff;

// inet_diag_bc_op codes used here.
const BC_JMP = 1;
const BC_S_EQ = 11;

export interface DiagRequest {
  family: typeof AF_INET | typeof AF_INET6;
  protocol: number;
  /** Bit mask of 1 << sk_state (TCP_LISTEN = 10: 1 << 10). Default: every state. */
  states?: number;
  /** idiag_ext bits; default EXT_SKMEMINFO. */
  ext?: number;
  /** For protocol IPPROTO_RAW: the raw socket's protocol (its inet_num); IPPROTO_RAW = any. */
  rawProtocol?: number;
  /** Only sockets whose local port (a raw socket's protocol) is one of these; absent = all. */
  localPorts?: readonly number[];
}

/**
 * The bytecode for "local port is one of `ports`", laid out as iproute2's ss does for `a || b`:
 * per port an S_EQ op with the port in the next op's `no` field; a match falls through to a JMP
 * that leaps to the end (accept), a miss jumps to the next port's S_EQ, the last miss beyond the
 * end (reject). The kernel audits it (inet_diag_bc_audit) along the `yes` path: every op sits on it.
 */
export function portBytecode(ports: readonly number[]): Uint8Array {
  if (ports.length === 0) throw new RxtraceError('EINVAL', 'portBytecode: no ports');
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new RxtraceError('EBADPORT', `sock_diag filter: port ${p} is not 0-65535`, { hint: 'give a port number from 0 to 65535' });
  }
  const total = ports.length * 12 - 4;
  const buf = new Uint8Array(total);
  const dv = new DataView(buf.buffer);
  const op = (off: number, code: number, yes: number, no: number): void => {
    dv.setUint8(off, code);
    dv.setUint8(off + 1, yes);
    dv.setUint16(off + 2, no, true);
  };
  for (let i = 0; i < ports.length; i++) {
    const off = i * 12;
    const last = i === ports.length - 1;
    const rem = total - off;
    op(off, BC_S_EQ, 8, last ? rem + 4 : 12);
    op(off + 4, 0, 0, ports[i]);
    if (!last) op(off + 8, BC_JMP, 4, total - (off + 8));
  }
  if (total > 65535) throw new RxtraceError('EINVAL', `sock_diag filter: ${ports.length} ports is too many for one request`);
  return buf;
}

/** One complete netlink message: nlmsghdr + inet_diag_req_v2 [+ rtattr bytecode]. seq is set by the addon. */
export function encodeDiagRequest(r: DiagRequest): ArrayBuffer {
  const bc = r.localPorts && r.localPorts.length > 0 ? portBytecode([...new Set(r.localPorts)].sort((a, b) => a - b)) : undefined;
  const attrLen = bc ? 4 + bc.length : 0;
  const len = NLMSG_HDRLEN + REQ_V2_LEN + align4(attrLen);
  const buf = new ArrayBuffer(len);
  const dv = new DataView(buf);
  dv.setUint32(0, len, true);
  dv.setUint16(4, SOCK_DIAG_BY_FAMILY, true);
  dv.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
  dv.setUint32(8, 0, true); // seq: the addon numbers each request
  dv.setUint32(12, 0, true); // pid: the kernel
  const o = NLMSG_HDRLEN;
  dv.setUint8(o, r.family);
  dv.setUint8(o + 1, r.protocol);
  dv.setUint8(o + 2, r.ext ?? EXT_SKMEMINFO);
  dv.setUint8(o + 3, r.protocol === IPPROTO_RAW ? r.rawProtocol ?? IPPROTO_RAW : 0);
  dv.setUint32(o + 4, (r.states ?? ALL_STATES) >>> 0, true);
  // sockid: all zero (no exact-socket lookup), cookie = INET_DIAG_NOCOOKIE
  dv.setUint32(o + 8 + 40, 0xffffffff, true);
  dv.setUint32(o + 8 + 44, 0xffffffff, true);
  if (bc) {
    const a = NLMSG_HDRLEN + REQ_V2_LEN;
    dv.setUint16(a, attrLen, true);
    dv.setUint16(a + 2, INET_DIAG_REQ_BYTECODE, true);
    new Uint8Array(buf, a + 4, bc.length).set(bc);
  }
  return buf;
}

export function align4(n: number): number {
  return (n + 3) & ~3;
}
