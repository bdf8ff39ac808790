// IPv6 UDP drops before 6.5 (issue 12): only skb:kfree_skb sees them, and Debian 6.1's layout (the
// real format file, test/fixtures/format/6.1.0-57) has no rx_sk: whose `drops` rose among the
// IPv6 tables is all that can name the socket. Records are built at that file's offsets and
// decoded by the product's compiled reader; the attributor reads a /proc tree whose counters
// the test moves between its reads, as the kernel would.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReadHistory, type TableRead } from '../../../src/attribute/history.js';
import { makeNeed } from '../../../src/attribute/needs.js';
import { ALL_TABLES } from '../../../src/attribute/strategies.js';
import type { SocketTable } from '../../../src/procnet/sockets.js';
import { ProcAttributor } from '../../../src/attribute/proc-attributor.js';
import { compileSchema } from '../../../src/decode/compile.js';
import { nowMonoNs } from '../../../src/decode/batch.js';
import { WallClock } from '../../../src/decode/clock.js';
import type { DropEvent } from '../../../src/decode/events.js';
import { parseFormat } from '../../../src/format/parse.js';

const schema = parseFormat(readFileSync(new URL('../../fixtures/format/6.1.0-57/kfree_skb.format', import.meta.url), 'utf8'), 'skb');
const compiled = compileSchema(schema);
const clock = new WallClock(0n);
const field = (name: string) => schema.fields.find((f) => f.name === name)!;
const reasonNo = (name: string): number => [...schema.symbols.get('reason')!].find(([, n]) => n === name)![0];
const size = Math.max(...schema.fields.map((f) => f.offset + f.size));

/** One kfree_skb record as 6.1 writes it, decoded through the compiled reader. */
function kfree(protocol: number, reason = 'SOCKET_RCVBUFF', cpu = 0): DropEvent {
  const u8 = new Uint8Array(size);
  const dv = new DataView(u8.buffer);
  dv.setUint16(0, schema.id, true);
  dv.setBigUint64(field('skbaddr').offset, 0xffff888800001000n, true);
  dv.setBigUint64(field('location').offset, 0xffffffff81000000n, true);
  dv.setUint16(field('protocol').offset, protocol, true);
  dv.setUint32(field('reason').offset, reasonNo(reason), true);
  return new compiled.Drop(clock, cpu, 1, 1, nowMonoNs(), dv, u8, 0, size);
}

const HEAD6 = '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';
const HEAD4 = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';
const LO6 = '00000000000000000000000001000000';
const row6 = (sl: number, port: number, inode: number, drops: number) =>
  `${String(sl).padStart(5)}: ${LO6}:${port.toString(16).toUpperCase().padStart(4, '0')} ${'0'.repeat(32)}:0000 07 00000000:00000000 00:00000000 00000000     0        0 ${inode} 2 0000000021d7f4c5 ${drops}\n`;
const row4 = (port: number, inode: number, drops: number) =>
  `    1: 0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 ${inode} 2 0000000021d7f4c6 ${drops}\n`;

const P = 5000;
const OURS = 7001;
const OTHER = 7002;
const V4 = 7003;

describe('IPv6 UDP drops on 6.1: kfree_skb without rx_sk, on the right udp6 socket or ambiguous', () => {
  let root: string;
  const open: ProcAttributor[] = [];
  /** The tables as the kernel would show them now: our udp6 socket, another on port P+1, an IPv4 one on P. */
  const tables = (ours: number, other = 0, v4 = 0) => {
    writeFileSync(join(root, 'net/udp6'), HEAD6 + row6(0, P, OURS, ours) + row6(1, P + 1, OTHER, other));
    writeFileSync(join(root, 'net/udp'), HEAD4 + row4(P, V4, v4));
  };
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'rxt-udp6-61-'));
    mkdirSync(join(root, 'net'));
    mkdirSync(join(root, 'sys/kernel'), { recursive: true });
    writeFileSync(join(root, 'sys/kernel/kptr_restrict'), '0\n');
    for (const t of ['raw6', 'icmp6']) writeFileSync(join(root, 'net', t), HEAD6);
    for (const t of ['raw', 'icmp']) writeFileSync(join(root, 'net', t), HEAD4);
  });
  afterEach(() => {
    for (const a of open.splice(0)) a.close();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** As openTracer makes it for `trace --port P` with the IPv6 fallback: udp scoped to P, udp6 whole. */
  const attributor = async () => {
    const a = await ProcAttributor.create({ procRoot: root, source: 'proc', pointers: 'hashed', ports: [P], portTables: ['udp'], minReadIntervalMs: 0, maxOwnerWaitMs: 0, ownerRescanMs: 1e9 });
    open.push(a);
    return a;
  };

  it('the 6.1 layout gives no rx_sk: an IPv6 SOCKET_RCVBUFF drop needs only the IPv6 tables, read whole', () => {
    expect(schema.fields.map((f) => f.name)).not.toContain('rx_sk');
    const ev = kfree(34525);
    expect(ev.fields).toMatchObject({ protocol: 34525, reason: 'SOCKET_RCVBUFF' });
    const need = makeNeed(false, ev.event, ev.fields);
    expect(need).toMatchObject({ kind: 'kfree', tables: ['udp6', 'raw6', 'icmp6'], dropTables: ['udp6', 'raw6', 'icmp6'], port: -1 });
    expect(need.rxSk).toBeUndefined();
    // Protocol memory is TCP's reason too, and TCP sockets have no drops column: never judged.
    expect(makeNeed(false, ev.event, kfree(34525, 'PROTO_MEM').fields).tables).toEqual([]);
  });

  it('the first drops after start-up (--port P, udp scoped) land on our udp6 socket by `drops`, never on the IPv4 socket of the same port', async () => {
    tables(0, 0, 0);
    const a = await attributor();
    const evs = [kfree(34525), kfree(34525, 'SOCKET_RCVBUFF', 1), kfree(34525)];
    tables(3, 0, 5); // the IPv4 socket dropped too: it is not an IPv6 packet's socket
    await a.attribute(evs);
    expect(evs.map((e) => [e.match, e.socket?.inode])).toEqual([['drops', OURS], ['drops', OURS], ['drops', OURS]]);
    expect(evs[0].socket).toMatchObject({ table: 'udp6', local: `[::1]:${P}` });
  });

  it('two udp6 sockets dropping in the same window: ambiguous with both, never one of them', async () => {
    tables(0, 0);
    const a = await attributor();
    const evs = [kfree(34525), kfree(34525)];
    tables(1, 1);
    await a.attribute(evs);
    for (const e of evs) {
      expect(e.match).toBe('ambiguous');
      expect(e.socket).toBeNull();
      expect(e.candidates).toEqual([OURS, OTHER]);
    }
  });

  it('more drops than the counter rose (a socket the reads never saw dropped too): ambiguous, not named', async () => {
    tables(0);
    const a = await attributor();
    const evs = [kfree(34525), kfree(34525), kfree(34525)];
    tables(2);
    await a.attribute(evs);
    expect(evs.map((e) => e.match)).toEqual(['ambiguous', 'ambiguous', 'ambiguous']);
    expect(evs[0].candidates).toEqual([OURS]);
    // The next window is whole again: named.
    const next = [kfree(34525)];
    tables(3);
    await a.attribute(next);
    expect(next.map((e) => [e.match, e.socket?.inode])).toEqual([['drops', OURS]]);
  });

  it('a drop counted by one read and stamped after it: the window before left the credit, so both windows stay named', async () => {
    tables(0);
    const a = await attributor();
    const first = [kfree(34525), kfree(34525)];
    tables(3); // three counted, two stamped before this read
    await a.attribute(first);
    const second = [kfree(34525), kfree(34525)];
    tables(4); // the third event, and one more
    await a.attribute(second);
    expect([...first, ...second].map((e) => [e.match, e.socket?.inode])).toEqual(Array(4).fill(['drops', OURS]));
  });

  it('an IPv4 kfree_skb is judged over the tables an IPv4 packet can reach; PROTO_MEM is left unmatched', async () => {
    tables(0, 0, 0);
    const a = await attributor();
    const v6mem = kfree(34525, 'PROTO_MEM');
    const v4 = kfree(2048);
    tables(0, 0, 1);
    await a.attribute([v6mem, v4]);
    expect(v6mem.match).toBe('none');
    expect([v4.match, v4.socket?.inode]).toEqual(['drops', V4]);
  });

  it('the start-up read sock_diag makes for --port (udp scoped to P, udp6 whole) is the `before` of the first IPv6 drop', () => {
    // The 6.1 failure: with both UDP tables scoped to P, no read before the first drops covered
    // the tables kfree_skb is judged on, so they came out ambiguous and --port dropped them all.
    const need = makeNeed(false, 'skb:kfree_skb', kfree(34525).fields);
    const all = new Set(ALL_TABLES);
    const startup = (scoped: SocketTable[]): TableRead => ({ startNs: 1, endNs: 2, tables: all, rows: new Map(), ports: new Map(scoped.map((t) => [t, new Set([P])])), noPointers: true });
    const after: TableRead = { startNs: 10, endNs: 11, tables: all, rows: new Map(), noPointers: true };
    const window = (scoped: SocketTable[]) => {
      const h = new ReadHistory();
      h.add(startup(scoped), true);
      h.add(after);
      return h.window(5, need.tables, need.port);
    };
    expect(window(['udp']).before).toBeDefined();
    expect(window(['udp', 'udp6']).before).toBeUndefined();
  });
});
