// /proc/net/netstat: TcpExt (and the other groups) parsed by name, from this machine's 6.18 file.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { parseNetstat, TCPEXT_DROP_PACKETS, TCPEXT_RECEIVE } from '../../../src/procnet/netstat.js';

const text = readFileSync(new URL('../../fixtures/procnet/netstat-6.18.txt', import.meta.url), 'utf8');

describe('parseNetstat', () => {
  it('6.18: TcpExt and IpExt by name, every receive-drop counter present', () => {
    const n = parseNetstat(text);
    expect(Object.keys(n)).toEqual(expect.arrayContaining(['TcpExt', 'IpExt']));
    for (const c of TCPEXT_RECEIVE) expect(typeof n.TcpExt[c], c).toBe('number');
    // names and values stay aligned: the line of values has as many tokens as the names
    const [names, values] = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
    const i = names.split(/\s+/).indexOf('ListenDrops');
    expect(n.TcpExt.ListenDrops).toBe(Number(values.split(/\s+/)[i]));
  });

  it('the drop counters are a subset of the receive counters, ListenOverflows and TCPReqQFullDrop not double-counted', () => {
    for (const c of TCPEXT_DROP_PACKETS) expect(TCPEXT_RECEIVE).toContain(c);
    expect(TCPEXT_DROP_PACKETS).not.toContain('ListenOverflows');
    expect(TCPEXT_DROP_PACKETS).not.toContain('TCPReqQFullDrop');
  });

  it('a truncated file (names without values) is a ProcParseError naming /proc/net/netstat', () => {
    const cut = text.split('\n')[0] + '\n';
    expect(() => parseNetstat(cut)).toThrow(ProcParseError);
    expect(() => parseNetstat(cut)).toThrow(/netstat/);
  });
});
