// TcpGate (counters/tcp-gate.ts): a namespace's TCP rows are carried over while its Tcp InSegs
// and InErrs stand still, asked again once they move or the rows are too old.
import { describe, expect, it } from 'vitest';
import { TcpGate } from '../../../src/counters/tcp-gate.js';
import type { TcpSocketRow } from '../../../src/tcp-sockets.js';

const row = { table: 'tcp', inode: 7, local: '127.0.0.1:80', remote: '0.0.0.0:0', rx_queue: 0, tx_queue: 0, drops: 3, netns: 1, state: 10, state_name: 'LISTEN', uid: 0, owners: [] } as TcpSocketRow;
const snmp = (inSegs: number, inErrs = 0) => ({ Tcp: { InSegs: inSegs, InErrs: inErrs } });

describe('TcpGate', () => {
  it('carries while InSegs/InErrs stand still, asks once either moves', () => {
    const g = new TcpGate(60_000);
    const s1 = new Map([[1, TcpGate.signature(snmp(100))]]);
    const c1 = g.forRead(s1);
    expect(c1.carry(1)).toBeUndefined();
    c1.asked(1, [row], 1000);
    expect(g.forRead(s1).carry(1)).toEqual([row]);
    expect(g.forRead(new Map([[1, TcpGate.signature(snmp(101))]])).carry(1)).toBeUndefined();
    expect(g.forRead(new Map([[1, TcpGate.signature(snmp(100, 1))]])).carry(1)).toBeUndefined();
    expect(g.stats).toEqual({ asked: 1, carried: 1 });
  });

  it('never carries a namespace without a Tcp line, nor past the max age', async () => {
    expect(TcpGate.signature({})).toBeUndefined();
    const g = new TcpGate(20);
    const none = new Map([[2, undefined]]);
    g.forRead(none).asked(2, [row], 0);
    expect(g.forRead(none).carry(2)).toBeUndefined();
    const s = new Map([[1, TcpGate.signature(snmp(5))]]);
    g.forRead(s).asked(1, [row], 0);
    expect(g.forRead(s).carry(1)).toBeDefined();
    await new Promise((r) => setTimeout(r, 40));
    expect(g.forRead(s).carry(1)).toBeUndefined();
  });
});
