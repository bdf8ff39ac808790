// The /metrics exposition from a fixed counter snapshot and a fake tracer: names, labels,
// values, the socket selection, one kernel read per scrape, and the text format itself.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { CounterSnapshot } from '../../../src/counters/snapshot.js';
import type { DropEvent, SocketInfo } from '../../../src/decode/events.js';
import { dropKeyOf, TracerFeed } from '../../../src/metrics/drops.js';
import { counterFamilies, selectSockets, snakeCase } from '../../../src/metrics/families.js';
import { buildRegistry, sharedRead } from '../../../src/metrics/registry.js';
import type { RxTracer } from '../../../src/tracer.js';
import type { SocketSnapshotRow } from '../../../src/sockets.js';

function sock(over: Partial<SocketSnapshotRow> & { inode: number }): SocketSnapshotRow {
  return {
    table: 'udp',
    local: '127.0.0.1:5000',
    remote: '0.0.0.0:0',
    rx_queue: 0,
    tx_queue: 0,
    drops: 0,
    netns: 4026531840,
    state: 7,
    uid: 0,
    owners: [],
    ...over,
  };
}

/** A fixed snapshot; only the fields the metrics read are checked against the type (it grows). */
function snapshot(sockets: SocketSnapshotRow[] = []): CounterSnapshot {
  const snap = {
    monoMs: 0,
    wallMs: 0,
    selfNetns: 4026531840,
    softnet: [
      { cpu: 0, cpu_exact: true, processed: 100, dropped: 1, time_squeeze: 2, received_rps: 0, flow_limit_count: 0, backlog_len: 3 },
      { cpu: 1, cpu_exact: true, processed: 200, dropped: 0, time_squeeze: 0, received_rps: 5, flow_limit_count: 0, backlog_len: 0 },
    ],
    dev: {
      lo: { rx_bytes: 1000, rx_packets: 10, rx_errors: 0, rx_dropped: 4, rx_fifo_errors: 0, rx_frame_errors: 0, rx_compressed: 0, multicast: 0, tx_bytes: 0, tx_packets: 0, tx_errors: 0, tx_dropped: 0, tx_fifo_errors: 0, collisions: 0, tx_carrier_errors: 0, tx_compressed: 0 },
    },
    statistics: { lo: { rx_missed_errors: 1, rx_dropped: 3, rx_nohandler: 0 } },
    snmp: {
      Ip: { InReceives: 50, InDiscards: 0, InDelivers: 50, Forwarding: 2 },
      Udp: { InDatagrams: 10, NoPorts: 1, InErrors: 7, OutDatagrams: 20, RcvbufErrors: 6, SndbufErrors: 0, InCsumErrors: 0, IgnoredMulti: 0, MemErrors: 1 },
      UdpLite: { InDatagrams: 0, RcvbufErrors: 0 },
    },
    snmp6: { Ip6InReceives: 9, Ip6InNoRoutes: 1, Udp6RcvbufErrors: 2, Udp6InDatagrams: 3 },
    sockstat: { UDP: { inuse: 2, mem: 3 }, UDP6: { inuse: 1 }, sockets: { used: 9 } },
    protoMem: { udp_mem: [10, 20, 30] },
    pageSize: 4096,
    sockets: new Map(sockets.map((s) => [s.inode, s])),
    netnsRead: new Set([4026531840]),
    netnsSnmp: new Map(),
    errors: [],
  } satisfies Partial<CounterSnapshot>;
  return snap as unknown as CounterSnapshot;
}

/** Parse the text exposition into name{labels} → value, checking every line's shape. */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const typed = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      expect(typed.has(t[1])).toBe(false);
      typed.set(t[1], t[2]);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const id = m![1] + (m![2] ?? '');
    expect(out.has(id), `duplicate series ${id}`).toBe(false);
    out.set(id, Number(m![3]));
  }
  for (const name of typed.keys()) if (typed.get(name) === 'counter') expect(name).toMatch(/_total$/);
  return out;
}

class FakeTracer extends EventEmitter {
  plan = { events: [{ compiled: { event: 'udp:udp_fail_queue_rcv_skb' } }, { compiled: { event: 'sock:sock_rcvqueue_full' } }] };
}

function drop(socket: SocketInfo | null, over: Partial<DropEvent> = {}): DropEvent {
  return {
    time: '2026-11-23T23:00:00.000000000Z',
    cpu: 0,
    pid: 1,
    tid: 1,
    event: 'udp:udp_fail_queue_rcv_skb',
    fields: { rc: -12, daddr: '127.0.0.1:5000' },
    match: socket ? 'address' : 'none',
    socket,
    monoNs: 0,
    ...over,
  };
}

const sockInfo = (local: string, comms: string[]): SocketInfo => ({
  table: 'udp',
  inode: 1,
  local,
  remote: '0.0.0.0:0',
  rx_queue: 0,
  drops: 0,
  netns: 1,
  owners: comms.map((comm, i) => ({ pid: 100 + i, comm })),
});

describe('metric families', () => {
  it('snake-cases kernel counter names', () => {
    expect(snakeCase('RcvbufErrors')).toBe('rcvbuf_errors');
    expect(snakeCase('InCsumErrors')).toBe('in_csum_errors');
    expect(snakeCase('NoPorts')).toBe('no_ports');
  });

  it('reads the funnel as the kernel reports it', () => {
    const snap = snapshot();
    const got = new Map<string, number>();
    for (const f of counterFamilies(20)) for (const s of f.read(snap)) got.set(`${f.name}${JSON.stringify(s.labels)}`, s.value);
    expect(got.get('rxtrace_softnet_dropped_total{"cpu":"0"}')).toBe(1);
    expect(got.get('rxtrace_softnet_times_squeezed_total{"cpu":"0"}')).toBe(2);
    expect(got.get('rxtrace_softnet_backlog_len{"cpu":"0"}')).toBe(3);
    expect(got.get('rxtrace_udp_rcvbuf_errors_total{"proto":"udp"}')).toBe(6);
    expect(got.get('rxtrace_udp_rcvbuf_errors_total{"proto":"udp6"}')).toBe(2);
    expect(got.get('rxtrace_udp_mem_errors_total{"proto":"udp"}')).toBe(1);
    expect(got.has('rxtrace_udp_mem_errors_total{"proto":"udp6"}')).toBe(false); // absent in the kernel's file: absent here
    expect(got.get('rxtrace_ip_in_receives_total{"proto":"ip6"}')).toBe(9);
    expect(got.get('rxtrace_ip_in_no_routes_total{"proto":"ip6"}')).toBe(1);
    expect(got.get('rxtrace_network_receive_drop_total{"device":"lo"}')).toBe(4);
    expect(got.get('rxtrace_network_receive_missed_errors_total{"device":"lo"}')).toBe(1);
    expect(got.get('rxtrace_sockstat_udp_mem_bytes{}')).toBe(3 * 4096);
    expect(got.get('rxtrace_udp_mem_limit_bytes{"level":"max"}')).toBe(30 * 4096);
    expect(got.get('rxtrace_source_up{"source":"snmp"}')).toBe(1);
  });

  it('marks failed sources', () => {
    const snap = { ...snapshot(), errors: [{ source: 'snmp', code: 'EACCES', message: 'no' }, { source: 'netns:123', code: 'ESRCH', message: 'gone' }] };
    const f = counterFamilies(5).find((x) => x.name === 'rxtrace_source_up')!;
    const v = Object.fromEntries(f.read(snap).map((s) => [s.labels.source, s.value]));
    expect(v).toMatchObject({ snmp: 0, netns: 0, softnet_stat: 1, netstat: 1, tcp_sockets: 1 });
    // The TCP sources (issue 13): /proc/net/netstat and the sock_diag TCP read, under the names snapshot.ts guards them with.
    const tcp = { ...snapshot(), errors: [{ source: 'netstat', code: 'EPARSE', message: 'bad' }, { source: 'tcp_sockets', code: 'EPERM', message: 'denied' }] };
    const w = Object.fromEntries(f.read(tcp).map((s) => [s.labels.source, s.value]));
    expect(w).toMatchObject({ netstat: 0, tcp_sockets: 0, snmp: 1, sockets: 1 });
  });

  it('selects the top sockets by drops and by rx_queue, summing sockets that share labels', () => {
    const rows = [
      sock({ inode: 1, local: '127.0.0.1:1', drops: 100, owners: [{ pid: 1, comm: 'a' }] }),
      sock({ inode: 2, local: '127.0.0.1:2', drops: 50, owners: [{ pid: 2, comm: 'b' }] }),
      sock({ inode: 3, local: '127.0.0.1:3', drops: 10 }),
      sock({ inode: 4, local: '127.0.0.1:4', rx_queue: 9000 }),
      sock({ inode: 5, local: '127.0.0.1:5' }), // idle: never exported
      // an SO_REUSEPORT pair in one process: one series
      sock({ inode: 6, local: '0.0.0.0:53', drops: 5, rx_queue: 10, owners: [{ pid: 3, comm: 'dns' }] }),
      sock({ inode: 7, local: '0.0.0.0:53', drops: 7, rx_queue: 20, owners: [{ pid: 3, comm: 'dns' }] }),
    ];
    const sel = selectSockets(snapshot(rows), 2);
    expect(sel.map((g) => [g.local, g.drops, g.rx_queue, g.sockets])).toEqual([
      ['0.0.0.0:53', 12, 30, 2],
      ['127.0.0.1:1', 100, 0, 1],
      ['127.0.0.1:2', 50, 0, 1],
      ['127.0.0.1:4', 0, 9000, 1],
    ]);
  });
});

describe('drop keys', () => {
  it('labels a matched drop with its socket and owners', () => {
    expect(dropKeyOf(drop(sockInfo('127.0.0.1:5000', ['feed', 'feed', 'agent'])))).toEqual({
      event: 'udp:udp_fail_queue_rcv_skb',
      table: 'udp',
      local: '127.0.0.1:5000',
      comm: 'agent,feed',
    });
  });
  it('keeps the address of an unmatched UDP drop, and names global and unknown ones', () => {
    expect(dropKeyOf(drop(null, { match: 'ambiguous' }))).toMatchObject({ table: '', local: '127.0.0.1:5000', comm: '' });
    expect(dropKeyOf(drop(null, { event: 'sock:sock_exceed_buf_limit', match: 'global', fields: {} }))).toMatchObject({ local: 'global' });
    expect(dropKeyOf(drop(null, { event: 'sock:sock_rcvqueue_full', fields: {} }))).toMatchObject({ local: 'unknown' });
  });
});

describe('registry', () => {
  it('sharedRead: one read for concurrent callers, a new one after maxAge, none reused after a failure', async () => {
    let now = 0;
    let reads = 0;
    let fail = false;
    const get = sharedRead(
      async () => {
        reads++;
        if (fail) throw new Error('boom');
        return reads;
      },
      1000,
      () => now,
    );
    expect(await Promise.all([get(), get(), get()])).toEqual([1, 1, 1]);
    now = 999;
    expect(await get()).toBe(1);
    now = 1000;
    fail = true;
    await expect(get()).rejects.toThrow('boom');
    fail = false;
    expect(await get()).toBe(3);
  });

  it('serves drops, lost, tracing_up and the counters, reading the kernel once per scrape', async () => {
    let reads = 0;
    const tracer = new FakeTracer();
    const feed = new TracerFeed(tracer as unknown as RxTracer, { top: 1, cpus: [0, 1] });
    const reg = buildRegistry({
      top: 1,
      read: async () => {
        reads++;
        return snapshot([sock({ inode: 1, local: '127.0.0.1:5000', drops: 3, rx_queue: 2304, owners: [{ pid: 1, comm: 'feed' }] })]);
      },
      feed: () => feed,
      maxSnapshotAgeMs: 0,
    });
    tracer.emit('drop', drop(sockInfo('127.0.0.1:5000', ['feed'])));
    tracer.emit('drop', drop(sockInfo('127.0.0.1:5000', ['feed'])));
    tracer.emit('drop', drop(sockInfo('127.0.0.1:6000', ['other-proc'])));
    tracer.emit('lost', { event: 'lost', time: '', cpu: 1, lost: 42 });

    const first = parseExposition(await reg.registry.metrics());
    expect(reads).toBe(1);
    // A new key's series shows 0 at its first scrape (for increase()), its count from the next.
    expect(first.get('rxtrace_drops_total{event="udp:udp_fail_queue_rcv_skb",table="udp",local="127.0.0.1:5000",comm="feed"}')).toBe(0);
    const m = parseExposition(await reg.registry.metrics());
    expect(reads).toBe(2);
    expect(m.get('rxtrace_tracing_up')).toBe(1);
    expect(m.get('rxtrace_drops_total{event="udp:udp_fail_queue_rcv_skb",table="udp",local="127.0.0.1:5000",comm="feed"}')).toBe(2);
    expect(m.get('rxtrace_drops_total{event="udp:udp_fail_queue_rcv_skb",table="",local="other",comm=""}')).toBe(1);
    expect(m.get('rxtrace_drops_total{event="sock:sock_rcvqueue_full",table="",local="other",comm=""}')).toBe(0);
    expect(m.get('rxtrace_lost_events_total{cpu="0"}')).toBe(0);
    expect(m.get('rxtrace_lost_events_total{cpu="1"}')).toBe(42);
    expect(m.get('rxtrace_socket_drops_total{table="udp",local="127.0.0.1:5000",comm="feed"}')).toBe(3);
    expect(m.get('rxtrace_socket_rx_queue_bytes{table="udp",local="127.0.0.1:5000",comm="feed"}')).toBe(2304);
    expect(m.get('rxtrace_udp_rcvbuf_errors_total{proto="udp"}')).toBe(6);
    expect(m.get('rxtrace_drops_keys')).toBe(2);
    expect([...m.keys()].some((k) => k.startsWith('process_cpu_user_seconds_total'))).toBe(true);
    expect([...m.keys()].some((k) => k.startsWith('nodejs_active_handles_total'))).toBe(false);

    feed.close();
    tracer.emit('drop', drop(sockInfo('127.0.0.1:5000', ['feed'])));
    expect(feed.drops.stats().total).toBe(3);
  });

  it('a new key moves on from its first sample 0 only after a scrape that was delivered', async () => {
    const tracer = new FakeTracer();
    const feed = new TracerFeed(tracer as unknown as RxTracer, { top: 5 });
    const reg = buildRegistry({ top: 5, read: async () => snapshot(), feed: () => feed, defaultMetrics: false });
    const id = 'rxtrace_drops_total{event="udp:udp_fail_queue_rcv_skb",table="udp",local="127.0.0.1:5000",comm="feed"}';
    for (let i = 0; i < 10; i++) tracer.emit('drop', drop(sockInfo('127.0.0.1:5000', ['feed'])));
    const lost = await reg.scrape(); // timed out at the scraper: not delivered
    expect(parseExposition(lost.body).get(id)).toBe(0);
    lost.delivered(false);
    const first = await reg.scrape();
    expect(parseExposition(first.body).get(id)).toBe(0); // still the first sample
    first.delivered(true);
    const second = await reg.scrape();
    expect(parseExposition(second.body).get(id)).toBe(10);
    second.delivered(true);
  });

  it('without a tracer: tracing_up 0 and no drop series, the counters still', async () => {
    const reg = buildRegistry({ top: 5, read: async () => snapshot(), defaultMetrics: false });
    const m = parseExposition(await reg.registry.metrics());
    expect(m.get('rxtrace_tracing_up')).toBe(0);
    expect([...m.keys()].filter((k) => k.startsWith('rxtrace_drops_total'))).toEqual([]);
    expect(m.get('rxtrace_softnet_processed_total{cpu="1"}')).toBe(200);
  });

  it('escapes label values that need it', async () => {
    const tracer = new FakeTracer();
    const feed = new TracerFeed(tracer as unknown as RxTracer, { top: 5 });
    const reg = buildRegistry({ top: 5, read: async () => snapshot(), feed: () => feed, defaultMetrics: false });
    tracer.emit('drop', drop(sockInfo('[::1]:5000', ['we"ird\\name\n'])));
    await reg.registry.metrics();
    const text = await reg.registry.metrics();
    expect(text).toContain('comm="we\\"ird\\\\name\\n"');
    parseExposition(text);
  });
});
