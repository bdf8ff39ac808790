// Counting mode's split of per-event kernel counts over the sockets' drops counters: what each
// socket claims, what is held for one scrape, and what goes to local="unknown" or "global".
import { describe, expect, it } from 'vitest';
import { CountingFeed } from '../../../src/metrics/counting-feed.js';
import type { SocketSnapshotRow } from '../../../src/sockets.js';

const UDP = 'udp:udp_fail_queue_rcv_skb';
const PING = 'sock:sock_rcvqueue_full';
const MEM = 'sock:sock_exceed_buf_limit';
const EVENTS = [UDP, PING, MEM];

function sock(inode: number, drops: number | null, over: Partial<SocketSnapshotRow> = {}): SocketSnapshotRow {
  return { table: 'udp', inode, local: `127.0.0.1:${5000 + inode}`, remote: '0.0.0.0:0', rx_queue: 0, tx_queue: 0, drops, netns: 1, state: 7, uid: 0, owners: [{ pid: inode, comm: `c${inode}` }], ...over };
}
const table = (...s: SocketSnapshotRow[]) => new Map(s.map((x) => [x.inode, x]));
const counts = (udp: number, ping = 0, mem = 0) => new Map([[UDP, udp], [PING, ping], [MEM, mem]]);

/** Every series after a delivered scrape (a new series shows 0 first: scrape twice). */
function series(f: CountingFeed): Record<string, number> {
  f.drops.series();
  const out: Record<string, number> = {};
  for (const s of f.drops.series()) if (s.value > 0) out[`${s.labels.event} ${s.labels.table} ${s.labels.local} ${s.labels.comm}`] = s.value;
  return out;
}

describe('CountingFeed', () => {
  it('gives each socket the rise of its drops counter, paid from its event\'s count', () => {
    const f = new CountingFeed({ top: 10, events: EVENTS });
    f.update(counts(0), table(sock(1, 5), sock(2, 0)));
    f.update(counts(300), table(sock(1, 105), sock(2, 200)));
    expect(series(f)).toEqual({ [`${UDP} udp 127.0.0.1:5001 c1`]: 100, [`${UDP} udp 127.0.0.1:5002 c2`]: 200 });
  });

  it('holds a count for one scrape when the socket read came first, then settles on the kernel\'s numbers', () => {
    const f = new CountingFeed({ top: 10, events: EVENTS });
    f.update(counts(0), table(sock(1, 0)));
    // 100 drops before the socket read, 50 more between it and the counter read.
    f.update(counts(150), table(sock(1, 100)));
    expect(series(f)).toEqual({ [`${UDP} udp 127.0.0.1:5001 c1`]: 100 });
    f.update(counts(150), table(sock(1, 150)));
    expect(series(f)).toEqual({ [`${UDP} udp 127.0.0.1:5001 c1`]: 150 });
  });

  it('counts a socket created since the last read with all its drops, and what no socket claims as unknown one scrape later', () => {
    const f = new CountingFeed({ top: 10, events: EVENTS });
    f.update(counts(0), table());
    f.update(counts(70), table(sock(3, 40)));
    expect(series(f)).toEqual({ [`${UDP} udp 127.0.0.1:5003 c3`]: 40 });
    // The 30 unclaimed were a socket that closed: unknown at the next scrape.
    f.update(counts(70), table(sock(3, 40)));
    expect(series(f)).toEqual({ [`${UDP} udp 127.0.0.1:5003 c3`]: 40, [`${UDP}  unknown `]: 30 });
  });

  it('maps ping and raw tables to sock_rcvqueue_full, and protocol memory to local="global"', () => {
    const f = new CountingFeed({ top: 10, events: EVENTS });
    f.update(counts(0), table(sock(4, 0, { table: 'icmp', local: '127.0.0.1:77' })));
    f.update(counts(0, 9, 12), table(sock(4, 9, { table: 'icmp', local: '127.0.0.1:77' })));
    expect(series(f)).toEqual({ [`${PING} icmp 127.0.0.1:77 c4`]: 9, [`${MEM}  global `]: 12 });
  });

  it('never picks one of several sockets whose drops exceed the count: the count goes to unknown', () => {
    const f = new CountingFeed({ top: 10, events: EVENTS });
    f.update(counts(0), table(sock(1, 0), sock(2, 0)));
    // 100 traced drops, but 250 socket drops (150 had no event, e.g. udp_mem on 6.18).
    f.update(counts(100), table(sock(1, 125), sock(2, 125)));
    expect(series(f)).toEqual({ [`${UDP}  unknown `]: 100 });
  });

  it('gives one socket whose drops exceed the count what was counted', () => {
    const f = new CountingFeed({ top: 10, events: EVENTS });
    f.update(counts(0), table(sock(1, 0)));
    f.update(counts(100), table(sock(1, 250)));
    expect(series(f)).toEqual({ [`${UDP} udp 127.0.0.1:5001 c1`]: 100 });
  });

  it('with --port only sockets on that port claim; without a split (--filter) everything is unknown at once', () => {
    const p = new CountingFeed({ top: 10, events: [UDP], port: 5001 });
    p.update(new Map([[UDP, 0]]), table(sock(1, 0), sock(2, 0)));
    p.update(new Map([[UDP, 60]]), table(sock(1, 60), sock(2, 500)));
    expect(series(p)).toEqual({ [`${UDP} udp 127.0.0.1:5001 c1`]: 60 });
    const n = new CountingFeed({ top: 10, events: [UDP], split: false });
    n.update(new Map([[UDP, 0]]), table(sock(1, 0)));
    n.update(new Map([[UDP, 60]]), table(sock(1, 60)));
    expect(series(n)).toEqual({ [`${UDP}  unknown `]: 60 });
  });

  it('sums every event\'s series to the kernel\'s count once the drops stop, over random scrapes', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let run = 0; run < 50; run++) {
      const f = new CountingFeed({ top: 3, events: EVENTS });
      const drops = [0, 0, 0, 0, 0];
      let kernel = 0;
      f.update(counts(0), table(...drops.map((d, i) => sock(i, d))));
      for (let k = 0; k < 20; k++) {
        const before = rnd(3);
        for (let j = 0; j < before; j++) {
          const i = rnd(5);
          const n = rnd(50);
          drops[i] += n;
          kernel += n;
        }
        const snap = table(...drops.map((d, i) => sock(i, d)));
        // Drops between the socket read and the counter read.
        const i = rnd(5);
        const late = rnd(20);
        drops[i] += late;
        kernel += late;
        f.update(counts(kernel), snap);
      }
      f.update(counts(kernel), table(...drops.map((d, i) => sock(i, d))));
      f.update(counts(kernel), table(...drops.map((d, i) => sock(i, d))));
      const all = f.drops.series().filter((s) => s.labels.event === UDP);
      expect(f.drops.stats().total).toBe(kernel);
      expect(all.length).toBeGreaterThan(0);
      // Every socket's own series never exceeds its kernel drops.
      for (const s of f.drops.series()) {
        const m = /:(\d+)$/.exec(s.labels.local);
        if (s.labels.table === 'udp' && m) expect(s.value).toBeLessThanOrEqual(drops[Number(m[1]) - 5000]);
      }
    }
  });
});
