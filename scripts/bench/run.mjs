// `npm run bench`: rxtrace against perf and bpftrace on the same drop storm, side by side in one
// run. A C sendmmsg flood (build/Release/rxflood) fills an unread 1-byte-rcvbuf UDP socket on
// loopback; every mode gets a fresh socket, and the modes alternate (forward, then backward) over
// the rounds so that drift in the machine's load cancels out. The kernel's own count is the
// socket's `drops` column in /proc/net/udp.
//
// Environment: BENCH_SECONDS (sender seconds per run, default 10; BENCH_QUICK=1: 3),
// BENCH_ROUNDS (default 2), BENCH_MODES (comma list of mode keys), BENCH_SIZE (datagram bytes),
// BENCH_DECODE_SECONDS (per decode case, default 2), BENCH_OUT (JSON path),
// BENCH_DOC (1: rewrite docs/bench.md, 0: never; default: only on a full-length run).
import { execFileSync, spawnSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus as osCpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  allCpu, follow, launch, machineCpu, median, perfFdCount, ROOT, RXFLOOD, RXTRACE, send, sleep, snmpRcvbufErrors,
  socketDrops, startSink, threadNames, waitFor, which,
} from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const SECONDS = Number(process.env.BENCH_SECONDS ?? (QUICK ? 3 : 10));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const SIZE = process.env.BENCH_SIZE ? Number(process.env.BENCH_SIZE) : undefined;
const DECODE_SECONDS = Number(process.env.BENCH_DECODE_SECONDS ?? (QUICK ? 1 : 2));
const EVENT = 'udp:udp_fail_queue_rcv_skb';
const NCPU = osCpus().length;
const PERF = which('perf');
const BPFTRACE = which('bpftrace');

const MODES = [
  { key: 'untraced', label: 'untraced' },
  { key: 'floor', label: 'perf stat -a (counting: the floor)', needs: PERF },
  { key: 'ndjson', label: 'rxtrace trace --no-resolve > /dev/null' },
  { key: 'inproc', label: 'library in-process, counting' },
  { key: 'resolve', label: 'rxtrace trace (attribution) > /dev/null' },
  { key: 'inresolve', label: 'library in-process, attribution on, counting' },
  { key: 'perf', label: 'perf record -a + perf script', needs: PERF },
  { key: 'bpftrace', label: 'bpftrace count()', needs: BPFTRACE },
  { key: 'top', label: 'rxtrace top --mode events > /dev/null (all drops)', needs: hasTop() },
  { key: 'serve', label: 'rxtrace serve --port P (counting, the default)', needs: hasMode('serve') },
  { key: 'serveevents', label: 'rxtrace serve --port P --mode events', needs: hasMode('serve') },
];

/** `rxtrace CMD --mode` exists in this tree (counting mode is newer than the bench). */
function hasMode(cmd) {
  try {
    return execFileSync(process.execPath, [RXTRACE, cmd, '--help'], { encoding: 'utf8' }).includes('--mode');
  } catch {
    return false;
  }
}

/** GET /metrics of a serve process. */
function scrape(port) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/**
 * What serve exported for the storm: the sum of rxtrace_drops_total for the event, after two
 * scrapes more than the snapshot age (1 s) apart (a new series shows 0 at its first scrape).
 */
async function serveDelivered(p) {
  await scrape(p.metricsPort);
  await sleep(1200);
  const body = await scrape(p.metricsPort);
  let n = 0;
  for (const m of body.matchAll(/^rxtrace_drops_total\{event="([^"]*)"[^}]*\} (\S+)$/gm)) if (m[1] === EVENT) n += Number(m[2]);
  const lost = [...body.matchAll(/^rxtrace_lost_events_total\{[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  return { delivered: n, lostReported: lost };
}

/** `rxtrace top` exists in this tree (it is newer than the bench). */
function hasTop() {
  try {
    execFileSync(process.execPath, [RXTRACE, 'top', '--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function log(s) {
  process.stderr.write(`${s}\n`);
}

// ---- prerequisites -------------------------------------------------------------------------

function prerequisites() {
  if (process.getuid?.() !== 0) {
    log('bench: needs root (perf_event_open on tracepoints system-wide, SO_RCVBUFFORCE)');
    process.exit(77);
  }
  if (!existsSync(RXFLOOD) || !existsSync(join(ROOT, 'build', 'Release', 'rxtrace.node'))) {
    log('bench: building the addon and rxflood (node-gyp rebuild)');
    execFileSync('npx', ['node-gyp', 'rebuild'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  }
}

function machine() {
  const sh = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const mhz = /cpu MHz\s*:\s*([\d.]+)/.exec(cpuinfo)?.[1];
  return {
    kernel: sh('uname', ['-srvm']),
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown',
    cpuMHz: mhz ? Number(mhz) : undefined,
    cpus: NCPU,
    memGiB: Math.round((Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]) / 1048576) * 10) / 10,
    node: process.version,
    perf: PERF ? sh(PERF, ['--version']) : undefined,
    bpftrace: BPFTRACE ? sh(BPFTRACE, ['--version']) : undefined,
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

// ---- one run of one mode -------------------------------------------------------------------

/** Start the tracer of `mode` on `port`; resolves once it is tracing. */
async function startTracer(mode, port, tmp) {
  const filter = `dport == ${port}`;
  switch (mode) {
    case 'untraced':
      return undefined;
    case 'floor': {
      const p = launch(PERF, ['stat', '-a', '-e', EVENT, '--filter', filter, '-x', ','], { stdin: 'ignore' });
      await waitFor(p, () => perfFdCount(p.pid) >= NCPU, 'perf stat to open its events');
      return p;
    }
    case 'ndjson':
    case 'resolve': {
      const args = [RXTRACE, 'trace', '--port', String(port), '--format', 'ndjson'];
      if (mode === 'ndjson') args.push('--no-resolve');
      // stdout goes to /dev/null through a real fd, as `> /dev/null` would.
      const p = launch(process.execPath, args, { stdin: 'ignore', stdout: 'devnull' });
      await waitFor(p, () => threadNames(p.pid).includes('rxtrace-reader'), 'rxtrace to start tracing');
      return p;
    }
    case 'inproc':
    case 'inresolve': {
      const args = [join(ROOT, 'scripts', 'bench', 'inproc.mjs'), String(port)];
      if (mode === 'inresolve') args.push('--resolve');
      const p = launch(process.execPath, args, { stdin: 'ignore' });
      await waitFor(p, () => p.lines.includes('READY'), 'the in-process tracer');
      return p;
    }
    case 'perf': {
      const file = join(tmp, `perf-${port}.data`);
      const p = launch(PERF, ['record', '-a', '-e', EVENT, '--filter', filter, '-o', file], { stdin: 'ignore' });
      p.file = file;
      await waitFor(p, () => perfFdCount(p.pid) >= NCPU, 'perf record to open its events');
      return p;
    }
    case 'serve':
    case 'serveevents': {
      const args = [RXTRACE, 'serve', '--listen', '127.0.0.1:0', '--port', String(port)];
      if (mode === 'serveevents') args.push('--mode', 'events');
      const p = launch(process.execPath, args, { stdin: 'ignore' });
      await waitFor(p, () => /serving http:\/\/127\.0\.0\.1:\d+/.test(p.stderr), 'rxtrace serve to start');
      p.metricsPort = Number(/serving http:\/\/127\.0\.0\.1:(\d+)/.exec(p.stderr)[1]);
      await scrape(p.metricsPort); // as Prometheus would, before the storm
      return p;
    }
    case 'top': {
      // top has no port filter: it traces every drop on the machine, ours included.
      const p = launch(process.execPath, [RXTRACE, 'top', '--mode', 'events', '-i', '1'], { stdin: 'ignore', stdout: 'devnull' });
      await waitFor(p, () => threadNames(p.pid).includes('rxtrace-reader'), 'rxtrace top to start tracing');
      return p;
    }
    case 'bpftrace': {
      const prog = `tracepoint:udp:udp_fail_queue_rcv_skb /args->dport == ${port}/ { @drops = count(); }`;
      const p = launch(BPFTRACE, ['-e', prog], { stdin: 'ignore' });
      await waitFor(p, () => /Attaching/.test(p.stdout), 'bpftrace to attach', 60000);
      return p;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

/** perf script over the recording: counts its lines (one per sample) and follows its CPU/RSS. */
async function perfScript(file) {
  const t0 = performance.now();
  const p = launch(PERF, ['script', '-i', file], { stdin: 'ignore', keepStdout: false, countLines: true });
  const st = follow(p.pid);
  await p.exited;
  st.stop();
  return {
    events: p.lineCount,
    wallSec: (performance.now() - t0) / 1000,
    cpuSec: st.used(),
    peakRssMB: st.rss,
    lostChunks: Number(/lost (\d+) chunks/.exec(p.stderr)?.[1] ?? 0),
  };
}

/** What the tracer says it delivered and lost, from its own output. */
function tracerCounts(mode, p) {
  switch (mode) {
    case 'floor': {
      const line = p.stderr.split('\n').find((l) => l.includes(EVENT));
      return { delivered: line ? Number(line.split(',')[0]) : undefined };
    }
    case 'ndjson':
    case 'resolve': {
      const m = new RegExp(`${EVENT} (\\d+)`).exec(p.stderr);
      const zero = /rxtrace: 0 events/.test(p.stderr);
      const lost = /(\d+) lost/.exec(p.stderr);
      return { delivered: m ? Number(m[1]) : zero ? 0 : undefined, lostReported: lost ? Number(lost[1]) : undefined, summary: p.stderr.trim().split('\n').pop() };
    }
    case 'inproc':
    case 'inresolve': {
      const line = p.lines.find((l) => l.startsWith('{'));
      if (!line) return {};
      const r = JSON.parse(line);
      return { delivered: r.drops, lostReported: r.lost, stalls: r.native?.stalls, unmatched: r.unmatched };
    }
    case 'bpftrace': {
      const m = /@drops: (\d+)/.exec(p.stdout);
      return { delivered: m ? Number(m[1]) : 0 };
    }
    case 'perf': {
      const m = /\((\d+) samples\)/.exec(p.stderr);
      return { recorded: m ? Number(m[1]) : undefined, lostChunksAtRecord: Number(/lost (\d+) chunks/.exec(p.stderr)?.[1] ?? 0) };
    }
    default:
      return {};
  }
}

/** Processes other than ours that hold perf_event fds right now (pid → comm). */
function otherPerfProcesses(ours) {
  const out = [];
  for (const pid of allCpu().keys()) {
    if (ours.has(pid)) continue;
    if (perfFdCount(pid) > 0) {
      let comm = '';
      try {
        comm = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 80);
      } catch { /* gone */ }
      out.push(`${pid} ${comm}`);
    }
  }
  return out;
}

/** CPU seconds used meanwhile by processes that are not ours (other people's tests: noise). */
function otherCpu(before, after, ours) {
  let s = 0;
  for (const [pid, c1] of after) {
    if (ours.has(pid)) continue;
    const c0 = before.get(pid);
    if (c0 !== undefined) s += c1 - c0;
  }
  return s;
}

async function runOne(mode, round, tmp) {
  const sink = await startSink();
  let tracer;
  try {
    const drops0 = socketDrops(sink.inode) ?? 0;
    const snmp0 = snmpRcvbufErrors();
    tracer = await startTracer(mode, sink.port, tmp);
    if (tracer) await sleep(300); // let it settle after setup (JIT, first reads)
    const st = tracer ? follow(tracer.pid) : undefined;
    st?.mark();
    const ours = new Set([process.pid, sink.proc.pid, tracer?.pid]);
    // Other processes holding perf events (other people's tracers) add cost to every drop.
    const otherPerf = otherPerfProcesses(ours);
    const others0 = allCpu();
    const m0 = machineCpu();
    const s = await send(sink.port, SECONDS, SIZE);
    const m1 = machineCpu();
    const others1 = allCpu();
    const kernel = (socketDrops(sink.inode) ?? NaN) - drops0;
    const snmp = snmpRcvbufErrors() - snmp0;
    const r = {
      mode, round, port: sink.port, sent: s.sent, senderSec: s.seconds, kernel, snmpRcvbufErrors: snmp,
      dropsPerSec: kernel / s.seconds, sentPerSec: s.sent / s.seconds,
      machineBusySec: m1.busy - m0.busy, otherCpuSec: otherCpu(others0, others1, ours),
      otherPerfProcesses: otherPerf,
    };
    if (tracer) {
      const served = mode === 'serve' || mode === 'serveevents' ? await serveDelivered(tracer) : undefined;
      // What is still in the rings or queues is delivered on the way out (close drains).
      tracer.child.kill('SIGINT');
      const timeout = setTimeout(() => tracer.child.kill('SIGKILL'), 120000);
      await tracer.exited;
      clearTimeout(timeout);
      st.stop();
      Object.assign(r, tracerCounts(mode, tracer), served, { tracerCpuSec: st.used(), peakRssMB: st.rss * 1.048576 });
      if (mode === 'perf') {
        const ps = await perfScript(tracer.file);
        rmSync(tracer.file, { force: true });
        r.delivered = ps.events;
        r.perfScript = ps;
        r.recordCpuSec = r.tracerCpuSec;
        r.tracerCpuSec = r.recordCpuSec + ps.cpuSec;
        r.peakRssMB = Math.max(r.peakRssMB, ps.peakRssMB * 1.048576);
      }
      r.coreShare = r.tracerCpuSec / s.seconds;
      if (r.delivered !== undefined) {
        r.missing = kernel - r.delivered;
        r.cpuSecPerMEvents = r.delivered > 0 ? r.tracerCpuSec / (r.delivered / 1e6) : undefined;
      }
      if (tracer.exitCode !== 0 && ['ndjson', 'resolve', 'inproc', 'inresolve', 'top', 'serve', 'serveevents'].includes(mode)) r.exit = tracer.exitCode ?? tracer.signal;
    }
    return r;
  } finally {
    if (tracer && tracer.exitCode === undefined) {
      tracer.child.kill('SIGKILL');
      await tracer.exited;
    }
    await sink.stop();
  }
}

// ---- the decode micro-benchmark ------------------------------------------------------------

function decodeBench() {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bench', 'decode.mjs'), String(DECODE_SECONDS)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) return { error: (r.stderr || r.stdout || `exit ${r.status}`).trim().slice(-2000) };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// ---- summary -------------------------------------------------------------------------------

function summarize(runs, modes) {
  const by = {};
  for (const m of modes) {
    const rs = runs.filter((r) => r.mode === m.key && !r.error);
    if (rs.length === 0) continue;
    const med = (f) => median(rs.map(f));
    by[m.key] = {
      label: m.label,
      runs: rs.length,
      dropsPerSec: med((r) => r.dropsPerSec),
      kernel: med((r) => r.kernel),
      delivered: med((r) => r.delivered),
      deliveredRatio: med((r) => (r.delivered !== undefined ? r.delivered / r.kernel : undefined)),
      allDelivered: rs.every((r) => r.delivered === r.kernel),
      lostReported: med((r) => r.lostReported),
      maxLostReported: rs.some((r) => r.lostReported !== undefined) ? Math.max(...rs.map((r) => r.lostReported ?? 0)) : undefined,
      missing: med((r) => r.missing),
      maxMissing: rs.some((r) => r.missing !== undefined) ? Math.max(...rs.map((r) => r.missing ?? 0)) : undefined,
      tracerCpuSec: med((r) => r.tracerCpuSec),
      cpuSecPerMEvents: med((r) => r.cpuSecPerMEvents),
      coreShare: med((r) => r.coreShare),
      peakRssMB: rs.some((r) => r.peakRssMB !== undefined) ? Math.max(...rs.map((r) => r.peakRssMB ?? 0)) : undefined,
      otherCpuSec: med((r) => r.otherCpuSec),
      perfScript: rs[0].perfScript
        ? {
          eventsPerWallSec: med((r) => r.perfScript.events / r.perfScript.wallSec),
          eventsPerCpuSec: med((r) => r.perfScript.events / r.perfScript.cpuSec),
          cpuSec: med((r) => r.perfScript.cpuSec),
          lostChunks: med((r) => r.perfScript.lostChunks),
        }
        : undefined,
    };
  }
  const ratio = (a, b) => (a !== undefined && b ? a / b : undefined);
  const base = by.untraced?.dropsPerSec;
  const floor = by.floor?.dropsPerSec;
  const perf = by.perf?.dropsPerSec;
  for (const k of Object.keys(by)) {
    const s = by[k];
    s.vsUntraced = ratio(s.dropsPerSec, base);
    s.vsFloor = ratio(s.dropsPerSec, floor);
    s.vsPerf = ratio(s.dropsPerSec, perf);
    // Events a consumer gets through per CPU-second: its capacity, whatever the sender's rate.
    s.eventsPerCpuSec = s.cpuSecPerMEvents ? 1e6 / s.cpuSecPerMEvents : undefined;
  }
  return by;
}

function targets(by, dec) {
  const t = [];
  const nd = by.ndjson;
  const fmt = (x, d = 2) => (x === undefined ? 'n/a' : x.toFixed(d));
  if (nd) {
    t.push({
      target: '0 lost events streaming NDJSON at the peak rate, delivered = kernel count',
      met: nd.allDelivered && (nd.maxLostReported ?? 0) === 0,
      measured: `delivered/kernel ${fmt(nd.deliveredRatio * 100, 3)} % (median of ${nd.runs} runs), worst run: ${nd.maxMissing} missing, ${nd.maxLostReported ?? 'n/a'} reported lost; at ${fmt(nd.dropsPerSec / 1e6, 3)} M drops/s`,
    });
    if (nd.vsFloor !== undefined) {
      t.push({ target: 'sender slowed ≤ 15 % against the counting floor while rxtrace streams', met: 1 - nd.vsFloor <= 0.15, measured: `slowed ${fmt((1 - nd.vsFloor) * 100, 1)} %` });
    }
    const ps = by.perf?.perfScript;
    if (ps && nd.eventsPerCpuSec) {
      const r = nd.eventsPerCpuSec / ps.eventsPerCpuSec;
      t.push({
        target: 'end-to-end NDJSON ≥ 2× perf script on the same events',
        met: r >= 2,
        measured: `rxtrace ${fmt(nd.eventsPerCpuSec / 1e6)} M events per CPU-s vs perf script ${fmt(ps.eventsPerCpuSec / 1e6)} M per CPU-s (${fmt(ps.eventsPerWallSec / 1e6)} M/s wall): ${fmt(r)}×`,
      });
    }
  }
  const d = dec?.results?.[0];
  if (d) t.push({ target: 'decoder ≥ 10 M events/s in-process', met: d.eventsPerSec >= 10e6, measured: `${fmt(d.eventsPerSec / 1e6)} M events/s (${d.case})` });
  if (nd && by.resolve?.eventsPerCpuSec && nd.eventsPerCpuSec) {
    const r = by.resolve.eventsPerCpuSec / nd.eventsPerCpuSec;
    const dr = by.resolve.delivered / by.resolve.kernel;
    // Two measures: the CLI pair (NDJSON lines twice as long with the socket in them) and the
    // library pair (counting in-process: attribution alone). The library pair decides.
    const lib = by.inresolve?.eventsPerCpuSec && by.inproc?.eventsPerCpuSec ? by.inresolve.eventsPerCpuSec / by.inproc.eventsPerCpuSec : undefined;
    const paceCli = by.resolve.dropsPerSec / nd.dropsPerSec;
    t.push({
      target: 'attribution on costs ≤ 10 % of the event rate',
      met: (lib ?? r) >= 0.9 && by.resolve.allDelivered && (by.inresolve?.allDelivered ?? true),
      measured:
        (lib !== undefined ? `library: events per CPU-s with attribution ${fmt(lib * 100, 1)} % of without; ` : '') +
        `CLI (NDJSON with the socket): ${fmt(r * 100, 1)} % of without; sender pace with attribution ${fmt(paceCli * 100, 1)} % of without; delivered ${fmt(dr * 100, 3)} % of the kernel's count`,
    });
  }
  const rssModes = ['ndjson', 'inproc', 'resolve', 'inresolve', 'top'].filter((k) => by[k]?.peakRssMB !== undefined);
  if (rssModes.length) {
    const worst = Math.max(...rssModes.map((k) => by[k].peakRssMB));
    t.push({
      target: 'peak RSS < 150 MB',
      met: worst < 150,
      measured: rssModes.map((k) => `${k} ${fmt(by[k].peakRssMB, 0)} MB`).join(', ') + ' (worst run of each)',
    });
  }
  t.push(
    by.top
      ? { target: 'top at peak rate ≤ 10 % of one core', met: by.top.coreShare <= 0.1, measured: `${fmt(by.top.coreShare * 100, 1)} % of one core at ${fmt(by.top.dropsPerSec / 1e6, 3)} M drops/s (library counting in-process: ${fmt((by.inproc?.coreShare ?? NaN) * 100, 1)} %)` }
      : {
        target: 'top at peak rate ≤ 10 % of one core',
        met: undefined,
        measured: by.inproc ? `no \`rxtrace top\` here; the library counting in-process used ${fmt(by.inproc.coreShare * 100, 1)} % of one core` : 'not measured',
      },
  );
  return t;
}

// ---- rendering -----------------------------------------------------------------------------

const n = (x, d = 2) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const pct = (x, d = 1) => (x === undefined ? '–' : `${(x * 100).toFixed(d)} %`);

function table(by) {
  const head = ['mode', 'drops/s (M)', 'vs untraced', 'vs floor', 'vs perf', 'delivered/kernel', 'lost', 'missing', 'CPU s', 'CPU s/M ev', 'M ev/CPU-s', 'peak RSS MB'];
  const rows = Object.entries(by).map(([, s]) => [
    s.label,
    n(s.dropsPerSec / 1e6, 3),
    n(s.vsUntraced),
    n(s.vsFloor),
    n(s.vsPerf),
    s.deliveredRatio === undefined ? '–' : pct(s.deliveredRatio, 3),
    s.lostReported === undefined ? '–' : String(Math.round(s.lostReported)),
    s.missing === undefined ? '–' : String(Math.round(s.missing)),
    n(s.tracerCpuSec),
    n(s.cpuSecPerMEvents, 3),
    n(s.eventsPerCpuSec === undefined ? undefined : s.eventsPerCpuSec / 1e6),
    n(s.peakRssMB, 0),
  ]);
  const md = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const txt = [head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
  return { md: md.join('\n'), txt: txt.join('\n') };
}

function decodeTable(dec) {
  if (!dec || dec.error) return `decode micro-benchmark failed: ${dec?.error ?? 'not run'}`;
  const lines = [
    `Recorded ${dec.recordedEvents} events in ${dec.recordedBatches} batches (${(dec.recordedBytes / 1e6).toFixed(1)} MB) from this kernel, replayed. M events per CPU-second of the benchmark process (median and best window), and per wall second:`,
    '',
    '| case | M events/CPU-s | best | M events/s wall |',
    '|---|---:|---:|---:|',
  ];
  const m = (x) => (x === undefined ? '–' : (x / 1e6).toFixed(2));
  for (const r of dec.results) lines.push(`| ${r.case} | ${m(r.eventsPerSec)} | ${m(r.bestEventsPerSec)} | ${m(r.eventsPerWallSec)} |`);
  return lines.join('\n');
}

function runsTable(runs) {
  const lines = ['| round | mode | drops/s (M) | kernel | delivered | lost | CPU s | peak RSS MB | others\' CPU s |', '|---:|---|---:|---:|---:|---:|---:|---:|---:|'];
  for (const r of runs) {
    if (r.error) {
      lines.push(`| ${r.round + 1} | ${r.mode} | failed: ${r.error.split('\n')[0].replace(/\|/g, '/')} | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${r.round + 1} | ${r.mode} | ${n(r.dropsPerSec / 1e6, 3)} | ${r.kernel} | ${r.delivered ?? '–'} | ${r.lostReported ?? '–'} | ${n(r.tracerCpuSec)} | ${n(r.peakRssMB, 0)} | ${n(r.otherCpuSec, 1)} |`,
    );
  }
  return lines.join('\n');
}

function otherTracers(runs) {
  const seen = new Set(runs.flatMap((r) => r.otherPerfProcesses ?? []).map((s) => s.replace(/^\d+ /, '')));
  return seen.size ? `Other processes held perf events during some runs (each adds its own cost to every drop): ${[...seen].map((s) => `\`${s}\``).join(', ')}.` : 'No other process held perf events during the runs.';
}

function report(res) {
  const { md, txt } = table(res.summary);
  const perf = res.summary.perf?.perfScript;
  const tg = res.targets.map((t) => `| ${t.target} | ${t.met === undefined ? 'n/a' : t.met ? 'met' : '**missed**'} | ${t.measured} |`);
  const m = res.machine;
  const doc = [
    `Run ${res.startedAt} on ${m.kernel}; ${m.cpus} × ${m.cpuModel}${m.cpuMHz ? ` (${m.cpuMHz} MHz)` : ''}, ${m.memGiB} GiB; Node ${m.node}; ${m.perf ?? 'no perf'}; ${m.bpftrace ?? 'bpftrace not installed'}.`,
    `${res.config.rounds} rounds × ${res.config.seconds} s per mode, alternating; medians of the rounds. Load average at start ${m.loadavgAtStart.join(' ')}.`,
    '',
    md,
    '',
    perf ? `perf script decoded ${n(perf.eventsPerWallSec / 1e6)} M events/s (wall), ${n(perf.eventsPerCpuSec / 1e6)} M events per CPU-second; lost chunks reported: ${perf.lostChunks}.` : '',
    `Other processes used a median of ${n(median(res.runs.filter((r) => !r.error).map((r) => r.otherCpuSec)), 1)} CPU-s per ${res.config.seconds} s run (noise from concurrent work on this machine).`,
    '',
    '| target | status | measured |',
    '|---|---|---|',
    ...tg,
    '',
    '### Decoder micro-benchmark',
    '',
    decodeTable(res.decode),
    '',
    '### Every run',
    '',
    runsTable(res.runs),
    '',
    otherTracers(res.runs),
  ].join('\n');
  return { txt, doc };
}

const LEGEND = `Columns: drops/s = the socket's kernel drop count / sender seconds (the sender's pace under each
tracer); vs untraced / vs floor / vs perf = that rate against untraced, perf stat counting, and
perf record; delivered/kernel = events the tracer delivered / the socket's drops column; lost =
losses the tracer itself reported; missing = kernel − delivered; CPU s = the tracer's CPU from the
sender's start to its own exit (perf: record + script); M ev/CPU-s = events per CPU-second.`;

function writeDoc(res, body) {
  const file = join(ROOT, 'docs', 'bench.md');
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  const begin = '<!-- bench:begin (written by npm run bench) -->';
  const end = '<!-- bench:end -->';
  const block = `${begin}\n${body}\n${end}`;
  let text;
  if (existsSync(file)) {
    const old = readFileSync(file, 'utf8');
    const a = old.indexOf(begin);
    const b = old.indexOf(end);
    text = a >= 0 && b > a ? old.slice(0, a) + block + old.slice(b + end.length) : `${old.trimEnd()}\n\n${block}\n`;
  } else {
    text = `# rxtrace benchmark\n\n\`npm run bench\` (as root). ${LEGEND.replace(/\n/g, ' ')}\n\n## Latest results\n\n${block}\n`;
  }
  writeFileSync(file, text);
  return file;
}

// ---- main ----------------------------------------------------------------------------------

async function main() {
  // Scale mode (issue 11): many idle sockets, attribution beside ss. See scale.mjs.
  if (process.env.BENCH_SCALE === '1') {
    const { runScale } = await import('./scale.mjs');
    await runScale();
    return;
  }
  prerequisites();
  const only = process.env.BENCH_MODES?.split(',').map((s) => s.trim()).filter(Boolean);
  const modes = MODES.filter((m) => (!only || only.includes(m.key)) && (m.needs === undefined || m.needs));
  const skipped = MODES.filter((m) => m.needs === undefined ? false : !m.needs).map((m) => m.key);
  const res = {
    startedAt: new Date().toISOString(),
    machine: machine(),
    config: { seconds: SECONDS, rounds: ROUNDS, size: SIZE ?? 16, modes: modes.map((m) => m.key), skipped },
    runs: [],
  };
  if (skipped.length) log(`bench: skipping ${skipped.join(', ')} (${skipped.includes('bpftrace') ? 'bpftrace not installed' : 'perf missing'})`);
  const tmp = mkdtempSync(join(tmpdir(), 'rxtrace-bench-'));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? modes : [...modes].reverse();
      for (const m of order) {
        let r;
        try {
          r = await runOne(m.key, round, tmp);
        } catch (e) {
          // One mode failing (a tool that broke, a timeout) must not lose the others' results.
          log(`round ${round + 1} ${m.key.padEnd(9)} FAILED: ${String(e.message ?? e).split('\n')[0]}`);
          res.runs.push({ mode: m.key, round, error: String(e.message ?? e) });
          continue;
        }
        res.runs.push(r);
        log(
          `round ${round + 1} ${m.key.padEnd(9)} ${n(r.dropsPerSec / 1e6, 3)} M drops/s` +
            (r.delivered !== undefined ? `  delivered ${r.delivered}/${r.kernel}` : `  kernel ${r.kernel}`) +
            (r.lostReported ? `  lost ${r.lostReported}` : '') +
            (r.tracerCpuSec !== undefined ? `  cpu ${n(r.tracerCpuSec)} s  rss ${n(r.peakRssMB, 0)} MB` : '') +
            `  others ${n(r.otherCpuSec, 1)} cpu-s` +
            (r.otherPerfProcesses.length ? `  other tracers ${r.otherPerfProcesses.length}` : '') +
            (r.exit !== undefined ? `  EXIT ${r.exit}` : ''),
        );
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log('decode micro-benchmark…');
  res.decode = decodeBench();
  res.summary = summarize(res.runs, modes);
  res.targets = targets(res.summary, res.decode);
  const { txt, doc } = report(res);

  process.stdout.write(`\n${txt}\n\n`);
  for (const t of res.targets) process.stdout.write(`${t.met === undefined ? 'n/a   ' : t.met ? 'MET   ' : 'MISSED'}  ${t.target}: ${t.measured}\n`);
  process.stdout.write(`\n${decodeTable(res.decode)}\n\n${LEGEND}\n`);

  const out = process.env.BENCH_OUT ?? join(ROOT, 'bench-results', `bench-${res.startedAt.replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true }); // BENCH_OUT may point elsewhere
  writeFileSync(out, JSON.stringify(res, null, 2));
  writeFileSync(join(ROOT, 'bench-results', 'latest.json'), JSON.stringify(res, null, 2));
  process.stdout.write(`\nresults: ${out}\n`);
  const docMode = process.env.BENCH_DOC;
  if (docMode === '1' || (docMode !== '0' && !QUICK && !process.env.BENCH_SECONDS && !process.env.BENCH_MODES)) {
    process.stdout.write(`table: ${writeDoc(res, doc)}\n`);
  }
}

main().catch((e) => {
  log(`bench: ${e.stack ?? e}`);
  process.exit(1);
});
