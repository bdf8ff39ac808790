// `BENCH_SCALE=1 npm run bench` (or `npm run bench:scale`): rxtrace with many idle UDP sockets on
// the host (issue 11). For 0, 10,000 and 100,000 idle sockets (and 100,000 spread over 50 netns)
// it runs `rxtrace trace --port P --duration D` while one slow socket on P takes a storm of
// 20,000 datagrams in 10 bursts, and reports rxtrace's CPU, peak RSS, start-up (spawn → perf fds
// open), how late --duration ended, and how many drops came out on the right socket with its
// owner, against the kernel's own count (ss, which uses sock_diag). `ss -uamn 'sport = :P'`,
// `ss -uamnp`, `rxtrace sockets --no-owners` and `rxtrace sockets` are timed side by side.
// Idle sockets live in python3 helpers, 15,000 each (the hard ulimit -n may be 20,000).
// Environment: BENCH_SCALE_COUNTS (default "0,10000,100000"), BENCH_SCALE_NETNS (default 1: add
// the 50-netns case), BENCH_SCALE_OUT (JSON path), BENCH_DOC (0: do not rewrite docs/bench-scale.md).
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { follow, launch, perfFdCount, ROOT, RXFLOOD, RXTRACE, sleep, waitFor } from './lib.mjs';

const COUNTS = (process.env.BENCH_SCALE_COUNTS ?? '0,10000,100000').split(',').map(Number);
const WITH_NETNS = process.env.BENCH_SCALE_NETNS !== '0';
const NCPU = cpus().length;
const DURATION = 14;
const BURSTS = 10;
const PER_BURST = 2000;
const log = (s) => process.stderr.write(`${s}\n`);

const HOLDER = `
import socket, sys, resource
n = int(sys.argv[1]); h = int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
keep = []
for i in range(n):
    # one loopback address per 20,000 sockets: the ephemeral range (~28k ports) is per address
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.%d.%d.%d' % (1 + h // 250, 1 + h % 250, 2 + i // 20000), 0)); keep.append(s)
print('READY', len(keep), flush=True)
sys.stdin.read()
`;

async function holdIdle(total, netns = []) {
  const procs = [];
  const groups = netns.length ? netns.map((ns) => ({ ns, n: Math.round(total / netns.length) })) : [];
  if (!netns.length) for (let left = total; left > 0; left -= 15000) groups.push({ n: Math.min(15000, left) });
  for (const [h, g] of groups.entries()) {
    // Each holder its own loopback addresses: the ephemeral range (~28k ports) is per address.
    const argv = ['python3', '-c', HOLDER, String(g.n), String(h)];
    procs.push(g.ns ? launch('ip', ['netns', 'exec', g.ns, ...argv]) : launch(argv[0], argv.slice(1)));
  }
  for (const p of procs) await waitFor(p, () => p.lines.some((l) => l.startsWith('READY')), 'idle sockets', 120_000);
  return async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
  };
}

function timed(cmd, args) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { s: (performance.now() - t0) / 1000, out: r.stdout, status: r.status };
}

/** The kernel's drops for the socket on 127.0.0.1:port, through ss (sock_diag: cheap at any scale). */
function kernelDrops(port) {
  const out = execFileSync('ss', ['-uamnH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /,d(\d+)\)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

async function runCase(label, idle, netnsCount) {
  const names = Array.from({ length: netnsCount }, (_, i) => `rxbench-${process.pid}-${i}`);
  for (const ns of names) execFileSync('ip', ['netns', 'add', ns]);
  let release;
  try {
    const t0 = performance.now();
    release = idle > 0 ? await holdIdle(idle, names) : async () => {};
    log(`scale ${label}: ${idle} idle sockets held in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const sink = launch(RXFLOOD, ['sink', '--bind', '127.0.0.1:0', '--rcvbuf', '1', '--comm', 'rxb-slow']);
    const ready = await waitFor(sink, () => sink.lines.find((l) => l.startsWith('READY')), 'the sink');
    const [, port, inode] = ready.split(' ').map(Number);
    const before = kernelDrops(port) ?? 0;
    const spawnAt = performance.now();
    const tr = launch(process.execPath, [RXTRACE, 'trace', '--port', String(port), '--duration', String(DURATION), '--format', 'ndjson']);
    const st = follow(tr.pid);
    await waitFor(tr, () => perfFdCount(tr.pid) >= NCPU, 'rxtrace to open its perf events', 120_000, 5);
    const startup = (performance.now() - spawnAt) / 1000;
    await sleep(300); // perf fds are open a moment before the events are enabled
    for (let b = 0; b < BURSTS; b++) {
      const s = launch(RXFLOOD, ['send', '--to', `127.0.0.1:${port}`, '-n', String(PER_BURST)], { stdin: 'ignore' });
      await s.exited;
      if (s.exitCode !== 0) throw new Error(`rxflood send failed: ${s.stderr}`);
      await sleep(500);
    }
    await tr.exited;
    const wall = (performance.now() - spawnAt) / 1000;
    st.stop();
    const drops = (kernelDrops(port) ?? NaN) - before;
    let right = 0;
    let events = 0;
    // Whole lines from the whole stdout (lib's launch() splits per chunk, which can cut a line).
    for (const l of tr.stdout.split('\n')) {
      let e;
      try {
        e = JSON.parse(l);
      } catch {
        continue;
      }
      if (e.event !== 'udp:udp_fail_queue_rcv_skb') continue;
      events++;
      if (e.match === 'address' && e.socket?.inode === inode && e.socket.owners.some((o) => o.pid === sink.pid)) right++;
    }
    const ssFiltered = timed('ss', ['-uamn', `sport = :${port}`]);
    const ssAll = timed('ss', ['-uamnp']);
    const rxNoOwners = timed(process.execPath, [RXTRACE, 'sockets', '--no-owners', '--table', 'udp', '--format', 'ndjson']);
    const rxOwners = timed(process.execPath, [RXTRACE, 'sockets', '--table', 'udp', '--format', 'ndjson']);
    // What polling costs on this host: 10 refreshes 1 s apart (CPU of the whole process).
    const topRun = await polled(['top', '-i', '1', '-n', '10']);
    const statsRun = await polled(['stats', '-i', '1', '-n', '10', '--format', 'ndjson']);
    sink.child.stdin.end();
    await sink.exited;
    const r = {
      topCpuS: topRun.cpuS, topWallS: topRun.wallS, statsCpuS: statsRun.cpuS, statsWallS: statsRun.wallS,
      label, idle, netns: netnsCount, drops, events, right, cpuS: st.used(), rssMiB: st.rss, startupS: startup, overrunS: wall - DURATION - startup,
      ssFilteredS: ssFiltered.s, ssAllPS: ssAll.s, rxSocketsNoOwnersS: rxNoOwners.s, rxSocketsS: rxOwners.s, summary: tr.stderr.trim().split('\n').pop(),
    };
    log(`scale ${label}: ${JSON.stringify(r)}`);
    return r;
  } finally {
    await release?.();
    for (const ns of names) spawnSync('ip', ['netns', 'del', ns]);
  }
}

/** rxtrace `args` to its end: its CPU seconds (all threads) and wall time. */
async function polled(args) {
  const p = launch(process.execPath, [RXTRACE, ...args], { stdin: 'ignore', stdout: 'devnull' });
  const st = follow(p.pid);
  const t0 = performance.now();
  await p.exited;
  st.stop();
  if (p.exitCode !== 0) throw new Error(`rxtrace ${args.join(' ')} failed: ${p.stderr}`);
  return { cpuS: st.used(), wallS: (performance.now() - t0) / 1000 };
}

const f = (x, d = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '?');

export async function runScale() {
  if (process.getuid?.() !== 0) throw new Error('bench scale: needs root');
  const cases = COUNTS.map((c) => ({ label: `${c}`, idle: c, netns: 0 }));
  if (WITH_NETNS) cases.push({ label: `${Math.max(...COUNTS)} in 50 netns`, idle: Math.max(...COUNTS), netns: 50 });
  const res = [];
  for (const c of cases) res.push(await runCase(c.label, c.idle, c.netns));
  const head = '| idle UDP sockets | drops right / kernel | rxtrace CPU s | peak RSS MiB | start-up s | --duration overrun s | `ss -uamn sport=P` s | `ss -uamnp` s | `rxtrace sockets --no-owners` s | `rxtrace sockets` s | `top -i 1 -n 10` CPU s / wall s | `stats -i 1 -n 10` CPU s / wall s |';
  const rows = res.map((r) => `| ${r.label} | ${r.right} / ${r.drops} | ${f(r.cpuS)} | ${f(r.rssMiB, 0)} | ${f(r.startupS)} | ${f(r.overrunS)} | ${f(r.ssFilteredS, 3)} | ${f(r.ssAllPS)} | ${f(r.rxSocketsNoOwnersS)} | ${f(r.rxSocketsS)} | ${f(r.topCpuS)} / ${f(r.topWallS, 1)} | ${f(r.statsCpuS)} / ${f(r.statsWallS, 1)} |`);
  const table = [head, '|--:|--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|', ...rows].join('\n');
  process.stdout.write(`${table}\n`);
  if (process.env.BENCH_SCALE_OUT) writeFileSync(process.env.BENCH_SCALE_OUT, JSON.stringify(res, null, 2));
  if (process.env.BENCH_DOC !== '0') {
    const doc = `# Bench: attribution at scale (issue 11)\n\nGenerated by \`BENCH_SCALE=1 npm run bench\` on ${new Date().toISOString().slice(0, 10)} (${NCPU} CPUs, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}).\n\`rxtrace trace --port P --duration ${DURATION}\`; one socket on P (1-byte rcvbuf) takes ${BURSTS * PER_BURST} datagrams in ${BURSTS} bursts; "right" = match \`address\` on that socket's inode with its owner's pid. Start-up = spawn → perf events open; overrun = wall time − start-up − --duration.\n\n${table}\n`;
    writeFileSync(join(ROOT, 'docs', 'bench-scale.md'), doc);
  }
  return res;
}

if (import.meta.url === `file://${process.argv[1]}`) await runScale();
