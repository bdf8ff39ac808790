#!/usr/bin/env node
// `npm run soak`: rxtrace at the peak drop rate for a minute, as a figure, not a timed test.
// For `rxtrace trace --port P > /dev/null` and for `rxtrace top` (full screen, in a private tmux
// server so it has a TTY): an rxflood sink that never reads (SO_RCVBUF minimum) and an
// rxflood sendmmsg flood at full speed for SOAK_SECONDS (60). Every second it samples the
// rxtrace process's RSS, threads and fds from /proc/PID/status and /proc/PID/fd. At the end it
// compares what rxtrace delivered plus what it reported lost with the kernel's `drops` count of
// the sink (from /proc/net/udp, before and after). Needs root, `npm run build`, build/Release/rxflood.
//
//   npm run soak                      # both, 60 s each
//   node scripts/soak.mjs trace 30    # one mode, 30 s
//
// Exit status 0 when, for every mode: the process lived through the flood and stopped cleanly,
// RSS at the end is within max(25 %, 32 MiB) of RSS 5 s into the flood, and (trace)
// delivered + lost equals the kernel's count.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'rxtrace.js');
const RXFLOOD = join(ROOT, 'build', 'Release', 'rxflood');
const modes = process.argv[2] && process.argv[2] !== 'both' ? [process.argv[2]] : ['trace', 'top'];
const SECONDS = Number(process.argv[3] ?? process.env.SOAK_SECONDS ?? 60);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = (kb) => (kb / 1024).toFixed(1);

function need(cond, why) {
  if (!cond) {
    console.error(`soak: ${why}`);
    process.exit(2);
  }
}
need(process.getuid?.() === 0, 'needs root (perf_event_open on tracepoints)');
need(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is missing: run `npm run build`');
need(existsSync(RXFLOOD), 'build/Release/rxflood is missing: run `npx node-gyp rebuild`');

/** The sink's row in /proc/net/udp: drops and rx_queue. */
function sinkRow(inode) {
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const t = line.trim().split(/\s+/);
    if (Number(t[9]) === inode) return { drops: Number(t[12]), rx_queue: parseInt(t[4].split(':')[1], 16) };
  }
  return undefined;
}

async function settledDrops(inode) {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    const d = sinkRow(inode)?.drops ?? last;
    if (d === last) return d;
    last = d;
    await sleep(100);
  }
  return last;
}

function procStatus(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), threads: kb('Threads'), fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return NaN;
  }
}

function startSink() {
  const child = spawn(RXFLOOD, ['sink', '--bind', '127.0.0.1:0', '--rcvbuf', '1', '--comm', 'rxt-soak-sink'], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /^READY (\d+) (\d+)$/m.exec(buf);
      if (m) resolve({ child, port: Number(m[1]), inode: Number(m[2]) });
    });
    child.once('exit', (c) => reject(new Error(`sink exited ${c}`)));
  });
}

function flood(port, seconds) {
  const child = spawn(RXFLOOD, ['send', '--to', `127.0.0.1:${port}`, '--duration', String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) => child.once('close', () => resolve(/^SENT (\d+) ([\d.]+) ([\d.]+)/m.exec(out))));
}

/** Sample every second until `done` resolves. */
async function sampleWhile(pid, done) {
  const samples = [];
  let finished = false;
  done.then(() => (finished = true));
  const t0 = Date.now();
  while (!finished) {
    const s = procStatus(pid);
    if (!s) break;
    samples.push({ t: (Date.now() - t0) / 1000, ...s, cpu: cpuSeconds(pid) });
    await sleep(1000);
  }
  return samples;
}

function rssVerdict(samples) {
  const at5 = samples.find((s) => s.t >= 5) ?? samples[0];
  const end = samples[samples.length - 1];
  const max = Math.max(...samples.map((s) => s.rssKb));
  const growth = end.rssKb - at5.rssKb;
  const flat = growth <= Math.max(at5.rssKb * 0.25, 32 * 1024);
  return { start: samples[0], at5, end, maxKb: max, growthKb: growth, flat };
}

function printSeries(samples) {
  const every = Math.max(1, Math.floor(samples.length / 12));
  const picked = samples.filter((_, i) => i % every === 0 || i === samples.length - 1);
  console.log(`  t(s)   RSS(MiB)  threads  fds  cpu(s)`);
  for (const s of picked) console.log(`  ${s.t.toFixed(0).padStart(4)}   ${MiB(s.rssKb).padStart(8)}  ${String(s.threads).padStart(7)}  ${String(s.fds).padStart(3)}  ${s.cpu.toFixed(1).padStart(6)}`);
}

async function soakTrace() {
  const sink = await startSink();
  const before = sinkRow(sink.inode).drops;
  const devnull = openSync('/dev/null', 'w');
  const rx = spawn(process.execPath, [CLI, 'trace', '--port', String(sink.port)], { stdio: ['ignore', devnull, 'pipe'] });
  let stderr = '';
  rx.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => rx.once('close', (code, signal) => resolve({ code, signal })));
  // Tracing has started once the process holds its perf fds.
  for (let i = 0; i < 300 && !perfFds(rx.pid); i++) await sleep(50);
  await sleep(500);
  const floodDone = flood(sink.port, SECONDS);
  const samples = await sampleWhile(rx.pid, Promise.race([floodDone, exited]));
  const sent = await floodDone;
  const after = await settledDrops(sink.inode);
  await sleep(1500); // the last batches reach the tracer
  rx.kill('SIGINT');
  const { code, signal } = await exited;
  sink.child.stdin.end();
  sink.child.kill('SIGTERM');
  const m = /^rxtrace: (\d+) events in ([\d.]+) s(?: \(([^)]*)\))?, (\d+) lost/m.exec(stderr);
  const perEvent = Object.fromEntries((m?.[3] ?? '').split(', ').filter(Boolean).map((p) => { const i = p.lastIndexOf(' '); return [p.slice(0, i), Number(p.slice(i + 1))]; }));
  const delivered = perEvent['udp:udp_fail_queue_rcv_skb'] ?? 0;
  const lost = Number(m?.[4] ?? NaN);
  const kernel = after - before;
  const rss = rssVerdict(samples);
  console.log(`\n== soak: rxtrace trace --port ${sink.port} > /dev/null, ${SECONDS} s flood`);
  console.log(`  sender: ${sent ? `${Number(sent[1]).toLocaleString('en')} datagrams in ${sent[2]} s (${Math.round(Number(sent[3])).toLocaleString('en')}/s)` : '?'}`);
  printSeries(samples);
  console.log(`  RSS: at flood start ${MiB(rss.start.rssKb)} MiB, at 5 s ${MiB(rss.at5.rssKb)} MiB, at the end ${MiB(rss.end.rssKb)} MiB, max ${MiB(rss.maxKb)} MiB → ${rss.flat ? 'flat' : 'GROWING'}`);
  console.log(`  rxtrace: exit ${code}${signal ? ` (signal ${signal})` : ''}; ${stderr.trim().split('\n').pop()}`);
  console.log(`  kernel drops of the sink: ${kernel.toLocaleString('en')}; rxtrace delivered ${delivered.toLocaleString('en')} + reported lost ${lost.toLocaleString('en')} = ${(delivered + lost).toLocaleString('en')} → ${delivered + lost === kernel ? 'equal' : `DIFFERS by ${(delivered + lost - kernel).toLocaleString('en')}`}`);
  console.log(`  cpu: ${samples.at(-1)?.cpu.toFixed(1)} s over ${samples.at(-1)?.t.toFixed(0)} s; ${((delivered + lost) / SECONDS).toFixed(0)} events/s offered, ${(delivered / SECONDS).toFixed(0)}/s delivered`);
  return code === 0 && !signal && rss.flat && delivered + lost === kernel && samples.length >= SECONDS - 2;
}

function perfFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]';
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

async function soakTop() {
  const tmux = (...a) => execFileSync('tmux', ['-L', `rxt-soak-${process.pid}`, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const sink = await startSink();
  const before = sinkRow(sink.inode).drops;
  const session = 'soak';
  tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '48', `exec ${process.execPath} ${CLI} top -i 1 2>/tmp/rxt-soak-top-${process.pid}.err`);
  const pid = Number(tmux('list-panes', '-t', session, '-F', '#{pane_pid}').trim());
  let ok = true;
  try {
    for (let i = 0; i < 300 && !perfFds(pid); i++) await sleep(50);
    await sleep(1500);
    const floodDone = flood(sink.port, SECONDS);
    let gone = false;
    const watch = (async () => {
      while (!gone && procStatus(pid)) await sleep(200);
    })();
    const samples = await sampleWhile(pid, Promise.race([floodDone, watch]));
    const sent = await floodDone;
    const after = await settledDrops(sink.inode);
    await sleep(2500); // two refreshes after the flood
    const screen = tmux('capture-pane', '-p', '-t', session);
    const alive = procStatus(pid) !== undefined;
    tmux('send-keys', '-t', session, 'q');
    for (let i = 0; i < 100 && procStatus(pid); i++) await sleep(100);
    gone = true;
    const stopped = procStatus(pid) === undefined;
    const rss = rssVerdict(samples);
    const row = screen.split('\n').find((l) => l.includes(`127.0.0.1:${sink.port}`)) ?? '(no row for the sink)';
    const lostMatch = /lost ([\d.]+k?|\d+)/.exec(screen);
    console.log(`\n== soak: rxtrace top -i 1 (TTY, tmux), ${SECONDS} s flood`);
    console.log(`  sender: ${sent ? `${Number(sent[1]).toLocaleString('en')} datagrams in ${sent[2]} s (${Math.round(Number(sent[3])).toLocaleString('en')}/s)` : '?'}`);
    printSeries(samples);
    console.log(`  RSS: at flood start ${MiB(rss.start.rssKb)} MiB, at 5 s ${MiB(rss.at5.rssKb)} MiB, at the end ${MiB(rss.end.rssKb)} MiB, max ${MiB(rss.maxKb)} MiB → ${rss.flat ? 'flat' : 'GROWING'}`);
    console.log(`  alive after the flood: ${alive}; quit with q: ${stopped ? 'exited' : 'STILL RUNNING'}`);
    console.log(`  kernel drops of the sink: ${(after - before).toLocaleString('en')}; top's row: ${row.trim()}`);
    console.log(`  top's lost (last interval): ${lostMatch?.[1] ?? '?'}`);
    console.log('  last screen:');
    for (const l of screen.trimEnd().split('\n').slice(0, 14)) console.log(`    | ${l}`);
    ok = alive && stopped && rss.flat && samples.length >= SECONDS - 2;
  } finally {
    try {
      tmux('kill-server');
    } catch {
      // already gone with its only session
    }
    sink.child.stdin.end();
    sink.child.kill('SIGTERM');
    try {
      const err = readFileSync(`/tmp/rxt-soak-top-${process.pid}.err`, 'utf8').trim();
      if (err) console.log(`  top's stderr: ${err.split('\n').join(' | ')}`);
      execFileSync('rm', ['-f', `/tmp/rxt-soak-top-${process.pid}.err`]);
    } catch {
      // nothing written
    }
  }
  return ok;
}

let allOk = true;
for (const mode of modes) {
  const ok = mode === 'trace' ? await soakTrace() : mode === 'top' ? await soakTop() : (console.error(`soak: unknown mode ${mode}`), false);
  console.log(`  → ${ok ? 'PASS' : 'FAIL'}`);
  allOk &&= ok;
}
process.exit(allOk ? 0 : 1);
