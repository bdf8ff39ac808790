// Shared by the fault-matrix tests (test/live/faults-*.test.ts, docs/faults.md): the checks
// every fault case ends with (one clear stderr line, a documented exit code, no stack trace),
// leak probes (fds, perf events, reader threads, tracefs mounts), fixture tracefs trees built
// from this kernel's own files, and runners for a private mount namespace or reduced privileges.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { CLI, cliCommand, runShell, shellQuote, TIME_SCALE, type CliResult, type RunOptions } from '../helpers/cli.js';

export { CLI, cliCommand, shellQuote };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The summary `rxtrace trace` prints on stderr when it stops. */
export const SUMMARY = /^rxtrace: (\d+) events in [\d.]+ s.*?, (\d+) lost/m;

/**
 * The end of every failing fault case: the documented exit code, nothing on stdout, no stack
 * trace, and exactly one stderr line, `rxtrace: …`. Returns that line. `notices` allows that
 * many `rxtrace:` lines before it (a notice such as "this kernel lacks …").
 */
export function expectCleanError(r: CliResult, code: number, opts: { notices?: number; stdout?: boolean } = {}): string {
  const where = `stderr: ${JSON.stringify(r.stderr)}`;
  expect(r.timedOut, `timed out; ${where}`).toBe(false);
  expect(r.signal, `killed by a signal; ${where}`).toBeNull();
  expect(r.code, `exit code; ${where}`).toBe(code);
  if (!opts.stdout) expect(r.stdout, 'stdout').toBe('');
  expect(r.stderr, 'no stack trace').not.toMatch(/^\s+at .+\(?.*:\d+:\d+\)?$/m);
  expect(r.stderr, 'no internal error').not.toMatch(/internal error|Error: |node:internal/);
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  const notices = opts.notices ?? 0;
  expect(lines.length, `${notices + 1} stderr line(s); ${where}`).toBeLessThanOrEqual(notices + 1);
  expect(lines.length, `an error line; ${where}`).toBeGreaterThanOrEqual(1);
  for (const l of lines) expect(l, 'every stderr line starts with "rxtrace: "').toMatch(/^rxtrace: \S/);
  return lines[lines.length - 1];
}

/** A clean stop: exit 0, no stack trace, every stderr line `rxtrace: …`. */
export function expectCleanExit(r: CliResult): void {
  const where = `stderr: ${JSON.stringify(r.stderr)}`;
  expect(r.timedOut, `timed out; ${where}`).toBe(false);
  expect(r.signal, `killed by a signal; ${where}`).toBeNull();
  expect(r.code, `exit code; ${where}`).toBe(0);
  expect(r.stderr, 'no stack trace').not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(r.stderr, 'no internal error').not.toMatch(/internal error|node:internal/);
  for (const l of r.stderr.split('\n').filter(Boolean)) expect(l, 'every stderr line starts with "rxtrace: "').toMatch(/^rxtrace: /);
}

// ---- leak probes (this process) ----

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

function fdLinks(pid: number | 'self'): string[] {
  const out: string[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // the fd of readdir itself, closed by now
    }
  }
  return out;
}

export function perfFdCount(pid: number | 'self' = 'self'): number {
  return fdLinks(pid).filter((l) => l === 'anon_inode:[perf_event]').length;
}

/** Threads named by the addon's reader (prctl PR_SET_NAME "rxtrace-reader"). */
export function readerThreads(pid: number | 'self' = 'self'): number {
  let n = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const t of tasks) {
    try {
      if (readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim() === 'rxtrace-reader') n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

export function threadCount(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

/** tracefs lines of this mount namespace's /proc/mounts. */
export function tracefsMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[2] === 'tracefs');
}

export interface Snapshot {
  fds: number;
  perf: number;
  readers: number;
  mounts: string[];
}

export function snapshot(): Snapshot {
  return { fds: fdCount(), perf: perfFdCount(), readers: readerThreads(), mounts: tracefsMounts() };
}

/** Poll until this process is back at `before` (fds close a moment after a worker exits). */
export async function expectNoLeak(before: Snapshot, label: string, timeoutMs = 3000 * TIME_SCALE): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let now = snapshot();
  while (Date.now() < deadline && (now.fds !== before.fds || now.perf !== before.perf || now.readers !== before.readers)) {
    await sleep(50);
    now = snapshot();
  }
  expect(now.perf, `${label}: perf_event fds`).toBe(before.perf);
  expect(now.readers, `${label}: rxtrace-reader threads`).toBe(before.readers);
  expect(now.fds, `${label}: fds in /proc/self/fd`).toBe(before.fds);
  expect(now.mounts, `${label}: tracefs mounts`).toEqual(before.mounts);
}

// ---- a private mount namespace, reduced privileges ----

/**
 * Run `script` (bash) in a new, private mount namespace: mounts and unmounts inside never reach
 * the host. `$RX` in the script is the CLI command line. Ends with `RXEXIT <code>` on stdout,
 * which the caller reads with rxExit().
 */
export function inMountNs(script: string, opts: RunOptions = {}): Promise<CliResult> {
  const body = `RX=${shellQuote(cliCommand([]))}\n${script}`;
  return runShell(`exec unshare --mount --propagation private bash -c ${shellQuote(body)}`, opts);
}

/** The code of the `echo RXEXIT $?` line a mount-namespace script printed. */
export function rxExit(stdout: string): number | undefined {
  const m = /^RXEXIT (\d+)$/m.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** Why uid 65534 cannot run the CLI here (it must read bin/, dist/, node_modules/), or undefined. */
export function nobodyCannotRun(): string | undefined {
  try {
    execFileSync(NOBODY[0], [...NOBODY.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(CLI)}, 4)`], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `uid 65534 cannot read ${CLI}: ${(e as { stderr?: Buffer }).stderr?.toString().trim()}`;
  }
}

/** Root, minus these capabilities (bounding set, so every exec keeps them out): `capsh … -- -c CMD`. */
export function withoutCaps(...caps: string[]): string[] {
  return ['capsh', `--drop=${caps.map((c) => `cap_${c}`).join(',')}`, '--'];
}

/** The CLI as root minus `caps`, with `redirections` (e.g. `> /dev/null`), to completion. */
export function runWithoutCaps(caps: string[], args: string[], redirections = '', opts: RunOptions = {}): Promise<CliResult> {
  return runShell(`${withoutCaps(...caps).map(shellQuote).join(' ')} -c ${shellQuote(`exec ${cliCommand(args)} ${redirections}`)}`, { timeoutMs: 60_000, ...opts });
}

// ---- fixture tracefs trees, from this kernel's own files ----

export const DEFAULT_EVENTS = ['udp/udp_fail_queue_rcv_skb', 'sock/sock_rcvqueue_full', 'sock/sock_exceed_buf_limit'];
export const ALL_FIXTURE_EVENTS = [...DEFAULT_EVENTS, 'skb/kfree_skb'];

/**
 * A temp dir with events/<sys>/<name>/{id,format} copied from this kernel's tracefs (ids must be
 * the real ones: perf_event_open takes them). tracefs is read in a private mount namespace,
 * mounted there if the host has it unmounted, so the host's mount table never changes.
 */
export function liveTracefsCopy(events: string[] = ALL_FIXTURE_EVENTS): string {
  const dir = mkdtempSync(join(tmpdir(), 'rxt-tracefs-'));
  const copies = events.map((e) => `mkdir -p ${shellQuote(`${dir}/events/${e}`)} && cp "$T/events/${e}/id" "$T/events/${e}/format" ${shellQuote(`${dir}/events/${e}/`)}`);
  const script = [
    'set -e',
    'T=/sys/kernel/tracing',
    '[ -d "$T/events" ] || mount -t tracefs nodev "$T"',
    ...copies,
  ].join('\n');
  execFileSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], { stdio: 'pipe' });
  return dir;
}

export function removeTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A steady, gentle stream of datagrams from this process: drops keep coming while a CLI starts. */
export function drizzle(host: string, port: number, perTick = 50, everyMs = 10): { stop(): Promise<number> } {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const payload = Buffer.alloc(16, 0x61);
  let sent = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) sock.send(payload, port, host, () => undefined);
    sent += perTick;
  }, everyMs);
  return {
    stop: () =>
      new Promise((resolve) => {
        clearInterval(timer);
        sock.close(() => resolve(sent));
      }),
  };
}

// ---- a CLI started through bash (for redirections), whose pid is the CLI's own ----

export interface ShellCli {
  pid: number;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<CliResult>;
  /** Resolves once the CLI holds at least n perf_event fds (tracing has started), then settleMs more. */
  waitForPerfFds(n: number, timeoutMs?: number, settleMs?: number): Promise<void>;
  signal(sig: NodeJS.Signals): void;
}

/**
 * Readiness before a signal: resolve once the CLI has printed at least `n` complete stdout lines;
 * throw after `timeoutMs` (or when it exits first), saying how many it printed.
 */
export async function waitForStdoutLines(cli: ShellCli, n: number, timeoutMs = 20_000 * TIME_SCALE): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const count = (): number => cli.stdout().split('\n').length - 1;
  while (count() < n) {
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) throw new Error(`rxtrace exited after ${count()} of ${n} stdout lines: ${cli.stderr().trim()}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms with ${count()} of ${n} stdout lines; stderr: ${cli.stderr().trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const shellChildren = new Set<ChildProcess>();

/**
 * `bash -c "exec <cli ARGS> REDIRECTIONS"`: the exec makes child.pid the CLI's pid, so its fds
 * can be watched. `prefix` runs before the CLI (e.g. `ulimit -l 64;`).
 */
export function startShellCli(
  args: string[],
  redirections: string,
  opts: { prefix?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; dropCaps?: string[] } = {},
): ShellCli {
  const started = Date.now();
  const cli = `exec ${cliCommand(args)} ${redirections}`;
  // capsh execs bash, which execs the CLI: the pid stays the same all along.
  const script = `${opts.prefix ?? ''} ${opts.dropCaps ? `exec ${withoutCaps(...opts.dropCaps).map(shellQuote).join(' ')} -c ${shellQuote(cli)}` : cli}`;
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  shellChildren.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, (opts.timeoutMs ?? 120_000) * TIME_SCALE); // slower machines get longer, as in helpers/cli.ts
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      shellChildren.delete(child);
      resolve({ code, signal, stdout: out, stderr: err, ms: Date.now() - started, timedOut });
    });
  });
  const pid = child.pid ?? -1;
  return {
    pid,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForPerfFds(n, timeoutMs = 30_000 * TIME_SCALE, settleMs = 300) {
      const deadline = Date.now() + timeoutMs;
      while (perfFdCount(pid) < n) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the CLI exited before tracing: ${err.trim()}`);
        if (Date.now() > deadline) throw new Error(`no ${n} perf fds within ${timeoutMs} ms; stderr: ${err.trim()}`);
        await sleep(20);
      }
      await sleep(settleMs);
    },
    signal(sig) {
      child.kill(sig);
    },
  };
}

/** SIGKILL whatever startShellCli started and a failed test left running. */
export async function stopAllShellCli(): Promise<void> {
  await Promise.all(
    [...shellChildren].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('close', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
  shellChildren.clear();
}
