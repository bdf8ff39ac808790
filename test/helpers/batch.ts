// Build addon-format batches by hand (layout in src/native.ts), for decoder tests and benches.

export interface SampleSpec {
  cpu: number;
  pid?: number;
  tid?: number;
  timeNs?: number;
  raw: Uint8Array;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

export function sampleRecord(s: SampleSpec): Uint8Array {
  const perfSize = align8(8 + 4 + 4 + 8 + 4 + 4 + 4 + s.raw.length);
  const rec = new Uint8Array(8 + perfSize);
  const dv = new DataView(rec.buffer);
  dv.setUint32(0, s.cpu, true);
  dv.setUint32(8, 9, true); // PERF_RECORD_SAMPLE
  dv.setUint16(12, 0, true);
  dv.setUint16(14, perfSize, true);
  dv.setUint32(16, s.pid ?? 100, true);
  dv.setUint32(20, s.tid ?? s.pid ?? 100, true);
  const t = s.timeNs ?? 1_000_000_000;
  dv.setUint32(24, t % 4294967296, true);
  dv.setUint32(28, Math.floor(t / 4294967296), true);
  dv.setUint32(32, s.cpu, true);
  dv.setUint32(40, s.raw.length, true);
  rec.set(s.raw, 44);
  return rec;
}

/** PERF_RECORD_LOST as the reader hands it on; `type` 0x10002 for the addon's UNSAMPLED record (same shape). */
export function lostRecord(cpu: number, lost: number, id = 0, type = 2): Uint8Array {
  const rec = new Uint8Array(8 + 24);
  const dv = new DataView(rec.buffer);
  dv.setUint32(0, cpu, true);
  dv.setUint32(8, type, true); // PERF_RECORD_LOST, or RECORD_UNSAMPLED
  dv.setUint16(14, 24, true);
  dv.setUint32(16, id, true);
  dv.setUint32(24, lost % 4294967296, true);
  dv.setUint32(28, Math.floor(lost / 4294967296), true);
  return rec;
}

export function concat(parts: Uint8Array[]): ArrayBuffer {
  const len = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out.buffer;
}

/** Raw bytes of udp:udp_fail_queue_rcv_skb in the 6.10+ layout. */
export function udpFailRaw(opts: {
  id: number;
  rc?: number;
  sport: number;
  dport: number;
  family?: number;
  saddr: { family: 2 | 10; ip: number[]; port: number };
  daddr: { family: 2 | 10; ip: number[]; port: number };
}): Uint8Array {
  const raw = new Uint8Array(74);
  const dv = new DataView(raw.buffer);
  dv.setUint16(0, opts.id, true);
  dv.setInt32(4, 4242, true); // common_pid
  dv.setInt32(8, opts.rc ?? -12, true);
  dv.setUint16(12, opts.sport, true);
  dv.setUint16(14, opts.dport, true);
  dv.setUint16(16, opts.family ?? opts.daddr.family, true);
  for (const [off, a] of [[18, opts.saddr], [46, opts.daddr]] as const) {
    dv.setUint16(off, a.family, true);
    dv.setUint16(off + 2, a.port, false);
    raw.set(a.ip, off + (a.family === 2 ? 4 : 8));
  }
  return raw;
}

/** The addon's aggregate record (RECORD_AGGREGATE, src/native.ts) around one sampleRecord() (its [cpu][0] prefix included). */
export function aggregateRecord(cpu: number, count: number, lastTimeNs: number, sample: Uint8Array): Uint8Array {
  const rec = new Uint8Array(8 + 24 + sample.length);
  const dv = new DataView(rec.buffer);
  dv.setUint32(0, cpu, true);
  dv.setUint32(8, 0x10001, true);
  dv.setUint16(14, 24 + sample.length, true);
  dv.setUint32(16, count % 4294967296, true);
  dv.setUint32(20, Math.floor(count / 4294967296), true);
  dv.setUint32(24, lastTimeNs % 4294967296, true);
  dv.setUint32(28, Math.floor(lastTimeNs / 4294967296), true);
  rec.set(sample, 32);
  return rec;
}
