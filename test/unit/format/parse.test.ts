import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFormat } from '../../../src/format/parse.js';
import { FormatParseError } from '../../../src/format/schema.js';
import { portField, reasonFilter } from '../../../src/filter.js';

const fx = (p: string): string => readFileSync(new URL(`../../fixtures/format/${p}`, import.meta.url), 'utf8');
const field = (s: ReturnType<typeof parseFormat>, n: string) => s.fields.find((f) => f.name === n)!;

describe('format parser: this kernel (6.18)', () => {
  it('udp_fail_queue_rcv_skb: 6.10+ layout with sockaddr fields and family symbols', () => {
    const s = parseFormat(fx('6.18/udp_fail_queue_rcv_skb.format'), 'udp');
    expect(s.name).toBe('udp_fail_queue_rcv_skb');
    expect(s.id).toBe(2282);
    expect(s.fields.filter((f) => !f.common).map((f) => [f.name, f.offset, f.size, f.signed])).toEqual([
      ['rc', 8, 4, true],
      ['sport', 12, 2, false],
      ['dport', 14, 2, false],
      ['family', 16, 2, false],
      ['saddr', 18, 28, false],
      ['daddr', 46, 28, false],
    ]);
    expect(field(s, 'saddr').arrayLength).toBe(28);
    expect(s.display.get('saddr')).toBe('sockaddr');
    expect(s.display.get('daddr')).toBe('sockaddr');
    expect(s.display.get('family')).toBe('symbolic');
    expect(s.symbols.get('family')).toEqual(new Map([[2, 'AF_INET'], [10, 'AF_INET6']]));
    expect(portField(s)).toBe('dport');
  });

  it('sock_exceed_buf_limit: char name[32], long sysctl_mem[3] and the kind table', () => {
    const s = parseFormat(fx('6.18/sock_exceed_buf_limit.format'), 'sock');
    expect(field(s, 'name')).toMatchObject({ offset: 8, size: 32, text: true });
    expect(field(s, 'sysctl_mem')).toMatchObject({ offset: 40, size: 24, arrayLength: 3, elementSize: 8, pointer: false });
    expect(field(s, 'kind').offset).toBe(92);
    expect(s.symbols.get('kind')).toEqual(new Map([[0, 'SK_MEM_SEND'], [1, 'SK_MEM_RECV']]));
  });

  it('kfree_skb: rx_sk at 24, reason at 36, 127 reasons read from print fmt', () => {
    const s = parseFormat(fx('6.18/kfree_skb.format'), 'skb');
    expect(field(s, 'rx_sk')).toMatchObject({ offset: 24, size: 8, pointer: true });
    expect(field(s, 'protocol').offset).toBe(32);
    expect(field(s, 'reason').offset).toBe(36);
    const reasons = s.symbols.get('reason')!;
    expect(reasons.get(6)).toBe('SOCKET_RCVBUFF');
    expect(reasons.get(20)).toBe('PROTO_MEM');
    expect(reasons.size).toBe(127);
    expect(reasonFilter(s, ['SOCKET_RCVBUFF', 'proto_mem'])).toBe('reason == 6 || reason == 20');
  });

  it('symbol values in print fmt: decimal, hex and negative of either (fuzz-found: -0x10 read as NaN)', () => {
    const text = fx('6.18/udp_fail_queue_rcv_skb.format').replace('{ 2, "AF_INET" }', '{ -0x10, "NEG_HEX" }, { -7, "NEG" }, { 0x2, "AF_INET" }');
    const table = parseFormat(text, 'udp').symbols.get('family')!;
    expect([...table]).toEqual([
      [-16, 'NEG_HEX'],
      [-7, 'NEG'],
      [2, 'AF_INET'],
      [10, 'AF_INET6'],
    ]);
  });

  it('sock_rcvqueue_full: three ints, no address', () => {
    const s = parseFormat(fx('6.18/sock_rcvqueue_full.format'), 'sock');
    expect(s.fields.filter((f) => !f.common).map((f) => f.name)).toEqual(['rmem_alloc', 'truesize', 'sk_rcvbuf']);
    expect(portField(s)).toBeUndefined();
  });
});

describe('format parser: older kernels (fixtures)', () => {
  it('udp_fail_queue_rcv_skb before 6.10: rc and lport only; --port uses lport', () => {
    const s = parseFormat(fx('6.9/udp_fail_queue_rcv_skb.format'), 'udp');
    expect(s.fields.filter((f) => !f.common).map((f) => [f.name, f.offset])).toEqual([['rc', 8], ['lport', 12]]);
    expect(portField(s)).toBe('lport');
  });

  it('sock_exceed_buf_limit before 4.19: no kind, sysctl_mem is a pointer', () => {
    const s = parseFormat(fx('4.18/sock_exceed_buf_limit.format'), 'sock');
    expect(s.fields.map((f) => f.name)).not.toContain('kind');
    expect(field(s, 'sysctl_mem')).toMatchObject({ pointer: true, size: 8, offset: 40 });
    expect(field(s, 'rmem_alloc').offset).toBe(60);
  });

  it('sock_exceed_buf_limit before 5.19 (and its stable backports): kind present, every field after sysctl_mem shifted', () => {
    for (const v of ['4.19.222', '5.4.206', '5.10.131', '5.15.55', '5.18']) {
      const s = parseFormat(fx(`${v}/sock_exceed_buf_limit.format`), 'sock');
      expect(field(s, 'allocated').offset).toBe(48);
      expect(field(s, 'kind').offset).toBe(76);
      expect(s.symbols.get('kind')?.get(1)).toBe('SK_MEM_RECV');
    }
  });

  it('kfree_skb before 5.17: no reason; --reason is a clear error', () => {
    const s = parseFormat(fx('5.16/kfree_skb.format'), 'skb');
    expect(s.fields.map((f) => f.name)).toEqual(['common_type', 'common_flags', 'common_preempt_count', 'common_pid', 'skbaddr', 'location', 'protocol']);
    expect(() => reasonFilter(s, ['SOCKET_RCVBUFF'])).toThrow(/no drop reasons/);
  });

  it('kfree_skb before 6.11: reason at 28, no rx_sk, and its own reason numbers', () => {
    const s = parseFormat(fx('6.1/kfree_skb.format'), 'skb');
    expect(s.fields.map((f) => f.name)).not.toContain('rx_sk');
    expect(field(s, 'reason').offset).toBe(28);
    expect(reasonFilter(s, ['SOCKET_RCVBUFF', 'PROTO_MEM'])).toBe('reason == 15 || reason == 16');
    expect(() => reasonFilter(s, ['SOCKET_RCVBUF'])).toThrow(/did you mean SOCKET_RCVBUFF/);
  });

  it('array sizes printed as text (before 6.2): trusts size:', () => {
    const s = parseFormat(fx('6.1/udp_fail_queue_rcv_skb.sizeof-arrays.format'), 'udp');
    expect(field(s, 'saddr')).toMatchObject({ size: 28, arrayLength: 28, offset: 18 });
  });
});

describe('format parser: malformed input is a typed error', () => {
  const good = fx('6.18/udp_fail_queue_rcv_skb.format');
  it.each([
    ['empty', ''],
    ['no ID', good.replace(/^ID:.*$/m, '')],
    ['truncated in the fields', good.slice(0, good.indexOf('field:int rc'))],
    ['a broken field line', good.replace('offset:8;', 'offset:x;')],
    ['a duplicated field', good.replace('field:__u16 sport', 'field:__u16 dport')],
  ])('%s', (_name, text) => {
    expect(() => parseFormat(text, 'udp')).toThrow(FormatParseError);
  });
});
