// explain's rules on numbers alone: which finding each window gives, ranked by drops, with
// this host's values quoted and the fixes in order; and --verify's before/after.
import { describe, expect, it } from 'vitest';
import type { FunnelInterval } from '../../../src/counters/funnel.js';
import { explain, verify } from '../../../src/explain/index.js';
import type { ExplainInput, Traced } from '../../../src/explain/types.js';

const owner = { pid: 812, comm: 'feed', cgroup: '/system.slice/docker-' + 'ab'.repeat(32) + '.scope', container: 'ab'.repeat(32) };

function interval(over: Partial<FunnelInterval['delta']> = {}, g: Partial<FunnelInterval['gauges']> = {}, rec: Partial<FunnelInterval['reconcile'][number]> = {}): FunnelInterval {
  const zero = { processed: 0, dropped: 0, time_squeeze: 0, received_rps: 0, flow_limit_count: 0 };
  return {
    time: '2026-12-03T05:00:00.000Z',
    interval: 5,
    delta: { dev: {}, statistics: {}, softnet_stat: { total: { ...zero }, cpu: { '0': { ...zero }, '1': { ...zero } } }, snmp: {}, snmp6: {}, sockets: [], ...over },
    gauges: { softnet_stat: {}, sockstat: { UDP: { inuse: 10, mem: 3 } }, udp_mem: [1000, 2000, 3000], page_size: 4096, sockets: {}, ...g },
    funnel: [],
    losing: null,
    reconcile: [{ netns: 1, self: true, socket_drops: 0, RcvbufErrors: 0, MemErrors: 0, kernel_range: [0, 0], unexplained: 0, sockets_closed: 0, ...rec }],
  };
}

const sysctl = {
  'net.core.rmem_default': 212992,
  'net.core.rmem_max': 212992,
  'net.core.netdev_max_backlog': 1000,
  'net.core.netdev_budget': 300,
  'net.core.netdev_budget_usecs': 2000,
  'net.ipv4.udp_mem': [1000, 2000, 3000] as [number, number, number],
};

function input(iv: FunnelInterval, extra: Partial<ExplainInput> = {}): ExplainInput {
  return { interval: iv, sysctl, skmem: {}, traced: null, cpus: 2, ...extra };
}

const sock = (inode: number, drops: number, local = '127.0.0.1:5000') => ({ table: 'udp', inode, local, remote: '0.0.0.0:0', netns: 1, owners: [owner], drops });

describe('socket_rcvbuf', () => {
  it('a default-sized buffer: never set SO_RCVBUF; setsockopt first, rmem_max next (it caps), then the app, then rmem_default', () => {
    const iv = interval({ sockets: [sock(77, 5000)] }, { sockets: { '77': { rx_queue: 212992, drops: 5000 } } }, { RcvbufErrors: 5000 });
    const [f, ...rest] = explain(input(iv, { skmem: { '77': { rcvbuf: 212992, rmem_alloc: 212992 } } }));
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ place: 'socket', cause: 'socket_rcvbuf', drops: 5000, socket: { inode: 77, owners: [owner] } });
    expect(f.evidence).toMatchObject({ rcvbuf: 212992, rx_queue: 212992, so_rcvbuf: null, 'net.core.rmem_max': 212992, 'net.core.rmem_default': 212992, drops_per_s: 1000 });
    expect(f.summary).toContain('rx_queue 212992 of rcvbuf 212992 (= net.core.rmem_default; the app never set SO_RCVBUF)');
    expect(f.fixes.map((x) => x.kind)).toEqual(['setsockopt', 'sysctl', 'app', 'sysctl']);
    expect(f.fixes[0]).toMatchObject({ option: 'SO_RCVBUF', value: 2097152 });
    expect(f.fixes[1]).toMatchObject({ name: 'net.core.rmem_max', current: 212992, value: 2097152, command: 'sysctl -w net.core.rmem_max=2097152' });
    expect(f.fixes[3]).toMatchObject({ name: 'net.core.rmem_default' });
  });

  it('a tiny SO_RCVBUF the app set: quoted, and no rmem_max fix when rmem_max already allows the suggestion', () => {
    const iv = interval({ sockets: [sock(78, 10)] }, { sockets: { '78': { rx_queue: 2304, drops: 10 } } }, { RcvbufErrors: 10 });
    const [f] = explain(input(iv, { sysctl: { ...sysctl, 'net.core.rmem_max': 8 << 20 }, skmem: { '78': { rcvbuf: 4608, rmem_alloc: 2304 } } }));
    expect(f.evidence.so_rcvbuf).toBe(2304);
    expect(f.summary).toContain('the app set SO_RCVBUF to ~2304');
    expect(f.fixes.map((x) => x.kind)).toEqual(['setsockopt', 'app']);
  });

  it('--port / owner selection leaves other sockets out', () => {
    const iv = interval({ sockets: [sock(1, 10, '127.0.0.1:5000'), sock(2, 20, '127.0.0.1:6000')] }, {}, { RcvbufErrors: 30 });
    const f = explain(input(iv, { keepSocket: (s) => s.local.endsWith(':5000') }));
    expect(f.map((x) => x.socket?.inode)).toEqual([1]);
  });
});

describe('udp_mem', () => {
  it('MemErrors without RcvbufErrors: the sockets are listed under udp_mem, not as socket_rcvbuf; the fix scales udp_mem', () => {
    const iv = interval({ sockets: [sock(5, 300), sock(6, 200)] }, { sockstat: { UDP: { inuse: 8, mem: 2900 } } }, { MemErrors: 500 });
    const f = explain(input(iv));
    expect(f.map((x) => x.cause)).toEqual(['udp_mem']);
    expect(f[0]).toMatchObject({ place: 'udp', drops: 500, socket: null, evidence: { MemErrors: 500, udp_mem: [1000, 2000, 3000], sockstat_UDP_mem: 2900, page_size: 4096 } });
    expect(f[0].fixes[0]).toMatchObject({ kind: 'sysctl', name: 'net.ipv4.udp_mem', current: '1000 2000 3000', value: '2000 4000 6000', command: 'sysctl -w net.ipv4.udp_mem="2000 4000 6000"' });
  });

  it('the tracer decides per socket when it saw rc: -105 is udp_mem, -12 the socket', () => {
    const traced: Traced = { events: {}, lost: 0, unmatched: 0, exceed: { UDP: 40 }, sockets: { '5': { rcvbuf: 0, protomem: 30, other: 0 }, '6': { rcvbuf: 20, protomem: 0, other: 0 } } };
    const iv = interval({ sockets: [sock(5, 30), sock(6, 20)] }, {}, { MemErrors: 30, RcvbufErrors: 20 });
    const f = explain(input(iv, { traced }));
    expect(f.map((x) => [x.cause, x.socket?.inode ?? null, x.drops])).toEqual([
      ['udp_mem', 5, 30],
      ['socket_rcvbuf', 6, 20],
    ]);
  });

  it('tcp_mem from sock_exceed_buf_limit TCP', () => {
    const traced: Traced = { events: {}, lost: 0, unmatched: 0, exceed: { TCP: 3 }, sockets: {} };
    const f = explain(input(interval(), { traced, sysctl: { ...sysctl, 'net.ipv4.tcp_mem': [10, 20, 30] } }));
    expect(f.map((x) => x.cause)).toEqual(['tcp_mem']);
    expect(f[0].fixes[0]).toMatchObject({ value: '20 40 60' });
  });
});

describe('softnet and NIC', () => {
  it('backlog drops, squeezes and one hot CPU: netdev_max_backlog, rps_imbalance, softnet_budget', () => {
    const iv = interval({
      softnet_stat: {
        total: { processed: 1000, dropped: 90, time_squeeze: 4, received_rps: 0, flow_limit_count: 0 },
        cpu: {
          '0': { processed: 50, dropped: 0, time_squeeze: 0, received_rps: 0, flow_limit_count: 0 },
          '1': { processed: 950, dropped: 90, time_squeeze: 4, received_rps: 0, flow_limit_count: 0 },
        },
      },
    });
    const f = explain(input(iv));
    expect(f.map((x) => x.cause)).toEqual(['netdev_max_backlog', 'rps_imbalance', 'softnet_budget']);
    expect(f[0].fixes[0]).toMatchObject({ kind: 'sysctl', name: 'net.core.netdev_max_backlog', current: 1000, value: 2000 });
    expect(f[1].evidence).toMatchObject({ cpu: 1, share: 0.95 });
    expect(f[1].fixes.map((x) => x.kind)).toEqual(['ethtool', 'sysfs']);
    expect(f[1].fixes[1]).toMatchObject({ value: '3' });
    expect(f[2].fixes.map((x) => (x.kind === 'sysctl' ? [x.name, x.value] : x.kind))).toEqual([
      ['net.core.netdev_budget', 600],
      ['net.core.netdev_budget_usecs', 4000],
    ]);
  });

  it('balanced CPUs: no imbalance finding', () => {
    const d = { processed: 500, dropped: 5, time_squeeze: 0, received_rps: 0, flow_limit_count: 0 };
    const f = explain(input(interval({ softnet_stat: { total: { ...d, processed: 1000, dropped: 10 }, cpu: { '0': d, '1': d } } })));
    expect(f.map((x) => x.cause)).toEqual(['netdev_max_backlog']);
  });

  it('NIC ring drops name the device and ethtool -G', () => {
    const f = explain(input(interval({ statistics: { eth0: { rx_missed_errors: 7, rx_fifo_errors: 3, rx_over_errors: 3 } } })));
    expect(f[0]).toMatchObject({ place: 'nic', cause: 'nic_ring', drops: 10, evidence: { device: 'eth0' } });
    expect(f[0].fixes[0]).toMatchObject({ kind: 'ethtool', command: 'ethtool -G eth0 rx 4096' });
  });

  it('IP discards', () => {
    const f = explain(input(interval({ snmp: { Ip: { InDiscards: 4, InHdrErrors: 1 } } })));
    expect(f[0]).toMatchObject({ place: 'ip', cause: 'ip_discards', drops: 5 });
  });

  it('a quiet window: no findings', () => {
    expect(explain(input(interval()))).toEqual([]);
  });
});

describe('verify', () => {
  it('stopped, fewer, same, more, new, by rate', () => {
    const mk = (cause: string, drops: number) => ({ place: 'softnet' as const, cause, drops, socket: null, evidence: {}, fixes: [], summary: '' });
    const rows = verify([mk('a', 100), mk('b', 100), mk('c', 100), mk('d', 100)], 5, [mk('b', 10), mk('c', 200), mk('d', 400), mk('e', 1)], 10);
    expect(rows.map((r) => [r.cause, r.result, r.before.per_s, r.after.per_s])).toEqual([
      ['a', 'stopped', 20, 0],
      ['b', 'fewer', 20, 1],
      ['c', 'same', 20, 20],
      ['d', 'more', 20, 40],
      ['e', 'new', 0, 0.1],
    ]);
  });
});

describe('udp_mem on kernels without the udp event for it (6.18)', () => {
  it('UDP over udp_mem in the window and a socket far below its own buffer: its drops are udp_mem', () => {
    const traced: Traced = { events: {}, lost: 0, unmatched: 0, exceed: { UDP: 900 }, sockets: {} };
    const iv = interval({ sockets: [sock(5, 300), sock(6, 200)] }, {}, { RcvbufErrors: 500 });
    const skmem = { '5': { rcvbuf: 8000000, rmem_alloc: 4096 }, '6': { rcvbuf: 4608, rmem_alloc: 4608 } };
    const f = explain(input(iv, { traced, skmem }));
    expect(f.map((x) => [x.cause, x.socket?.inode ?? null, x.drops])).toEqual([
      ['udp_mem', 5, 300],
      ['socket_rcvbuf', 6, 200],
    ]);
  });
});

describe('listen_overflow', () => {
  const tcp = (ListenOverflows: number, ListenDrops: number) => ({ in: 1000, drops: ListenDrops, in_per_s: 200, drops_per_s: ListenDrops / 5, TcpExt: { ListenOverflows, ListenDrops }, socket_drops: null });
  const listener = (over: Partial<NonNullable<ExplainInput['listeners']>[number]> = {}) => ({ table: 'tcp', inode: 91, local: '127.0.0.1:8080', netns: 1, owners: [owner], drops: 250, accept_queue: 2, backlog: 1, ...over });

  it('a listener whose drops rose: its accept queue against its backlog, the TcpExt deltas and somaxconn; accept faster, then the backlog', () => {
    const iv = { ...interval(), tcp: tcp(240, 250) };
    const f = explain(input(iv, { sysctl: { ...sysctl, 'net.core.somaxconn': 4096 }, listeners: [listener()] }));
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ place: 'listener', cause: 'listen_overflow', drops: 250, socket: { table: 'tcp', inode: 91, local: '127.0.0.1:8080', owners: [owner] } });
    expect(f[0].evidence).toEqual({ drops: 250, drops_per_s: 50, accept_queue: 2, backlog: 1, ListenOverflows: 240, ListenDrops: 250, 'net.core.somaxconn': 4096, seconds: 5 });
    expect(f[0].fixes.map((x) => x.kind)).toEqual(['app', 'app']);
    expect(f[0].fixes[1].text).toContain('raise the listen() backlog (now 1), e.g. listen(fd, 4096); the kernel caps it at net.core.somaxconn (now 4096)');
    expect(f[0].summary).toContain('250 drops (50.0/s), accept queue 2 of backlog 1 (somaxconn 4096); TcpExt ListenOverflows +240, ListenDrops +250');
  });

  it('a backlog already at somaxconn: the sysctl fix third, with the current value', () => {
    const iv = { ...interval(), tcp: tcp(10, 10) };
    const [f] = explain(input(iv, { sysctl: { ...sysctl, 'net.core.somaxconn': 128 }, listeners: [listener({ drops: 10, accept_queue: 129, backlog: 128 })] }));
    expect(f.fixes.map((x) => x.kind)).toEqual(['app', 'app', 'sysctl']);
    expect(f.fixes[1].text).toContain('so raise that too');
    expect(f.fixes[2]).toMatchObject({ name: 'net.core.somaxconn', current: 128, value: 4096, command: 'sysctl -w net.core.somaxconn=4096' });
    expect(f.summary).toContain('accept queue 129 of backlog 128 (= net.core.somaxconn)');
  });

  it('ranked with the others by drops; a TCP socket is never blamed as socket_rcvbuf; --port leaves other listeners out', () => {
    const tcpSock = { table: 'tcp', inode: 91, local: '127.0.0.1:8080', remote: '0.0.0.0:0', netns: 1, owners: [owner], drops: 250 };
    const iv = { ...interval({ sockets: [tcpSock, sock(77, 100)] }, {}, { RcvbufErrors: 100 }), tcp: tcp(250, 250) };
    const f = explain(input(iv, { listeners: [listener(), listener({ inode: 92, local: '127.0.0.1:9090', drops: 500 })] }));
    expect(f.map((x) => [x.cause, x.socket?.inode])).toEqual([
      ['listen_overflow', 92],
      ['listen_overflow', 91],
      ['socket_rcvbuf', 77],
    ]);
    const g = explain(input(iv, { listeners: [listener(), listener({ inode: 92, local: '127.0.0.1:9090', drops: 500 })], keepSocket: (s) => s.local.endsWith(':8080') }));
    expect(g.map((x) => x.socket?.inode)).toEqual([91]);
  });

  it('ListenOverflows with no listener read: one host-wide finding; none at all when quiet', () => {
    const f = explain(input({ ...interval(), tcp: tcp(30, 31) }, { listeners: [] }));
    expect(f).toEqual([expect.objectContaining({ place: 'listener', cause: 'listen_overflow', drops: 30, socket: null })]);
    expect(explain(input({ ...interval(), tcp: tcp(0, 0) }, { listeners: [] }))).toEqual([]);
  });
});
