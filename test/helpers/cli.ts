// Drive the built CLI (bin/rxtrace.js → dist/) from live tests: one-shot runs (runCli), shell
// pipelines (runShell), and long-running traces (startCli) that a test reads while they run and
// stops with a signal. Every child started here is tracked; stopAllCli() ends what a failed test
// left behind (SIGKILL to the child only, by its own pid).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How much slower than real hardware this machine runs: scripts/kernels sets 4 under qemu TCG,
 * where node alone takes seconds to start. Scales the waits for start-up, never a count.
 */
export const TIME_SCALE = Math.max(1, Number(process.env.RXTRACE_TEST_TIME_SCALE ?? 1) || 1);

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'bin', 'rxtrace.js');

/** Throws with the fix when dist/ has not been built (the CLI runs the compiled JS). */
export function assertBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error(`dist/cli/main.js is missing: run \`npm run build\` in ${ROOT} before the CLI tests`);
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** wall time from spawn to exit */
  ms: number;
  /** true when the timeout killed it */
  timedOut: boolean;
}

export interface RunOptions {
  /** kill (SIGKILL) after this long; default 60 s */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** run the command under this prefix, e.g. ['setpriv', '--reuid=65534', …] */
  prefix?: string[];
  /**
   * The rxtrace command itself, instead of this node running bin/rxtrace.js: an installed
   * package's bin/rxtrace or the single executable (test/ship).
   */
  command?: string[];
  cwd?: string;
}

const children = new Set<ChildProcess>();

/** End every CLI child this module started that is still running (afterEach). */
export async function stopAllCli(): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('close', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
}

function spawnTracked(cmd: string, args: string[], opts: RunOptions): ChildProcess {
  const child = spawn(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('close', () => children.delete(child));
  return child;
}

function collect(child: ChildProcess, started: number, timeoutMs: number): Promise<CliResult> {
  timeoutMs *= TIME_SCALE; // a kill timer against hangs: slower machines get longer
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    });
  });
}

/** `node bin/rxtrace.js ARGS…` to completion. */
export function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const started = Date.now();
  const argv = [...(opts.command ?? [process.execPath, CLI]), ...args];
  const [cmd, ...rest] = opts.prefix ? [...opts.prefix, ...argv] : argv;
  return collect(spawnTracked(cmd, rest, opts), started, opts.timeoutMs ?? 60_000);
}

/** `bash -c SCRIPT` to completion (for pipelines such as `rxtrace trace | head -1`). */
export function runShell(script: string, opts: RunOptions = {}): Promise<CliResult> {
  const started = Date.now();
  return collect(spawnTracked('bash', ['-c', script], opts), started, opts.timeoutMs ?? 60_000);
}

/** A shell-quoted command line running the CLI with this node, for runShell. */
export function cliCommand(args: string[]): string {
  return [process.execPath, CLI, ...args].map(shellQuote).join(' ');
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface RunningCli {
  child: ChildProcess;
  pid: number;
  /** complete stdout lines so far */
  lines: string[];
  /** stdout bytes so far (including an unfinished line) */
  stdoutBytes: number;
  stderr(): string;
  /** resolves when the process has exited, with everything it wrote */
  exited: Promise<CliResult>;
  /** perf_event fds the process holds now (0 once gone) */
  perfFds(): number;
  /** resolve once the process holds at least `n` perf_event fds, then `settleMs` more */
  waitForPerfFds(n: number, timeoutMs?: number, settleMs?: number): Promise<void>;
  /** resolve once stdout has at least `n` lines */
  waitForLines(n: number, timeoutMs?: number): Promise<void>;
  /** resolve once stderr matches `re` (a readiness line such as explain's "watching for") */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  signal(sig: NodeJS.Signals): void;
}

/** Start `node bin/rxtrace.js ARGS…` and keep it running; read it while it runs. */
export function startCli(args: string[], opts: RunOptions = {}): RunningCli {
  const started = Date.now();
  const [cmd, ...rest] = [...(opts.command ?? [process.execPath, CLI]), ...args];
  const child = spawnTracked(cmd, rest, opts);
  const lines: string[] = [];
  let partial = '';
  let stdout = '';
  let stderr = '';
  let bytes = 0;
  let exitedFlag = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    bytes += Buffer.byteLength(d);
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), (opts.timeoutMs ?? 120_000) * TIME_SCALE);
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      exitedFlag = true;
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut: false });
    });
  });
  const pid = child.pid ?? -1;
  const perfFds = (): number => {
    let n = 0;
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]') n++;
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      return 0;
    }
    return n;
  };
  const waitFor = async (ok: () => boolean, timeoutMs: number, what: string): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (exitedFlag) throw new Error(`rxtrace exited before ${what}: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    child,
    pid,
    lines,
    get stdoutBytes() {
      return bytes;
    },
    stderr: () => stderr,
    exited,
    perfFds,
    async waitForPerfFds(n, timeoutMs = 20_000 * TIME_SCALE, settleMs = 500) {
      await waitFor(() => perfFds() >= n, timeoutMs, `${n} perf_event fds`);
      // The fds exist from the session's constructor; start() enables them a moment later.
      await new Promise((r) => setTimeout(r, settleMs));
    },
    waitForLines(n, timeoutMs = 20_000 * TIME_SCALE) {
      return waitFor(() => lines.length >= n, timeoutMs, `${n} stdout lines`);
    },
    waitForStderr(re, timeoutMs = 20_000 * TIME_SCALE) {
      return waitFor(() => re.test(stderr), timeoutMs, `stderr matching ${re}`);
    },
    signal(sig) {
      child.kill(sig);
    },
  };
}

/** Online CPUs (the tracer opens one perf fd per event per CPU). */
export function onlineCpuCount(): number {
  let n = 0;
  for (const part of readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    n += (hi ?? lo) - lo + 1;
  }
  return n;
}
