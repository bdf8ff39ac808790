// The slot spec is the one description every rendering of a field is generated from (the
// constructor's reads, `fields`, the identity key, the JSON head): each field's kind and slots
// for real layouts of several kernels, and for the rarer kinds a hand-written format.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { slotSpec } from '../../../src/decode/slot-spec.js';
import { parseFormat } from '../../../src/format/parse.js';

const fx = (p: string): string => readFileSync(new URL(`../../fixtures/format/${p}`, import.meta.url), 'utf8');
const kinds = (p: string, system: string) => slotSpec(parseFormat(fx(p), system)).fields.map((f) => [f.name, f.kind, f.slots]);

describe('slotSpec', () => {
  it('udp_fail_queue_rcv_skb (6.18): ints, a symbolic family, two sockaddrs of two slots each', () => {
    const spec = slotSpec(parseFormat(fx('6.18/udp_fail_queue_rcv_skb.format'), 'udp'));
    expect(spec.event).toBe('udp:udp_fail_queue_rcv_skb');
    expect(spec.fields.map((f) => [f.name, f.kind, f.slots])).toEqual([
      ['rc', 'int', [0]],
      ['sport', 'int', [1]],
      ['dport', 'int', [2]],
      ['family', 'symbol', [3]],
      ['saddr', 'sockaddr', [4, 5]],
      ['daddr', 'sockaddr', [6, 7]],
    ]);
    expect(spec.slotCount).toBe(8);
    expect(spec.fields[3].symbols?.get(10)).toBe('AF_INET6');
  });

  it('the 6.1 layout with sizeof() arrays: the same kinds (sockaddrs, not byte arrays)', () => {
    expect(kinds('6.1/udp_fail_queue_rcv_skb.sizeof-arrays.format', 'udp').map(([n, k]) => [n, k])).toEqual([
      ['rc', 'int'],
      ['sport', 'int'],
      ['dport', 'int'],
      ['family', 'symbol'],
      ['saddr', 'sockaddr'],
      ['daddr', 'sockaddr'],
    ]);
  });

  it('kfree_skb (6.18): pointers of two slots, a symbolic reason', () => {
    expect(kinds('6.18/kfree_skb.format', 'skb')).toEqual([
      ['skbaddr', 'pointer', [0, 1]],
      ['location', 'pointer', [2, 3]],
      ['rx_sk', 'pointer', [4, 5]],
      ['protocol', 'int', [6]],
      ['reason', 'symbol', [7]],
    ]);
  });

  it('sock_exceed_buf_limit: a string and an array (6.18); a pointer where 4.18 had one', () => {
    expect(kinds('6.18/sock_exceed_buf_limit.format', 'sock').slice(0, 3)).toEqual([
      ['name', 'string', [0]],
      ['sysctl_mem', 'array', [1]],
      ['allocated', 'int', [2]],
    ]);
    expect(kinds('4.18/sock_exceed_buf_limit.format', 'sock')[1]).toEqual(['sysctl_mem', 'pointer', [1, 2]]);
  });

  it('the rarer kinds: __data_loc, %pI4, %pI6, a size no integer has', () => {
    const text = [
      'name: synth',
      'ID: 77',
      'format:',
      '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;',
      '',
      '\tfield:__data_loc char[] dev;\toffset:8;\tsize:4;\tsigned:0;',
      '\tfield:__u8 v4[4];\toffset:12;\tsize:4;\tsigned:0;',
      '\tfield:__u8 v6[16];\toffset:16;\tsize:16;\tsigned:0;',
      '\tfield:int odd;\toffset:32;\tsize:3;\tsigned:1;',
      '',
      'print fmt: "%s %pI4 %pI6c %d", __get_str(dev), REC->v4, REC->v6, REC->odd',
    ].join('\n');
    const spec = slotSpec(parseFormat(text, 'synth'));
    expect(spec.fields.map((f) => [f.name, f.kind])).toEqual([
      ['dev', 'dynamic'],
      ['v4', 'ipv4'],
      ['v6', 'ipv6'],
      ['odd', 'opaque'],
    ]);
    expect(spec.fields[0].rel).toBe(false);
    expect(spec.slotCount).toBe(4);
  });
});
