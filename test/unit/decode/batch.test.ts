import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BatchDecoder, RECORD_UNSAMPLED } from '../../../src/decode/batch.js';
import { WallClock } from '../../../src/decode/clock.js';
import { compileSchema } from '../../../src/decode/compile.js';
import type { DropEvent, LostEvent } from '../../../src/decode/events.js';
import { parseFormat } from '../../../src/format/parse.js';
import { recordToJson } from '../../../src/render/ndjson.js';
import { lostToText } from '../../../src/render/text.js';
import { aggregateRecord, concat, lostRecord, sampleRecord, udpFailRaw } from '../../helpers/batch.js';

const fx = (p: string): string => readFileSync(new URL(`../../fixtures/format/${p}`, import.meta.url), 'utf8');
const udp = compileSchema(parseFormat(fx('6.18/udp_fail_queue_rcv_skb.format'), 'udp'));
const full = compileSchema(parseFormat(fx('6.18/sock_rcvqueue_full.format'), 'sock'));
const exceed = compileSchema(parseFormat(fx('6.18/sock_exceed_buf_limit.format'), 'sock'));
const kfree = compileSchema(parseFormat(fx('6.18/kfree_skb.format'), 'skb'));

function run(buf: ArrayBuffer, events = [udp, full, exceed, kfree], offset = 0n) {
  const dec = new BatchDecoder(events, new WallClock(offset));
  const drops: DropEvent[] = [];
  const lost: LostEvent[] = [];
  dec.decode(buf, { drop: (e) => drops.push(e), lost: (e) => lost.push(e) });
  return { drops, lost, counters: dec.counters };
}

describe('batch decoder', () => {
  it('an aggregate record is one event standing for `count` drops, with the first sample\'s values', () => {
    const raw = udpFailRaw({ id: 2282, sport: 1, dport: 5000, saddr: { family: 2, ip: [127, 0, 0, 1], port: 1 }, daddr: { family: 2, ip: [127, 0, 0, 1], port: 5000 } });
    const sample = sampleRecord({ cpu: 1, pid: 7, timeNs: 1_000, raw });
    const { drops, counters } = run(concat([aggregateRecord(1, 5000, 9_000, sample), sampleRecord({ cpu: 0, raw })]));
    expect(drops).toHaveLength(2);
    expect(drops[0]).toMatchObject({ cpu: 1, pid: 7, monoNs: 1_000, count: 5000, lastMonoNs: 9_000, fields: { dport: 5000 } });
    expect(drops[1].count).toBeUndefined();
    expect(counters).toMatchObject({ samples: 5001, malformed: 0 });
  });

  it('an aggregate record whose inner record does not fill it exactly is malformed, not misread', () => {
    const raw = udpFailRaw({ id: 2282, sport: 1, dport: 5000, saddr: { family: 2, ip: [127, 0, 0, 1], port: 1 }, daddr: { family: 2, ip: [127, 0, 0, 1], port: 5000 } });
    const rec = aggregateRecord(0, 3, 0, sampleRecord({ cpu: 0, raw }));
    new DataView(rec.buffer).setUint16(32 + 14, 16, true); // the inner header claims a shorter record
    const { drops, counters } = run(concat([rec]));
    expect(drops).toHaveLength(0);
    expect(counters.malformed).toBe(1);
  });

  it('decodes an IPv4 udp_fail_queue_rcv_skb sample with addresses as addr:port', () => {
    const raw = udpFailRaw({
      id: 2282, sport: 43805, dport: 45679,
      saddr: { family: 2, ip: [127, 0, 0, 1], port: 43805 },
      daddr: { family: 2, ip: [127, 0, 0, 1], port: 45679 },
    });
    const { drops } = run(concat([sampleRecord({ cpu: 1, pid: 2180, tid: 2181, timeNs: 5_000_000_123, raw })]), undefined, 1_700_000_000_000_000_000n);
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({
      cpu: 1, pid: 2180, tid: 2181, event: 'udp:udp_fail_queue_rcv_skb',
      fields: { rc: -12, sport: 43805, dport: 45679, family: 'AF_INET', saddr: '127.0.0.1:43805', daddr: '127.0.0.1:45679' },
    });
    expect(drops[0].time).toBe('2023-11-14T22:13:25.000000123Z');
  });

  it('a dual-stack socket: family AF_INET6 with an IPv4 daddr', () => {
    const raw = udpFailRaw({
      id: 2282, sport: 1, dport: 5353, family: 10,
      saddr: { family: 2, ip: [10, 1, 2, 3], port: 1 },
      daddr: { family: 2, ip: [127, 0, 0, 1], port: 5353 },
    });
    const { drops } = run(concat([sampleRecord({ cpu: 0, raw })]));
    expect(drops[0].fields).toMatchObject({ family: 'AF_INET6', daddr: '127.0.0.1:5353' });
  });

  it('IPv6 addresses are bracketed and compressed', () => {
    const ip6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const raw = udpFailRaw({ id: 2282, sport: 9, dport: 7000, saddr: { family: 10, ip: ip6, port: 9 }, daddr: { family: 10, ip: ip6, port: 7000 } });
    const { drops } = run(concat([sampleRecord({ cpu: 0, raw })]));
    expect(drops[0].fields).toMatchObject({ family: 'AF_INET6', saddr: '[::1]:9', daddr: '[::1]:7000' });
  });

  it('sock_exceed_buf_limit: name string, sysctl_mem array, kind by name', () => {
    const raw = new Uint8Array(96);
    const dv = new DataView(raw.buffer);
    dv.setUint16(0, 2288, true);
    raw.set(Buffer.from('UDP'), 8);
    [2, 3, 4].forEach((v, i) => dv.setBigInt64(40 + i * 8, BigInt(v), true));
    dv.setBigInt64(64, 5n, true);
    dv.setInt32(72, 4096, true);
    dv.setInt32(76, 8192, true);
    dv.setInt32(92, 1, true);
    const { drops } = run(concat([sampleRecord({ cpu: 0, raw })]));
    expect(drops[0].fields).toEqual({
      name: 'UDP', sysctl_mem: [2, 3, 4], allocated: 5, sysctl_rmem: 4096, rmem_alloc: 8192,
      sysctl_wmem: 0, wmem_alloc: 0, wmem_queued: 0, kind: 'SK_MEM_RECV',
    });
  });

  it('kfree_skb: pointers as hex text, reason by name, unknown reason stays a number', () => {
    const mk = (reason: number) => {
      const raw = new Uint8Array(40);
      const dv = new DataView(raw.buffer);
      dv.setUint16(0, 2310, true);
      dv.setBigUint64(24, 0xffff888012345678n, true);
      dv.setUint16(32, 0x0800, true);
      dv.setUint32(36, reason, true);
      return sampleRecord({ cpu: 0, raw });
    };
    const { drops } = run(concat([mk(6), mk(9999)]));
    expect(drops[0].fields).toMatchObject({ rx_sk: '0xffff888012345678', protocol: 2048, reason: 'SOCKET_RCVBUFF', skbaddr: '0x0' });
    expect(drops[1].fields.reason).toBe(9999);
  });

  it('an older layout decodes from its own format file (lport before 6.10)', () => {
    const old = compileSchema(parseFormat(fx('6.9/udp_fail_queue_rcv_skb.format'), 'udp'));
    const raw = new Uint8Array(16);
    const dv = new DataView(raw.buffer);
    dv.setUint16(0, 1456, true);
    dv.setInt32(8, -105, true);
    dv.setUint16(12, 5000, true);
    const { drops } = run(concat([sampleRecord({ cpu: 0, raw })]), [old]);
    expect(drops[0].fields).toEqual({ rc: -105, lport: 5000 });
  });

  it('lost records become {event:"lost", cpu, lost}', () => {
    const raw = udpFailRaw({ id: 2282, sport: 1, dport: 2, saddr: { family: 2, ip: [1, 2, 3, 4], port: 1 }, daddr: { family: 2, ip: [5, 6, 7, 8], port: 2 } });
    const { drops, lost, counters } = run(concat([sampleRecord({ cpu: 1, raw }), lostRecord(1, 1024), lostRecord(0, 2 ** 33 + 5)]));
    expect(drops).toHaveLength(1);
    expect(lost.map((l) => [l.event, l.cpu, l.lost])).toEqual([['lost', 1, 1024], ['lost', 0, 2 ** 33 + 5]]);
    expect(counters.lost).toBe(1024 + 2 ** 33 + 5);
  });

  it('the addon\'s UNSAMPLED record (hits counted with no sample written) is a lost event with cause "unsampled", in NDJSON and text', () => {
    const { lost, counters } = run(concat([lostRecord(1, 3, 0, RECORD_UNSAMPLED), lostRecord(0, 7)]));
    expect(lost.map((l) => [l.cpu, l.lost, l.cause])).toEqual([[1, 3, 'unsampled'], [0, 7, undefined]]);
    expect(counters.lost).toBe(10);
    expect(JSON.parse(recordToJson(lost[0]))).toEqual({ event: 'lost', time: lost[0].time, cpu: 1, lost: 3, cause: 'unsampled' });
    expect(JSON.parse(recordToJson(lost[1]))).not.toHaveProperty('cause');
    expect(lostToText(lost[0])).toMatch(/cpu1 LOST 3 events \(counted by the kernel, no sample written\)$/);
    expect(lostToText(lost[1])).toMatch(/cpu0 LOST 7 events \(ring full\)$/);
  });

  it('short, unknown and truncated records are counted as malformed, never thrown', () => {
    const good = sampleRecord({ cpu: 0, raw: udpFailRaw({ id: 2282, sport: 1, dport: 2, saddr: { family: 2, ip: [1, 1, 1, 1], port: 1 }, daddr: { family: 2, ip: [2, 2, 2, 2], port: 2 } }) });
    const unknownId = sampleRecord({ cpu: 0, raw: new Uint8Array([0x39, 0x30, 0, 0, 0, 0, 0, 0]) });
    const tooShort = sampleRecord({ cpu: 0, raw: new Uint8Array([0xea, 0x08, 0, 0]) }); // id 2282, 4 bytes
    const truncated = good.slice(0, good.length - 16);
    const { drops, counters } = run(concat([good, unknownId, tooShort, truncated]));
    expect(drops).toHaveLength(1);
    expect(counters.malformed).toBe(3);
  });
});
