// The text funnel of `stats`, the `top` model and screen, the ss skmem reader, and key splitting.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildInterval, type FunnelInterval } from '../../../src/counters/funnel.js';
import { parseSsSkmem } from '../../../src/counters/rcvbuf.js';
import { readSnapshot, type CounterSnapshot } from '../../../src/counters/snapshot.js';
import { sortRows, TopModel, type TopRow } from '../../../src/counters/top-model.js';
import { splitKeys, terminalIsUtf8 } from '../../../src/cli/terminal.js';
import type { DropEvent } from '../../../src/decode/events.js';
import { renderFunnelText } from '../../../src/render/funnel-text.js';
import { compact, renderTopScreen, renderTopText, sparkline, type TopView } from '../../../src/render/top-screen.js';
import { materialize, tempDir } from '../../helpers/proc-tree.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function fixtureInterval(): Promise<{ a: CounterSnapshot; b: CounterSnapshot; iv: FunnelInterval }> {
  const a = await readSnapshot(materialize('6.18', 'a', join(tmp.dir, String(Math.random()), 'a')));
  const b = await readSnapshot(materialize('6.18', 'b', join(tmp.dir, String(Math.random()), 'b')));
  b.monoMs = a.monoMs + 1000;
  b.monoNs = a.monoNs + 1e9;
  return { a, b, iv: buildInterval(a, b) };
}

describe('renderFunnelText', async () => {
  const { iv } = await fixtureInterval();

  it('one row per layer and entity, zero counters hidden, the losing layer marked', () => {
    const lines = renderFunnelText(iv);
    expect(lines[0]).toMatch(/interval 1\.000 s {2}losing packets at: socket \(171\/s\)$/);
    const text = lines.join('\n');
    expect(text).toMatch(/^ {2}nic +eth0 +rx_packets 100 {2}rx_dropped 1$/m);
    expect(text).toMatch(/^ {2}softnet +total +processed 1536 {2}dropped 3 {2}time_squeeze 2 {2}received_rps 2 {2}flow_limit_count 1 {2}\(backlog_len now 2\)$/m);
    expect(text).toMatch(/^ {12}cpu1 +processed 512 {2}received_rps 2 {2}flow_limit_count 1$/m);
    expect(text).toMatch(/Udp +InDatagrams 20 {2}NoPorts 2 {2}InErrors 108 {2}RcvbufErrors 100 {2}MemErrors 5 {2}InCsumErrors 3$/m);
    expect(text).toMatch(/Udp6 +InErrors 10 {2}RcvbufErrors 10$/m);
    expect(text).toMatch(/memory +UDP mem 12 pages \(48 KiB\); udp_mem 100 200 300 pages, 4\.0 % of max$/m);
    expect(text).toMatch(/^> socket +udp 127\.0\.0\.1:5000 +drops 100 {2}rx_queue 2304 {2}inode 1001 {2}netns 4026531840 {2}feed\[100\]$/m);
    expect(text).toMatch(/reconcile +netns 4026531840 \(own\) +socket drops 117 vs RcvbufErrors 110 \+ MemErrors 5, unexplained \+2 \(1 UDP sockets closed meanwhile\)$/m);
    expect(text).toMatch(/reconcile.*\n.*netns 4026532500 +socket drops 50 vs RcvbufErrors 50 \+ MemErrors 0, all explained$/m);
    expect(text).toMatch(/note +reset +counters went down/);
    // all-zero rows and zero counters are hidden
    expect(text).not.toMatch(/UdpLite/);
    expect(text).not.toMatch(/SndbufErrors|IgnoredMulti/);
  });

  it('--all shows zeros too', () => {
    const text = renderFunnelText(iv, { all: true }).join('\n');
    expect(text).toMatch(/UdpLite +InDatagrams 0 {2}NoPorts 0/);
    expect(text).toMatch(/cpu0 +processed 1024 {2}dropped 3 {2}time_squeeze 2 {2}received_rps 0 {2}flow_limit_count 0/);
    expect(text).toMatch(/IgnoredMulti 0/);
  });
});

describe('compact and sparkline', () => {
  it('compact', () => {
    expect([0, 7, 2.5, 950, 1234, 950_123, 1_234_567, 45_600_000, 3e9].map(compact)).toEqual(['0', '7', '2.5', '950', '1.23k', '950.1k', '1.23M', '45.6M', '3.00G']);
  });

  it('sparkline: right-aligned, scaled to the peak, blank for zero, ASCII fallback', () => {
    expect(sparkline([], true)).toBe(' '.repeat(12));
    expect(sparkline([0, 5, 10], true)).toBe(`${' '.repeat(9)} ▅█`);
    expect(sparkline([0, 5, 10], false)).toBe(`${' '.repeat(9)} +@`);
    const minute = Array.from({ length: 60 }, (_, i) => (i < 30 ? 0 : 100));
    expect(sparkline(minute, true)).toBe('      ██████');
    expect(sparkline(minute, true)).toHaveLength(12);
  });
});

function drop(inode: number, monoNs: number, extra: Partial<DropEvent> = {}): DropEvent {
  return {
    time: '',
    cpu: 0,
    pid: 1,
    tid: 1,
    event: 'udp:udp_fail_queue_rcv_skb',
    fields: {},
    match: 'address',
    socket: { table: 'udp', inode, local: '127.0.0.1:9', remote: '0.0.0.0:0', rx_queue: 0, drops: 0, netns: 1, owners: [{ pid: 9, comm: 'gone' }] },
    monoNs,
    ...extra,
  };
}

describe('TopModel', async () => {
  it('counters only: rates from the drops deltas, a trend sample per interval', async () => {
    const { b, iv } = await fixtureInterval();
    const m = new TopModel(1, false);
    m.update(iv, b);
    const rows = m.sorted('drops/s');
    expect(rows.slice(0, 3).map((r) => [r.inode, r.rate, r.source])).toEqual([
      [1001, 100, 'counters'],
      [2001, 50, 'counters'],
      [1002, 10, 'counters'],
    ]);
    expect(rows[0]).toMatchObject({ owners: [{ pid: 100, comm: 'feed' }], rx_queue: 0x900, drops: 1090, trend: [100], closed: false });
    expect(rows.find((r) => r.inode === 3001)!.rate).toBe(0);
  });

  it('tracing: complete events give the rate; a socket only in events shows as closed; late slots wait', async () => {
    const { b, iv } = await fixtureInterval();
    const m = new TopModel(1, true);
    for (let i = 0; i < 100; i++) m.onDrop(drop(1001, b.monoNs - 1000));
    for (let i = 0; i < 3; i++) m.onDrop(drop(4242, b.monoNs - 5));
    m.onDrop(drop(1001, b.monoNs + 10)); // after the read: next interval
    m.onDrop({ ...drop(0, b.monoNs - 1), match: 'global', socket: null });
    m.onDrop({ ...drop(0, b.monoNs - 1), match: 'ambiguous', socket: null, candidates: [1, 2] });
    m.update(iv, b, undefined, true);
    const rows = m.sorted('drops/s');
    const byInode = new Map(rows.map((r) => [r.inode, r]));
    expect(byInode.get(1001)).toMatchObject({ rate: 100, source: 'events' });
    // 1002 had no events but its counter rose by 10 (e.g. a socket filter): the counter wins.
    expect(byInode.get(1002)).toMatchObject({ rate: 10, source: 'counters' });
    expect(byInode.get(4242)).toMatchObject({ rate: 3, source: 'events', closed: true, owners: [{ pid: 9, comm: 'gone' }] });
    expect(m.events).toMatchObject({ attributed: 103, global: 1, unattributed: 1, lost: 0, complete: true });
  });

  it('tracing but behind or lossy: sockets in the tables take their counters', async () => {
    const { b, iv } = await fixtureInterval();
    const m = new TopModel(1, true);
    for (let i = 0; i < 30; i++) m.onDrop(drop(1001, b.monoNs - 1000));
    m.onLost(500);
    m.update(iv, b, undefined, true);
    expect(m.events.complete).toBe(false);
    expect(m.sorted('drops/s')[0]).toMatchObject({ inode: 1001, rate: 100, source: 'counters' });
  });

  it('sk_rcvbuf from ss, else from sock_rcvqueue_full events; sorts by fill', async () => {
    const { b, iv } = await fixtureInterval();
    const m = new TopModel(1, true);
    m.onDrop(drop(1003, b.monoNs - 1000, { event: 'sock:sock_rcvqueue_full', fields: { sk_rcvbuf: 2304 } }));
    m.update(iv, b, new Map([[1001, { rmem_alloc: 0x900, rcvbuf: 4608, drops: 1090 }]]), true);
    const rows = m.sorted('fill');
    // Both at 50 % (0x900 / 4608, 0x480 / 2304): the one with more drops/s first.
    expect(rows.slice(0, 2).map((r) => [r.inode, r.rcvbuf])).toEqual([
      [1001, 4608],
      [1003, 2304],
    ]);
  });

  it('a socket that never dropped and has nothing queued is counted as idle, not kept as a row', async () => {
    const { b, iv } = await fixtureInterval();
    const idle = { ...[...b.sockets!.values()][0], inode: 5005, drops: 0, rx_queue: 0, owners: [] };
    const queued = { ...idle, inode: 5006, rx_queue: 768 };
    const snap = { ...b, sockets: new Map([...b.sockets!, [5005, idle], [5006, queued]]) };
    const m = new TopModel(1, false);
    m.update(iv, snap);
    const inodes = m.sorted('drops/s').map((r) => r.inode);
    expect(inodes).not.toContain(5005);
    expect(inodes).toContain(5006);
    expect(m.idle).toBe([...snap.sockets.values()].filter((s) => !s.drops && s.rx_queue === 0).length);
    expect(m.idle).toBeGreaterThan(0);
    // its queue drained and it never dropped: it leaves the rows
    m.update(iv, { ...snap, sockets: new Map([...snap.sockets, [5006, { ...queued, rx_queue: 0 }]]) });
    expect(m.sorted('drops/s').map((r) => r.inode)).not.toContain(5006);
  });

  it('the trend keeps one minute of samples', async () => {
    const { b, iv } = await fixtureInterval();
    const m = new TopModel(2, false);
    for (let i = 0; i < 40; i++) m.update(iv, b);
    expect(m.sorted('drops/s')[0].trend).toHaveLength(30);
  });

  it('sortRows: each key, ties by drops/s then inode', () => {
    const r = (inode: number, rate: number, drops: number, rx_queue: number, rcvbuf: number | null): TopRow => ({
      table: 'udp', inode, local: '', remote: '', netns: 1, owners: [], rx_queue, rcvbuf, drops, rate, source: 'counters', trend: [], closed: false,
    });
    const rows = [r(1, 5, 10, 100, 1000), r(2, 50, 5, 10, null), r(3, 5, 99, 900, 1000)];
    expect(sortRows([...rows], 'drops/s').map((x) => x.inode)).toEqual([2, 3, 1]);
    expect(sortRows([...rows], 'drops').map((x) => x.inode)).toEqual([3, 1, 2]);
    expect(sortRows([...rows], 'rx_queue').map((x) => x.inode)).toEqual([3, 1, 2]);
    expect(sortRows([...rows], 'fill').map((x) => x.inode)).toEqual([3, 1, 2]);
  });
});

describe('renderTopScreen / renderTopText', async () => {
  const { b, iv } = await fixtureInterval();
  const m = new TopModel(1, false);
  m.update(iv, b);
  const view: TopView = {
    mode: 'counters',
    modeDetail: 'tracing unavailable: EACCES: denied',
    interval: iv,
    events: m.events,
    rows: m.sorted('drops/s'),
    sort: 'drops/s',
    paused: false,
    now: new Date(0),
    utf8: true,
  };

  it('fits the terminal, marks the losing layer, lists sockets by drops/s with owners', () => {
    const s = renderTopScreen(view, 120, 20);
    expect(s.lines.length).toBeLessThanOrEqual(20);
    for (const l of s.lines) expect(l.length).toBeLessThanOrEqual(120);
    expect(s.lines[0]).toContain('counters only (tracing unavailable: EACCES: denied)');
    expect(s.lines[s.emphasis[0]]).toMatch(/^> socket +171 ◀ LOSING/);
    expect(s.lines[s.titles]).toMatch(/^ DROPS\/s +DROPS +RX_QUEUE +RCVBUF +FILL +TREND 60s +PROTO +LOCAL +OWNER$/);
    expect(s.lines[s.titles + 1]).toMatch(/^ +100 +1090 +2304 +- +- +█ +udp +127\.0\.0\.1:5000 +feed\[100\]$/);
    expect(s.lines.join('\n')).toMatch(/reconcile: own netns: socket drops 117\/s vs RcvbufErrors\+MemErrors 115\/s, unexplained \+2/);
  });

  it('a narrow, short terminal: lines cut, rows dropped, never more than it holds', () => {
    const s = renderTopScreen(view, 40, 8);
    expect(s.lines).toHaveLength(8);
    for (const l of s.lines) expect(l.length).toBeLessThanOrEqual(40);
  });

  it('paused, sorted otherwise, ASCII', () => {
    const s = renderTopScreen({ ...view, paused: true, sort: 'fill', utf8: false }, 200, 40);
    expect(s.lines[0]).toContain('[PAUSED]');
    expect(s.lines.join('\n')).toContain('s sort (now: fill)');
    expect(s.lines.join('\n')).not.toMatch(/[◀█✓]/);
  });

  it('text for a pipe: only sockets with drops or a queue, and a blank line after', () => {
    const lines = renderTopText(view, 2);
    expect(lines[lines.length - 1]).toBe('');
    const title = lines.findIndex((l) => l.startsWith(' DROPS/s'));
    expect(lines.slice(title + 1, -1)).toHaveLength(2);
    expect(lines.join('\n')).not.toContain('keys:');
  });
});

describe('parseSsSkmem', () => {
  it('reads ino and skmem of each record (iproute2 6.1 output)', () => {
    const text = [
      'UNCONN 0      832          0.0.0.0:59675      0.0.0.0:*    ino:58839 sk:1 cgroup:/ <->',
      '\t skmem:(r0,rb212992,t832,tb212992,f0,w0,o0,bl0,d0)',
      'UNCONN 1664   0          127.0.0.1:55456      0.0.0.0:*    ino:57246 sk:2 cgroup:/ <->',
      '\t skmem:(r1664,rb2304,t0,tb212992,f2432,w0,o0,bl0,d23350440)',
      'UNCONN 0 0 [::1]:5000 [::]:* ino:99 sk:3 <->',
      'UNCONN 0 0 [::1]:5001 [::]:* sk:4 <->',
      '\t skmem:(r0,rb1,t0)',
      '',
    ].join('\n');
    expect([...parseSsSkmem(text)]).toEqual([
      [58839, { rmem_alloc: 0, rcvbuf: 212992, drops: 0 }],
      [57246, { rmem_alloc: 1664, rcvbuf: 2304, drops: 23350440 }],
    ]);
  });
});

describe('terminal helpers', () => {
  it('splitKeys keeps escape sequences whole', () => {
    expect(splitKeys('qs\x1b[Ap\x03')).toEqual(['q', 's', '\x1b[A', 'p', '\x03']);
    expect(splitKeys('é✓')).toEqual(['é', '✓']);
  });

  it('terminalIsUtf8 from the locale', () => {
    expect(terminalIsUtf8({ LANG: 'en_US.UTF-8' })).toBe(true);
    expect(terminalIsUtf8({ LC_ALL: 'C', LANG: 'en_US.UTF-8' })).toBe(false);
    expect(terminalIsUtf8({})).toBe(false);
  });
});
