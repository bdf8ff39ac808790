// Issue 4, live: `rxtrace stats` against the kernel's own counters. Each test runs rxtrace in a
// network namespace of its own (ip netns exec), where only the test's traffic moves snmp,
// /proc/net/dev and the namespace's lo, so the sum of the interval deltas must equal the
// kernel's before/after difference exactly; nstat is the outside check. softnet_stat is global
// (other tests share the kernel), so there the deltas are bounded by the kernel's difference.
// The last test forces softnet backlog drops: a veth pair between two namespaces, RPS steering
// the receive side to another CPU, and a low net.core.netdev_max_backlog (restored).
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it, onTestFinished } from 'vitest';
import type { FunnelInterval } from '../../src/counters/funnel.js';
import { TIME_SCALE } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { ip, leftoverNetns, withNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { nstat, pollUntil, udpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, runningRxflood, rxfloodPath, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';
import { readSysctl, withSysctl } from '../helpers/sysctl.js';

const execFileP = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'rxtrace.js');

interface Run {
  /** Resolves with each NDJSON line as it comes. */
  lines: FunnelInterval[];
  firstLine: Promise<void>;
  done: Promise<{ code: number | null; stderr: string }>;
  /** SIGINT: stats exits 0 after the intervals it has printed. */
  stop(): void;
}

const running = new Set<ReturnType<typeof spawn>>();

/** `rxtrace stats …` inside `ns` (or here), NDJSON parsed line by line. */
function stats(ns: string | undefined, ...args: string[]): Run {
  const argv = [process.execPath, BIN, 'stats', '--format', 'ndjson', ...args];
  const child = ns ? spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const lines: FunnelInterval[] = [];
  let buf = '';
  let stderr = '';
  let first: () => void;
  const firstLine = new Promise<void>((r) => (first = r));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as FunnelInterval);
    if (lines.length > 0) first();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      running.delete(child);
      first();
      resolve({ code, stderr });
    }),
  );
  return { lines, firstLine, done, stop: () => child.kill('SIGINT') };
}

/**
 * Stop `run` once it has printed two intervals more than now. On a slow host (qemu TCG) a flood
 * can outlast a fixed -n, and then the last read splits it: the intervals must enclose it.
 */
async function stopAfterTwoMore(run: Run): Promise<void> {
  const want = run.lines.length + 2;
  await pollUntil(() => run.lines.length, (n) => n >= want, 20_000 * TIME_SCALE);
  run.stop();
}

/** /proc/net/snmp of a namespace, read through `ip netns exec` (independent of src/procnet). */
async function kernelSnmp(ns: string): Promise<Record<string, Record<string, number>>> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { encoding: 'utf8' });
  const out: Record<string, Record<string, number>> = {};
  const lines = stdout.trim().split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i].split(/\s+/);
    const values = lines[i + 1].split(/\s+/);
    const proto = names[0].replace(':', '');
    out[proto] = {};
    for (let k = 1; k < names.length; k++) out[proto][names[k]] = Number(values[k]);
  }
  return out;
}

/** rx counters of a device from /sys/class/net inside a namespace. */
async function sysStat(ns: string, dev: string, name: string): Promise<number> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${dev}/statistics/${name}`], { encoding: 'utf8' });
  return Number(stdout.trim());
}

/** /proc/net/softnet_stat columns (global), per CPU: [processed, dropped, …] by the cpu column. */
function softnetNow(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const l of readFileSync('/proc/net/softnet_stat', 'latin1').trim().split('\n')) {
    const v = l.trim().split(/\s+/).map((x) => parseInt(x, 16));
    out.set(v[12], v);
  }
  return out;
}

const sum = (ivs: FunnelInterval[], f: (iv: FunnelInterval) => number | undefined): number => ivs.reduce((s, iv) => s + (f(iv) ?? 0), 0);
const U32 = 2 ** 32;

describeLive('rxtrace stats (live)', () => {
  beforeAll(() => {
    expect(() => readFileSync(join(ROOT, 'dist', 'cli', 'stats.js'))).not.toThrow();
  });

  afterEach(async () => {
    for (const c of running) c.kill('SIGKILL');
    await stopAllRxflood();
  });

  afterAll(() => {
    expect(runningRxflood()).toEqual([]);
    expect(leftoverNetns()).toEqual([]);
  });

  it('interval deltas add up to the kernel before/after difference (snmp, nstat, dev, statistics, socket drops)', async () => {
    await withNetns('stats-sum', async (ns) => {
      const port = await freePort();
      const sink = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, comm: 'rxt-stats-sink', netns: ns });
      const snmpBefore = await kernelSnmp(ns);
      const nstatBefore = nstat(ns);
      const loBefore = await sysStat(ns, 'lo', 'rx_packets');
      const softBefore = softnetNow();
      const run = stats(ns, '-i', '1');
      await run.firstLine;
      const N = 20_000;
      const res = await send({ to: addrPort('127.0.0.1', port), count: N, netns: ns });
      expect(res.sent).toBe(N);
      await stopAfterTwoMore(run);
      const { code, stderr } = await run.done;
      expect(code, stderr).toBe(0);
      const snmpAfter = await kernelSnmp(ns);
      const nstatAfter = nstat(ns);
      const loAfter = await sysStat(ns, 'lo', 'rx_packets');
      const softAfter = softnetNow();
      const ivs = run.lines;
      expect(ivs.length).toBeGreaterThanOrEqual(3);

      for (const iv of ivs) {
        expect(Object.keys(iv).slice(0, 3)).toEqual(['time', 'interval', 'delta']);
        expect(iv.interval).toBeGreaterThan(0.8);
        expect(iv.interval).toBeLessThan(1.5 * TIME_SCALE); // a read slower than the interval restarts the schedule
        expect(iv.errors).toBeUndefined();
      }
      // snmp: every Udp and Ip counter, exactly.
      for (const proto of ['Udp', 'Ip']) {
        for (const name of Object.keys(snmpAfter[proto])) {
          if (proto === 'Ip' && (name === 'Forwarding' || name === 'DefaultTTL')) {
            expect(ivs[0].delta.snmp.Ip[name], 'a setting, not a counter').toBeUndefined();
            continue;
          }
          const kernel = snmpAfter[proto][name] - snmpBefore[proto][name];
          expect(sum(ivs, (iv) => iv.delta.snmp[proto][name]), `${proto} ${name}`).toBe(kernel);
        }
      }
      const rcvbuf = snmpAfter.Udp.RcvbufErrors - snmpBefore.Udp.RcvbufErrors;
      expect(rcvbuf).toBeGreaterThanOrEqual(N * 0.9);
      // nstat, the outside check (it names them UdpRcvbufErrors, IpInReceives…).
      for (const name of ['RcvbufErrors', 'InErrors', 'InDatagrams', 'NoPorts', 'MemErrors']) {
        expect(sum(ivs, (iv) => iv.delta.snmp.Udp[name]), `nstat Udp${name}`).toBe((nstatAfter[`Udp${name}`] ?? 0) - (nstatBefore[`Udp${name}`] ?? 0));
      }
      expect(sum(ivs, (iv) => iv.delta.snmp.Ip.InReceives)).toBe(nstatAfter.IpInReceives - nstatBefore.IpInReceives);
      // The namespace's lo carries only our traffic.
      expect(sum(ivs, (iv) => iv.delta.statistics.lo?.rx_packets)).toBe(loAfter - loBefore);
      expect(sum(ivs, (iv) => iv.delta.dev.lo?.rx_packets)).toBe(loAfter - loBefore);
      // The sink's socket: its drops, its owner, and the reconciliation.
      const row = udpSocketDrops(sink.inode, sink.pid)!;
      const mine = ivs.flatMap((iv) => iv.delta.sockets.filter((s) => s.inode === sink.inode));
      expect(mine.reduce((s, x) => s + x.drops, 0)).toBe(row.drops);
      expect(mine[0].owners).toEqual([expect.objectContaining({ pid: sink.pid, comm: 'rxt-stats-sink' })]);
      expect(mine[0].local).toBe(`127.0.0.1:${port}`);
      const own = ivs.map((iv) => iv.reconcile.find((r) => r.self)!);
      expect(own.reduce((s, r) => s + r.socket_drops, 0)).toBe(rcvbuf);
      expect(own.every((r) => r.unexplained === 0)).toBe(true);
      const flood = ivs.find((iv) => iv.delta.snmp.Udp.RcvbufErrors > 0)!;
      expect(flood.losing).toBe('socket');
      // The socket layer counts sockets of every namespace (other tests' too), so at least ours.
      const ours = flood.delta.sockets.find((x) => x.inode === sink.inode)!.drops;
      expect(flood.funnel.find((l) => l.layer === 'socket')!.drops).toBeGreaterThanOrEqual(ours);
      // softnet_stat is global: rxtrace's window lies inside ours, so its sums are bounded by ours.
      for (const [cpu, after] of softAfter) {
        const before = softBefore.get(cpu)!;
        const kernel = (after[0] - before[0] + U32) % U32;
        const got = sum(ivs, (iv) => iv.delta.softnet_stat.cpu[String(cpu)]?.processed);
        expect(got).toBeLessThanOrEqual(kernel);
      }
      expect(sum(ivs, (iv) => iv.delta.softnet_stat.total.processed)).toBeGreaterThanOrEqual(sum(ivs, (iv) => iv.delta.dev.lo?.rx_packets));
      await sink.stop();
    });
  });

  it('stats -n 5 --format ndjson | jq gives the numbers the kernel gives', async () => {
    await withNetns('stats-jq', async (ns) => {
      const port = await freePort();
      const sink = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, netns: ns });
      const before = await kernelSnmp(ns);
      // tee: the test floods only once the first interval is out (node may take a while to start).
      const tee = join(mkdtempSync(join(tmpdir(), 'rxt-jq-')), 'lines');
      onTestFinished(() => rmSync(dirname(tee), { recursive: true, force: true }));
      const jq = `{rcvbuf: (map(.delta.snmp.Udp.RcvbufErrors) | add), inerrors: (map(.delta.snmp.Udp.InErrors) | add), sink: (map(.delta.sockets[] | select(.inode == ${sink.inode}) | .drops) | add), n: length}`;
      const cmd = `${process.execPath} ${BIN} stats -i 0.5 -n 5 --format ndjson | tee ${tee} | jq -s -c '${jq}'`;
      const out = execFileP('ip', ['netns', 'exec', ns, 'bash', '-o', 'pipefail', '-c', cmd], { encoding: 'utf8' });
      await pollUntil(() => (existsSync(tee) ? readFileSync(tee, 'utf8') : ''), (t) => t.includes('\n'), 10_000 * TIME_SCALE);
      const sent = await send({ to: addrPort('127.0.0.1', port), count: 5000, netns: ns });
      const got = JSON.parse((await out).stdout) as { rcvbuf: number; inerrors: number; sink: number; n: number };
      const after = await kernelSnmp(ns);
      expect(got.n).toBe(5);
      expect(got.rcvbuf).toBe(after.Udp.RcvbufErrors - before.Udp.RcvbufErrors);
      expect(got.inerrors).toBe(after.Udp.InErrors - before.Udp.InErrors);
      expect(got.sink).toBe(udpSocketDrops(sink.inode, sink.pid)!.drops);
      expect(got.rcvbuf, JSON.stringify({ sent, got, udp: after.Udp, lines: readFileSync(tee, 'utf8').length })).toBeGreaterThan(4000);
      await sink.stop();
    });
  });

  it('text: a compact funnel with the dropping socket and its owner, zero rows hidden', async () => {
    await withNetns('stats-text', async (ns) => {
      const port = await freePort();
      const sink = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, comm: 'rxt-text-sink', netns: ns });
      // No -n: on a slow host (qemu TCG) the flood can outlast a fixed count of intervals. The
      // flood waits for the first interval, and stats runs two more after it, then SIGINT.
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'stats', '-i', '1', '--format', 'text'], { stdio: ['ignore', 'pipe', 'inherit'] });
      running.add(child);
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
      const done = new Promise((resolve) => child.on('close', resolve));
      const intervals = () => text.match(/^\S+ +interval /gm)?.length ?? 0;
      await pollUntil(intervals, (n) => n > 0, 20_000 * TIME_SCALE);
      await send({ to: addrPort('127.0.0.1', port), count: 20_000, netns: ns });
      const after = intervals() + 2;
      await pollUntil(intervals, (n) => n >= after, 10_000 * TIME_SCALE);
      child.kill('SIGINT');
      expect(await done).toBe(0);
      expect(text).toMatch(/losing packets at: socket/);
      // Other tests' sockets may drop more and come first; ours is one of the socket rows.
      expect(text).toMatch(new RegExp(`^(> socket| {11}) +udp 127\\.0\\.0\\.1:${port} +drops \\d+ .*rxt-text-sink\\[${sink.pid}\\]$`, 'm'));
      expect(text).toMatch(/^ +udp +Udp +(InDatagrams|NoPorts|InErrors)/m);
      // The sockets and snmp are read a moment apart. On a fast host the two reads agree; on a
      // slow one (qemu TCG) drops land in between, and the line gives the range RcvbufErrors
      // took while the sockets were read: the socket drops must lie inside it.
      const own = [...text.matchAll(/reconcile .*\(own\) +socket drops (\d+) vs RcvbufErrors (\d+) \+ MemErrors 0(?: \((\d+)\.\.(\d+) when the sockets were read\))?, (.*)$/gm)];
      expect(own.length, text).toBeGreaterThan(0);
      for (const [line, drops, rcvbuf, lo, hi, verdict] of own) {
        expect(verdict, line).toMatch(/^all explained\b/);
        if (lo === undefined) expect(Number(drops), line).toBe(Number(rcvbuf));
        else expect([Number(lo) <= Number(drops), Number(drops) <= Number(hi)], line).toEqual([true, true]);
      }
      expect(own.some(([, drops]) => Number(drops) > 0)).toBe(true);
      expect(text).not.toMatch(/UdpLite/);
      await sink.stop();
    });
  });

  it('exits 0 at once when the reader goes away (| head -1)', async () => {
    const t0 = Date.now();
    const { stdout } = await execFileP('bash', ['-o', 'pipefail', '-c', `${process.execPath} ${BIN} stats -i 0.2 --no-sockets | head -1`], { encoding: 'utf8' });
    expect(JSON.parse(stdout).delta).toBeDefined();
    expect(Date.now() - t0).toBeLessThan(10_000 * TIME_SCALE);
  });

  it('softnet backlog drops show up when forced (veth, RPS to another CPU, low netdev_max_backlog)', async (ctx) => {
    if (availableParallelism() < 2) {
      // RPS needs a second CPU; under CI a skip would hide that the case never ran.
      if (process.env.CI === 'true') throw new Error('CI=true but this machine has one CPU: softnet backlog drops need two');
      ctx.skip();
    }
    await withNetns('bl-tx', (tx) =>
      withNetns('bl-rx', async (rx) => {
        await ip('link', 'add', 'rxtbl0', 'netns', tx, 'type', 'veth', 'peer', 'name', 'rxtbl1', 'netns', rx);
        await ip('-n', tx, 'addr', 'add', '10.254.77.1/24', 'dev', 'rxtbl0');
        await ip('-n', rx, 'addr', 'add', '10.254.77.2/24', 'dev', 'rxtbl1');
        await ip('-n', tx, 'link', 'set', 'rxtbl0', 'up');
        await ip('-n', rx, 'link', 'set', 'rxtbl1', 'up');
        // Packets sent from CPU 0 are queued to CPU 1's backlog by RPS, and queue up faster
        // than the IPI gets CPU 1 to them; sent from the same CPU they would be drained one by one.
        await execFileP('ip', ['netns', 'exec', rx, 'sh', '-c', 'echo 2 > /sys/class/net/rxtbl1/queues/rx-0/rps_cpus']);
        const port = await freePort();
        const sink = await startSink({ bind: addrPort('10.254.77.2', port), rcvbuf: 8 << 20, drain: true, netns: rx });
        const original = await readSysctl('net/core/netdev_max_backlog');
        await withSysctl('net/core/netdev_max_backlog', '16', async () => {
          const run = stats(rx, '-i', '1');
          await run.firstLine;
          await execFileP('ip', ['netns', 'exec', tx, 'taskset', '-c', '0', rxfloodPath(), 'send', '--to', addrPort('10.254.77.2', port), '--duration', '1']);
          await stopAfterTwoMore(run);
          const { code, stderr } = await run.done;
          expect(code, stderr).toBe(0);
          const ivs = run.lines;
          const softDropped = sum(ivs, (iv) => iv.delta.softnet_stat.cpu['1']?.dropped);
          const vethDropped = sum(ivs, (iv) => iv.delta.statistics.rxtbl1?.rx_dropped);
          expect(softDropped).toBeGreaterThan(0);
          expect(sum(ivs, (iv) => iv.delta.softnet_stat.cpu['1']?.received_rps)).toBeGreaterThan(0);
          // Each backlog drop of rxtbl1 is in softnet dropped too (which also counts other devices).
          expect(vethDropped).toBeGreaterThan(0);
          expect(sum(ivs, (iv) => iv.delta.softnet_stat.total.dropped)).toBeGreaterThanOrEqual(vethDropped);
          expect(sum(ivs, (iv) => iv.delta.dev.rxtbl1?.rx_dropped)).toBe(vethDropped);
          const worst = ivs.reduce((a, b) => (b.delta.softnet_stat.total.dropped > a.delta.softnet_stat.total.dropped ? b : a));
          const layer = (name: string) => worst.funnel.find((l) => l.layer === name)!;
          expect(layer('softnet').drops).toBe(worst.delta.softnet_stat.total.dropped);
          // The sink drains an 8 MB buffer, so it should not drop; if it did, it may outdo the backlog.
          if (layer('socket').drops === 0) expect(worst.losing).toBe('softnet');
        });
        expect(await readSysctl('net/core/netdev_max_backlog')).toBe(original);
        await sink.stop();
      }),
    );
  });
});
