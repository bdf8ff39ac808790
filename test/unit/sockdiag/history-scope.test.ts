// Scoped reads in the read history: a read of "udp on port P" brackets events about port P and
// nothing else; a whole read brackets everything; a sock_diag read never serves the pointer strategy.
import { describe, expect, it } from 'vitest';
import { NEED_POINTERS, ReadHistory, type TableRead } from '../../../src/attribute/history.js';
import type { SocketTable } from '../../../src/procnet/sockets.js';

const UDP: readonly SocketTable[] = ['udp'];
const read = (startNs: number, ports?: number[], noPointers = false): TableRead => {
  const r: TableRead = { startNs, endNs: startNs + 1, tables: new Set<SocketTable>(['udp']), rows: new Map() };
  if (ports) r.ports = new Map([['udp', new Set(ports)]]);
  if (noPointers) r.noPointers = true;
  return r;
};

describe('ReadHistory scopes', () => {
  it('a port-scoped read covers only its ports; a whole read covers all, and port -1 needs a whole read', () => {
    expect(ReadHistory.covers(read(0, [5000]), UDP, 5000)).toBe(true);
    expect(ReadHistory.covers(read(0, [5000]), UDP, 5001)).toBe(false);
    expect(ReadHistory.covers(read(0, [5000]), UDP, -1)).toBe(false);
    expect(ReadHistory.covers(read(0), UDP, 5001)).toBe(true);
    expect(ReadHistory.covers(read(0), UDP, -1)).toBe(true);
    expect(ReadHistory.covers(read(0, undefined, true), UDP, NEED_POINTERS)).toBe(false);
    expect(ReadHistory.covers(read(0), UDP, NEED_POINTERS)).toBe(true);
  });

  it('windows per port: the pinned start-up read stays the `before` of a port first seen late', () => {
    const h = new ReadHistory(3);
    const base = read(0);
    h.add(base, true);
    for (let i = 1; i <= 6; i++) h.add(read(i * 100, [5000]));
    // port 5001 was never read since the start: its before is the pinned read, no after yet
    const w = h.window(650, UDP, 5001);
    expect(w.before).toBe(base);
    expect(w.after).toBeUndefined();
    const w2 = h.window(550, UDP, 5000);
    expect(w2.before?.startNs).toBe(500);
    expect(w2.after?.startNs).toBe(600);
  });
});
