// Issue 3, live: `rxtrace sockets` against ss. Sinks with queued data and drops (in the root
// netns and in a netns of our own) must show the same local address, rx_queue (ss Recv-Q and
// skmem r), drops (skmem d) and owners as `ss -uamnpe` (through `ip netns exec` for the netns),
// with the right netns inode; the text format has a header and the sink's row; rows are sorted
// by drops, most first. Other tests may own sockets meanwhile: we look only at our own inodes.
import { execFile } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeLive } from '../helpers/live.js';
import { leftoverNetns, withNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { pollUntil, udpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, runningRxflood, send, startSink, stopAllRxflood, type Sink } from '../helpers/rxflood.js';

const execFileP = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'rxtrace.js');

interface Row {
  table: string;
  inode: number;
  local: string;
  remote: string;
  rx_queue: number;
  tx_queue: number;
  drops: number | null;
  netns: number | null;
  owners: { pid: number; comm: string }[];
}

async function rxtrace(...args: string[]): Promise<string> {
  const { stdout } = await execFileP(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return stdout;
}

async function socketsNdjson(...extra: string[]): Promise<Row[]> {
  const out = await rxtrace('sockets', '--format', 'ndjson', ...extra);
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Row);
}

interface SsRow {
  local: string;
  recvQ: number;
  pids: number[];
  comms: string[];
  inode: number;
  skmem: Record<string, number>;
}

/** `ss -uamnpe [filter]`, optionally inside a netns, keyed by inode. */
async function ss(ports: number[], netns?: string): Promise<Map<number, SsRow>> {
  const filter = ports.map((p) => `sport = :${p}`).join(' or ');
  const argv = ['-uamnpe', filter];
  const { stdout } = netns
    ? await execFileP('ip', ['netns', 'exec', netns, 'ss', ...argv], { encoding: 'utf8' })
    : await execFileP('ss', argv, { encoding: 'utf8' });
  const rows = new Map<number, SsRow>();
  const lines = stdout.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (!l.trim() || /^\s/.test(l)) continue;
    const t = l.trim().split(/\s+/);
    const skLine = lines[i + 1] ?? '';
    const sk = /skmem:\(([^)]*)\)/.exec(skLine);
    const skmem: Record<string, number> = {};
    for (const part of sk ? sk[1].split(',') : []) {
      const m = /^([a-z]+)(\d+)$/.exec(part);
      if (m) skmem[m[1]] = Number(m[2]);
    }
    const ino = /\bino:(\d+)/.exec(l);
    rows.set(Number(ino?.[1]), {
      local: t[3],
      recvQ: Number(t[1]),
      pids: [...l.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])),
      comms: [...l.matchAll(/\("([^"]*)",pid=/g)].map((m) => m[1]),
      inode: Number(ino?.[1]),
      skmem,
    });
  }
  return rows;
}

/** ss prints the dual-stack wildcard as `*:P`; rxtrace as `[::]:P`. */
const ssLocal = (s: string) => s.replace(/^\*:/, '[::]:');

function netnsOf(pid: number): number {
  return Number(/^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`))![1]);
}

describeLive('rxtrace sockets: an ss-like snapshot with owners, across namespaces', () => {
  beforeAll(() => {
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)').toBe(true);
  });

  afterEach(async () => {
    await stopAllRxflood();
  });

  afterAll(() => {
    expect(runningRxflood()).toEqual([]);
    expect(leftoverNetns()).toEqual([]);
  });

  it('agrees with ss -uamnpe on local address, rx_queue, drops and owners, in the root netns and in a netns; text and sort order too', async () => {
    await withNetns('sockets', async (ns) => {
      const ports = await Promise.all([freePort(), freePort('udp6'), freePort(), freePort(), freePort()]);
      // root netns: an IPv4 sink with the minimum rcvbuf, an IPv6 one with a queue of several
      // datagrams, a dual-stack wildcard, a quiet wildcard; and a sink inside the netns
      const v4 = await startSink({ bind: addrPort('127.0.0.1', ports[0]), rcvbuf: 1, comm: 'rxt-ss-v4' });
      const v6 = await startSink({ bind: addrPort('::1', ports[1]), rcvbuf: 16384, comm: 'rxt-ss-v6' });
      const ds = await startSink({ bind: addrPort('::', ports[2]), rcvbuf: 1, v6only: false, comm: 'rxt-ss-ds' });
      const quiet = await startSink({ bind: addrPort('0.0.0.0', ports[3]), comm: 'rxt-ss-quiet' });
      const inNs = await startSink({ bind: addrPort('127.0.0.1', ports[4]), rcvbuf: 1, netns: ns, comm: 'rxt-ss-ns' });
      const sinks: { sink: Sink; table: string; local: string; comm: string; n: number }[] = [
        { sink: v4, table: 'udp', local: `127.0.0.1:${ports[0]}`, comm: 'rxt-ss-v4', n: 3000 },
        { sink: v6, table: 'udp6', local: `[::1]:${ports[1]}`, comm: 'rxt-ss-v6', n: 2000 },
        { sink: ds, table: 'udp6', local: `[::]:${ports[2]}`, comm: 'rxt-ss-ds', n: 1000 },
        { sink: quiet, table: 'udp', local: `0.0.0.0:${ports[3]}`, comm: 'rxt-ss-quiet', n: 0 },
        { sink: inNs, table: 'udp', local: `127.0.0.1:${ports[4]}`, comm: 'rxt-ss-ns', n: 1500 },
      ];
      await Promise.all([
        send({ to: addrPort('127.0.0.1', ports[0]), count: 3000 }),
        send({ to: addrPort('::1', ports[1]), count: 2000, size: 200 }),
        send({ to: addrPort('127.0.0.1', ports[2]), count: 1000 }),
        send({ to: addrPort('127.0.0.1', ports[4]), count: 1500, netns: ns }),
      ]);
      for (const s of sinks) {
        if (s.n === 0) continue;
        const pid = s.sink.netns ? s.sink.pid : undefined;
        await pollUntil(() => udpSocketDrops(s.sink.inode, pid)?.drops ?? 0, (d) => d >= s.n * 0.5);
      }
      await new Promise((r) => setTimeout(r, 100)); // counters settle; nothing sends from here on

      const rows = await socketsNdjson();
      const [ssRoot, ssNs] = await Promise.all([ss(ports.slice(0, 4)), ss([ports[4]], ns)]);
      const text = (await rxtrace('sockets', '--format', 'text')).split('\n').filter((l) => l.trim());
      const observed: Record<string, unknown> = {};

      for (const s of sinks) {
        const label = s.local;
        const row = rows.find((r) => r.inode === s.sink.inode);
        expect(row, `${label} (inode ${s.sink.inode}) in rxtrace sockets`).toBeDefined();
        const ssr = (s.sink.netns ? ssNs : ssRoot).get(s.sink.inode);
        expect(ssr, `${label} (inode ${s.sink.inode}) in ss`).toBeDefined();
        const truth = udpSocketDrops(s.sink.inode, s.sink.netns ? s.sink.pid : undefined)!;

        expect(row!.table, label).toBe(s.table);
        expect(row!.local, label).toBe(s.local);
        expect(row!.local, `${label} vs ss`).toBe(ssLocal(ssr!.local));
        expect(row!.rx_queue, `${label} rx_queue vs ss Recv-Q`).toBe(ssr!.recvQ);
        expect(row!.rx_queue, `${label} rx_queue vs ss skmem r`).toBe(ssr!.skmem.r);
        expect(row!.drops, `${label} drops vs ss skmem d`).toBe(ssr!.skmem.d);
        expect(row!.drops, `${label} drops vs /proc`).toBe(truth.drops);
        expect(row!.owners, label).toContainEqual(expect.objectContaining({ pid: s.sink.pid, comm: s.comm }));
        expect(ssr!.pids, `${label} ss users`).toContain(s.sink.pid);
        expect(ssr!.comms, `${label} ss users`).toContain(s.comm);
        expect(row!.owners.map((o) => o.pid).sort()).toEqual([...ssr!.pids].sort());
        expect(row!.netns, `${label} netns`).toBe(netnsOf(s.sink.pid));
        if (s.n > 0) expect(row!.drops!, label).toBeGreaterThan(0);
        else expect(row!.drops, label).toBe(0);
        if (s.n > 0) expect(row!.rx_queue, `${label} has queued data`).toBeGreaterThan(0);

        // the text table has the same row
        const line = text.find((l) => l.split(/\s+/)[5] === String(s.sink.inode));
        expect(line, `${label} in the text format`).toBeDefined();
        const cols = line!.split(/\s+/);
        expect(cols.slice(0, 7)).toEqual([s.table, s.local, row!.remote, String(row!.rx_queue), String(row!.drops), String(s.sink.inode), String(row!.netns)]);
        expect(line).toContain(`${s.comm}[${s.sink.pid}]`);
        observed[label] = { rx_queue: row!.rx_queue, drops: row!.drops, netns: row!.netns, owners: row!.owners };
      }
      expect(rows.find((r) => r.inode === inNs.inode)!.netns).not.toBe(rows.find((r) => r.inode === v4.inode)!.netns);
      // the v6 sink holds several datagrams, not just one
      expect(rows.find((r) => r.inode === v6.inode)!.rx_queue).toBeGreaterThan(rows.find((r) => r.inode === v4.inode)!.rx_queue);

      // text: a header line first
      expect(text[0].split(/\s+/)).toEqual(['TABLE', 'LOCAL', 'REMOTE', 'RX_QUEUE', 'DROPS', 'INODE', 'NETNS', 'OWNERS']);
      // sorted by drops, most first (in both formats)
      const drops = rows.map((r) => r.drops ?? 0);
      expect(drops).toEqual([...drops].sort((a, b) => b - a));
      const textDrops = text.slice(1).map((l) => Number(l.split(/\s+/)[4]) || 0);
      expect(textDrops).toEqual([...textDrops].sort((a, b) => b - a));
      const pos = (s: Sink) => rows.findIndex((r) => r.inode === s.inode);
      expect(pos(v4)).toBeLessThan(pos(quiet));
      console.log(`[sockets] ${JSON.stringify(observed)}`);

      // --dropping keeps only sockets with drops; --table narrows the tables
      const dropping = await socketsNdjson('--dropping');
      expect(dropping.every((r) => (r.drops ?? 0) > 0)).toBe(true);
      expect(dropping.map((r) => r.inode)).toEqual(expect.arrayContaining([v4.inode, v6.inode, ds.inode, inNs.inode]));
      expect(dropping.map((r) => r.inode)).not.toContain(quiet.inode);
      const six = await socketsNdjson('--table', 'udp6');
      expect(new Set(six.map((r) => r.table))).toEqual(new Set(['udp6']));
      expect(six.map((r) => r.inode)).toEqual(expect.arrayContaining([v6.inode, ds.inode]));
      await inNs.stop();
    });
  });
});
