// Bench plumbing: child processes, /proc readings (CPU ticks, peak RSS, socket drops), and the
// readiness checks that tell when a tracer is really tracing. No measurement policy lives here:
// run.mjs decides what to run and how to compare it.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RXFLOOD = join(ROOT, 'build', 'Release', 'rxflood');
export const RXTRACE = join(ROOT, 'bin', 'rxtrace.js');
export const CLK_TCK = 100; // USER_HZ: /proc/PID/stat ticks; 100 on every Linux build that matters

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A child with its stdout lines and stderr text collected, and a promise of its exit.
 * opts.stdout: 'devnull' sends stdout to /dev/null through a real fd (as `> /dev/null` does);
 * opts.countLines: count stdout newlines without keeping the text (perf script's output).
 */
export function launch(cmd, args, opts = {}) {
  const devnull = opts.stdout === 'devnull' ? openSync('/dev/null', 'w') : undefined;
  const child = spawn(cmd, args, { stdio: [opts.stdin ?? 'pipe', devnull ?? 'pipe', 'pipe'], env: opts.env ?? process.env });
  if (devnull !== undefined) closeSync(devnull);
  const p = { child, pid: child.pid, cmd, lines: [], stdout: '', stderr: '', lineCount: 0, waiters: [], exitCode: undefined, signal: undefined };
  const wake = () => {
    for (const w of p.waiters.splice(0)) w();
  };
  if (opts.countLines) {
    child.stdout.on('data', (b) => {
      for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) p.lineCount++;
    });
  } else if (child.stdout) {
    const keepStdout = opts.keepStdout !== false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      if (keepStdout) p.stdout += d;
      for (const l of d.split('\n')) if (l) p.lines.push(l);
      wake();
    });
  }
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    p.stderr += d;
    wake();
  });
  p.exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      p.exitCode = code;
      p.signal = signal;
      wake();
      resolve(code);
    });
    child.on('error', (e) => {
      p.exitCode = -1;
      p.stderr += String(e);
      wake();
      resolve(-1);
    });
  });
  return p;
}

/** Wait until `pred()` holds, re-checking on output and every `pollMs`. */
export async function waitFor(p, pred, what, timeoutMs = 15000, pollMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (p && p.exitCode !== undefined) throw new Error(`${p.cmd} exited (${p.exitCode ?? p.signal}) before ${what}: ${p.stderr.trim().slice(-800)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${p ? `: ${p.stderr.trim().slice(-800)}` : ''}`);
    await new Promise((r) => {
      const t = setTimeout(r, pollMs);
      if (p) p.waiters.push(() => { clearTimeout(t); r(); });
    });
  }
}

/** utime+stime of a whole process (every thread), in seconds; undefined once it is gone. */
export function cpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** VmHWM (peak RSS) in MiB; undefined once the process is gone. */
export function peakRssMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Follows a process's CPU and peak RSS until it exits, sampling every `everyMs`: /proc/PID is
 * gone once the child is reaped, so the last sample before exit is what we keep.
 */
export function follow(pid, everyMs = 20) {
  const st = { pid, cpu0: cpuSeconds(pid) ?? 0, cpu: cpuSeconds(pid) ?? 0, rss: peakRssMiB(pid) ?? 0, threads: new Set() };
  const tick = () => {
    const c = cpuSeconds(pid);
    if (c !== undefined) st.cpu = c;
    const r = peakRssMiB(pid);
    if (r !== undefined) st.rss = Math.max(st.rss, r);
  };
  const timer = setInterval(tick, everyMs);
  st.mark = () => { tick(); st.cpu0 = st.cpu; };
  st.stop = () => { tick(); clearInterval(timer); };
  st.used = () => st.cpu - st.cpu0;
  return st;
}

/** Number of perf_event fds a process holds (a tracer is set up once it has one per CPU). */
export function perfFdCount(pid) {
  let n = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]') n++;
      } catch { /* closed meanwhile */ }
    }
  } catch { /* gone */ }
  return n;
}

/** Thread names of a process (rxtrace's reader thread is "rxtrace-reader"). */
export function threadNames(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).map((t) => {
      try {
        return readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    });
  } catch {
    return [];
  }
}

/** The `drops` column of one socket in /proc/net/udp (the kernel's own per-socket count). */
export function socketDrops(inode) {
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    const lines = readFileSync(table, 'utf8').split('\n');
    for (let i = 1; i < lines.length; i++) {
      const t = lines[i].trim().split(/\s+/);
      if (t.length >= 13 && t[9] === String(inode)) return Number(t[t.length - 1]);
    }
  }
  return undefined;
}

/** Udp: RcvbufErrors from /proc/net/snmp (system-wide: other traffic adds to it). */
export function snmpRcvbufErrors() {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0].split(/\s+/);
  const vals = lines[1].split(/\s+/);
  return Number(vals[names.indexOf('RcvbufErrors')]);
}

/** utime+stime of every process now, by pid (to estimate the CPU other people used meanwhile). */
export function allCpu() {
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const c = cpuSeconds(d);
    if (c !== undefined) out.set(Number(d), c);
  }
  return out;
}

/** Busy and total CPU seconds of the whole machine, from /proc/stat. */
export function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

/** An unread UDP socket with a 1-byte receive buffer (the kernel rounds it up), on loopback. */
export async function startSink() {
  const p = launch(RXFLOOD, ['sink', '--bind', '127.0.0.1:0', '--rcvbuf', '1']);
  const line = await waitFor(p, () => p.lines.find((l) => l.startsWith('READY')), 'the sink');
  const [, port, inode] = line.split(' ');
  return { proc: p, port: Number(port), inode: Number(inode), stop: async () => { p.child.stdin.end(); await p.exited; } };
}

/** The sendmmsg flood: { sent, seconds, rate } from its `SENT` line. */
export async function send(port, seconds, size) {
  const args = ['send', '--to', `127.0.0.1:${port}`, '--duration', String(seconds)];
  if (size) args.push('--size', String(size));
  const p = launch(RXFLOOD, args, { stdin: 'ignore' });
  await p.exited;
  const line = p.lines.find((l) => l.startsWith('SENT'));
  if (!line) throw new Error(`rxflood send failed: ${p.stderr}`);
  const [, sent, secs] = line.split(' ');
  return { sent: Number(sent), seconds: Number(secs), pid: p.pid };
}

export function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const f = join(dir || '.', cmd);
    if (existsSync(f)) return f;
  }
  return undefined;
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
