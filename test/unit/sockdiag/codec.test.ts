// The netlink codec of src/sockdiag: requests byte for byte, replies decoded from hand-built
// messages, and truncated or malformed replies rejected (never a silently shorter list).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RxtraceError } from '../../../src/errors.js';
import { decodeDiagReply, DIAG_MSG_LEN, SockDiagParseError } from '../../../src/sockdiag/decode.js';
import { AF_INET, AF_INET6, encodeDiagRequest, EXT_SKMEMINFO, IPPROTO_RAW, IPPROTO_UDP, NLMSG_DONE, NLMSG_ERROR, portBytecode, REQ_V2_LEN, SOCK_DIAG_BY_FAMILY } from '../../../src/sockdiag/encode.js';

/** A JS model of the kernel's inet_diag_bc_run (net/ipv4/inet_diag.c) for the ops we emit. */
function runBytecode(bc: Uint8Array, sport: number): boolean {
  const dv = new DataView(bc.buffer, bc.byteOffset, bc.byteLength);
  let off = 0;
  let len = bc.length;
  while (len > 0) {
    const code = dv.getUint8(off);
    const yesJ = dv.getUint8(off + 1);
    const noJ = dv.getUint16(off + 2, true);
    let yes = true;
    if (code === 1) yes = false; // JMP
    else if (code === 11) yes = sport === dv.getUint16(off + 6, true); // S_EQ: port in op[1].no
    else if (code !== 0) throw new Error(`op ${code}`);
    const j = yes ? yesJ : noJ;
    off += j;
    len -= j;
  }
  return len === 0;
}

/** The kernel's audit (inet_diag_bc_audit + valid_cc) for the ops we emit. */
function auditBytecode(bc: Uint8Array): boolean {
  const dv = new DataView(bc.buffer, bc.byteOffset, bc.byteLength);
  const reachable = new Set<number>();
  let off = 0;
  let len = bc.length;
  while (len > 0) {
    reachable.add(off);
    const code = dv.getUint8(off);
    const yes = dv.getUint8(off + 1);
    const no = dv.getUint16(off + 2, true);
    let minLen = 4;
    if (code === 11) {
      if (len < 8) return false;
      minLen = 8;
    } else if (code !== 1 && code !== 0) return false;
    if (code !== 0 && (no < minLen || no > len + 4 || no % 4)) return false;
    if (yes < minLen || yes > len + 4 || yes % 4) return false;
    off += yes;
    len -= yes;
  }
  // every `no` target inside the program must be an op on the yes path (valid_cc)
  off = 0;
  len = bc.length;
  while (len > 0) {
    const code = dv.getUint8(off);
    const no = dv.getUint16(off + 2, true);
    if (code !== 0 && no < len && !reachable.has(off + no)) return false;
    const yes = dv.getUint8(off + 1);
    off += yes;
    len -= yes;
  }
  return true;
}

function msg(type: number, payload: Uint8Array, seq = 1): Uint8Array {
  const len = 16 + payload.length;
  const out = new Uint8Array((len + 3) & ~3);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, type, true);
  dv.setUint32(8, seq, true);
  out.set(payload, 16);
  return out;
}

function diagMsg(o: { family?: number; sport: number; inode: number; drops?: number; cgroup?: bigint; v6?: boolean }): Uint8Array {
  const attrs: Uint8Array[] = [];
  if (o.drops !== undefined) {
    const a = new Uint8Array(4 + 9 * 4);
    const dv = new DataView(a.buffer);
    dv.setUint16(0, a.length, true);
    dv.setUint16(2, 7, true);
    dv.setUint32(4 + 8 * 4, o.drops, true);
    dv.setUint32(4, 2304, true); // rmem_alloc
    attrs.push(a);
  }
  if (o.cgroup !== undefined) {
    const a = new Uint8Array(12);
    const dv = new DataView(a.buffer);
    dv.setUint16(0, 12, true);
    dv.setUint16(2, 21, true);
    dv.setBigUint64(4, o.cgroup, true);
    attrs.push(a);
  }
  const body = new Uint8Array(DIAG_MSG_LEN + attrs.reduce((n, a) => n + a.length, 0));
  const dv = new DataView(body.buffer);
  const fam = o.family ?? (o.v6 ? AF_INET6 : AF_INET);
  dv.setUint8(0, fam);
  dv.setUint8(1, 7);
  dv.setUint16(4, o.sport, false);
  if (fam === AF_INET) body.set([127, 0, 0, 1], 8);
  else body[8 + 15] = 1; // ::1
  dv.setUint32(56, 2304, true);
  dv.setUint32(64, 1000, true);
  dv.setUint32(68, o.inode, true);
  let off = DIAG_MSG_LEN;
  for (const a of attrs) {
    body.set(a, off);
    off += a.length;
  }
  return msg(SOCK_DIAG_BY_FAMILY, body);
}

const done = (): Uint8Array => msg(NLMSG_DONE, new Uint8Array(4));
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

describe('encodeDiagRequest', () => {
  it('lays out nlmsghdr + inet_diag_req_v2 for a UDP dump without a filter', () => {
    const b = new DataView(encodeDiagRequest({ family: AF_INET, protocol: IPPROTO_UDP }));
    expect(b.byteLength).toBe(16 + REQ_V2_LEN);
    expect(b.getUint32(0, true)).toBe(b.byteLength);
    expect(b.getUint16(4, true)).toBe(SOCK_DIAG_BY_FAMILY);
    expect(b.getUint16(6, true)).toBe(0x301); // REQUEST | DUMP
    expect([b.getUint8(16), b.getUint8(17), b.getUint8(18), b.getUint8(19)]).toEqual([AF_INET, IPPROTO_UDP, EXT_SKMEMINFO, 0]);
    expect(b.getUint32(20, true)).toBe(0xffffffff);
  });

  it('puts the raw protocol in the pad byte for raw_diag', () => {
    const b = new DataView(encodeDiagRequest({ family: AF_INET6, protocol: IPPROTO_RAW, rawProtocol: 58 }));
    expect([b.getUint8(16), b.getUint8(17), b.getUint8(19)]).toEqual([AF_INET6, IPPROTO_RAW, 58]);
  });

  it('appends INET_DIAG_REQ_BYTECODE for local ports', () => {
    const b = new DataView(encodeDiagRequest({ family: AF_INET, protocol: IPPROTO_UDP, localPorts: [5000] }));
    expect(b.byteLength).toBe(16 + REQ_V2_LEN + 4 + 8);
    expect(b.getUint16(16 + REQ_V2_LEN, true)).toBe(12);
    expect(b.getUint16(16 + REQ_V2_LEN + 2, true)).toBe(1);
  });

  it('rejects a port out of range with a typed error', () => {
    expect(() => portBytecode([70000])).toThrow(expect.objectContaining({ code: 'EBADPORT' }));
  });

  it('property: the bytecode passes the kernel audit and accepts exactly the given ports', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 65535 }), (ports, probe) => {
        const bc = portBytecode(ports);
        expect(auditBytecode(bc)).toBe(true);
        expect(runBytecode(bc, probe)).toBe(ports.includes(probe));
        for (const p of ports) expect(runBytecode(bc, p)).toBe(true);
      }),
    );
  });
});

describe('decodeDiagReply', () => {
  it('decodes sockets, SKMEMINFO drops and the cgroup id, up to NLMSG_DONE', () => {
    const r = decodeDiagReply(concat(diagMsg({ sport: 5000, inode: 42, drops: 99, cgroup: 1234n }), diagMsg({ sport: 5001, inode: 43, v6: true }), done()));
    expect(r).toHaveLength(2);
    expect(r[0]).toMatchObject({ family: AF_INET, local: { addr: '127.0.0.1', port: 5000 }, inode: 42, uid: 1000, rqueue: 2304, cgroupId: '1234' });
    expect(r[0].mem).toMatchObject({ rmemAlloc: 2304, drops: 99 });
    expect(r[1]).toMatchObject({ family: AF_INET6, local: { addr: '::1', port: 5001 }, inode: 43 });
    expect(r[1].mem).toBeUndefined();
  });

  it('turns NLMSG_ERROR into an RxtraceError named after the errno', () => {
    const err = new Uint8Array(20);
    new DataView(err.buffer).setInt32(0, -2, true);
    expect(() => decodeDiagReply(msg(NLMSG_ERROR, err))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('rejects a dump without NLMSG_DONE, and every truncation of a good reply', () => {
    const good = concat(diagMsg({ sport: 5000, inode: 42, drops: 1, cgroup: 9n }), done());
    expect(() => decodeDiagReply(good.subarray(0, good.length - 20))).toThrow(SockDiagParseError);
    for (let n = 1; n < good.length - 20; n++) expect(() => decodeDiagReply(good.subarray(0, n))).toThrow(SockDiagParseError);
  });

  it('rejects an unknown family and a short SKMEMINFO', () => {
    expect(() => decodeDiagReply(concat(diagMsg({ family: 1, sport: 1, inode: 1 }), done()))).toThrow(/address family 1/);
    const m = diagMsg({ sport: 1, inode: 1 });
    const withAttr = concat(m.subarray(0, 16 + DIAG_MSG_LEN), new Uint8Array([8, 0, 7, 0, 0, 0, 0, 0]));
    new DataView(withAttr.buffer).setUint32(0, withAttr.length, true);
    expect(() => decodeDiagReply(concat(withAttr, done()))).toThrow(/SKMEMINFO/);
  });

  it('fuzz: any bytes decode to sockets or a typed error, never anything else', () => {
    const good = concat(diagMsg({ sport: 5000, inode: 42, drops: 1, cgroup: 9n }), diagMsg({ sport: 7, inode: 3, v6: true, drops: 0 }), done());
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(good.length), (flips, cut) => {
        const b = good.slice(0, cut);
        for (const [i, v] of flips) if (i < b.length) b[i] = v;
        try {
          const r = decodeDiagReply(b);
          for (const s of r) expect(Number.isInteger(s.inode)).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(RxtraceError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
