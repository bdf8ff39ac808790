// Drivers for scripts/rxflood.c, the drop generator of the live tests. Every process started here
// is tracked: stop() ends it, stopAllRxflood() ends whatever a failed test left behind, and a
// sink also exits by itself when its stdin pipe closes (the test process went away).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** build/Release/rxflood; throws with the fix when it has not been built. */
export function rxfloodPath(): string {
  const p = join(ROOT, 'build', 'Release', 'rxflood');
  if (!existsSync(p)) {
    throw new Error(
      `rxflood is not built (${p} is missing): run \`npm install\` (node-gyp builds it), ` +
        'or `npx node-gyp configure && make -C build rxflood`',
    );
  }
  return p;
}

/** "127.0.0.1:5000", "[::1]:5000" */
export function addrPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface SendResult {
  sent: number;
  seconds: number;
  rate: number;
  /** datagrams the kernel refused (ECONNREFUSED/ENOBUFS), from the `SENDERR n` line */
  errors: number;
}

interface Proc {
  child: ChildProcess;
  pid: number;
  lines: string[];
  waiters: Array<() => void>;
  stderr: string;
  exited: Promise<number | null>;
  exitCode: number | null | undefined; // undefined while running
}

const live = new Set<Proc>();

/** pids of rxflood processes started by this module that are still running */
export function runningRxflood(): number[] {
  return [...live].map((p) => p.pid);
}

/** End every rxflood process this module started and that is still running (for afterAll). */
export async function stopAllRxflood(): Promise<void> {
  await Promise.all([...live].map((p) => stopProc(p)));
}

function launch(args: string[], netns?: string): Proc {
  const bin = rxfloodPath();
  // `ip netns exec` execs the command without forking, so child.pid is rxflood's own pid
  const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, bin, ...args]] : [bin, args];
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  const proc: Proc = {
    child,
    pid: child.pid ?? -1,
    lines: [],
    waiters: [],
    stderr: '',
    exitCode: undefined,
    exited: undefined as unknown as Promise<number | null>,
  };
  const wake = () => proc.waiters.splice(0).forEach((w) => w());
  proc.exited = new Promise((resolve) => {
    child.on('error', (err) => {
      proc.stderr += `spawn ${cmd}: ${err.message}\n`;
      proc.exitCode = null;
      live.delete(proc);
      wake();
      resolve(null);
    });
    child.on('close', (code) => {
      proc.exitCode = code; // null when a signal ended it
      live.delete(proc);
      wake();
      resolve(proc.exitCode);
    });
  });
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    proc.lines.push(...parts);
    wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (proc.stderr += d));
  child.stdin!.on('error', () => {}); // EPIPE after the child exited
  if (child.pid !== undefined) live.add(proc);
  return proc;
}

/** Next stdout line starting with `prefix` (earlier lines are discarded). */
async function nextLine(proc: Proc, prefix: string, timeoutMs: number, what: string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    while (proc.lines.length) {
      const l = proc.lines.shift()!;
      if (l.startsWith(prefix)) return l;
    }
    if (proc.exitCode !== undefined) {
      throw new Error(
        `rxflood ${what}: exited (code ${proc.exitCode}) before printing ${prefix}: ${proc.stderr.trim()}`,
      );
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      await stopProc(proc);
      throw new Error(`rxflood ${what}: no ${prefix} line within ${timeoutMs} ms: ${proc.stderr.trim()}`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      proc.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

async function stopProc(proc: Proc, timeoutMs = 5000): Promise<void> {
  if (proc.exitCode !== undefined) return;
  proc.child.stdin?.end();
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  await proc.exited;
  clearTimeout(timer);
}

function parseSent(line: string, stderr: string): SendResult {
  const [, sent, seconds, rate] = line.split(/\s+/);
  const m = /SENDERR (\d+)/.exec(stderr);
  return { sent: Number(sent), seconds: Number(seconds), rate: Number(rate), errors: m ? Number(m[1]) : 0 };
}

function parseReady(line: string): { port: number; inode: number } {
  const [, port, inode] = line.split(/\s+/);
  return { port: Number(port), inode: Number(inode) };
}

// ---- UDP ----

export interface SinkOptions {
  /** "127.0.0.1:0", "[::1]:5000", "[::]:0", "0.0.0.0:5000"; port 0 = the kernel picks */
  bind: string;
  /** SO_RCVBUF (SO_RCVBUFFORCE as root); 1 = the kernel minimum. Default: the system default. */
  rcvbuf?: number;
  reuseaddr?: boolean;
  reuseport?: boolean;
  v6only?: boolean;
  /** multicast group to join: "239.1.1.1" or "239.1.1.1@IFADDR" (default interface 127.0.0.1) */
  join?: string;
  /** read as fast as possible instead of never reading */
  drain?: boolean;
  /** process name (/proc/PID/comm, at most 15 bytes) */
  comm?: string;
  /** run inside this network namespace (`ip netns exec`) */
  netns?: string;
  readyTimeoutMs?: number;
}

export interface Sink {
  pid: number;
  port: number;
  inode: number;
  netns?: string;
  stop(): Promise<void>;
}

export async function startSink(opts: SinkOptions): Promise<Sink> {
  const args = ['sink', '--bind', opts.bind];
  if (opts.rcvbuf !== undefined) args.push('--rcvbuf', String(opts.rcvbuf));
  if (opts.reuseaddr) args.push('--reuseaddr');
  if (opts.reuseport) args.push('--reuseport');
  if (opts.v6only !== undefined) args.push('--v6only', opts.v6only ? '1' : '0');
  if (opts.join) args.push('--join', opts.join);
  if (opts.drain) args.push('--drain');
  if (opts.comm) args.push('--comm', opts.comm);
  const proc = launch(args, opts.netns);
  const { port, inode } = parseReady(await nextLine(proc, 'READY ', opts.readyTimeoutMs ?? 10_000, 'sink'));
  return { pid: proc.pid, port, inode, netns: opts.netns, stop: () => stopProc(proc) };
}

export interface SendOptions {
  /** "127.0.0.1:5000", "[::1]:5000", "239.1.1.1:5000" (use addrPort()) */
  to: string;
  /** datagrams to send; with durationS, whichever ends first */
  count?: number;
  durationS?: number;
  /** payload bytes, default 16 */
  size?: number;
  /** multicast: IPv4 interface address (default 127.0.0.1) or IPv6 interface name (default lo) */
  mcastIf?: string;
  /** source address to bind, "ADDR" or "ADDR:PORT" */
  from?: string;
  netns?: string;
  timeoutMs?: number;
}

/** Flood `to` with sendmmsg (batches of 64) and resolve with what was sent. */
export async function send(opts: SendOptions): Promise<SendResult> {
  if (opts.count === undefined && opts.durationS === undefined) throw new Error('send: give count or durationS');
  const args = ['send', '--to', opts.to];
  if (opts.count !== undefined) args.push('-n', String(opts.count));
  if (opts.durationS !== undefined) args.push('--duration', String(opts.durationS));
  if (opts.size !== undefined) args.push('--size', String(opts.size));
  if (opts.mcastIf) args.push('--mcast-if', opts.mcastIf);
  if (opts.from) args.push('--from', opts.from);
  return runSender(args, opts.netns, opts.timeoutMs ?? 60_000 + (opts.durationS ?? 0) * 1000, 'send');
}

async function runSender(args: string[], netns: string | undefined, timeoutMs: number, what: string) {
  const proc = launch(args, netns);
  const line = await nextLine(proc, 'SENT ', timeoutMs, what);
  const code = await proc.exited;
  if (code !== 0) throw new Error(`rxflood ${what}: exit code ${code}: ${proc.stderr.trim()}`);
  return parseSent(line, proc.stderr);
}

// ---- ICMP ping sockets ----
// An unread ping socket drops echo replies addressed to its ident. Two ways to aim them at it,
// both tested on 6.18 (drops = count - 3, one sock:sock_rcvqueue_full per drop):
//  - the sink sends echo requests itself (PingSink.sendEchoes, or `send` at start): the kernel
//    answers them, and the replies come back to the sink's own ident;
//  - pingSend({ id: sink.ident }) sends echo *replies* with that id from a raw socket in another
//    process (root), which the kernel delivers straight to the sink.
// Ping sockets need the caller's gid in net.ipv4.ping_group_range (per netns; default "1 0",
// i.e. nobody): use withSysctl('net/ipv4/ping_group_range', '0 0', fn, { netns }).

export interface PingSinkOptions {
  /** local address, "127.0.0.1" (default), "0.0.0.0", "::1", "::" */
  bind?: string;
  /** SO_RCVBUF, default 1 (the kernel minimum) */
  rcvbuf?: number;
  /** echo requests to send from the sink itself right after READY */
  send?: number;
  comm?: string;
  netns?: string;
  readyTimeoutMs?: number;
}

export interface PingSink {
  pid: number;
  /** the socket's ICMP echo identifier (the "port" column of /proc/net/icmp) */
  ident: number;
  inode: number;
  netns?: string;
  /** send `count` echo requests from the sink's own socket; their replies are dropped.
   *  (`errors` is best effort here: stderr and stdout are separate pipes.) */
  sendEchoes(count: number): Promise<SendResult>;
  /** when started with `send`: the result of that initial burst */
  initial?: SendResult;
  stop(): Promise<void>;
}

/** Rejects with a message containing "EACCES" and "exited (code 3)" when ping_group_range forbids it. */
export async function startPingSink(opts: PingSinkOptions = {}): Promise<PingSink> {
  const args = ['ping-sink'];
  if (opts.bind) args.push('--bind', opts.bind);
  if (opts.rcvbuf !== undefined) args.push('--rcvbuf', String(opts.rcvbuf));
  if (opts.send) args.push('--send', String(opts.send));
  if (opts.comm) args.push('--comm', opts.comm);
  const proc = launch(args, opts.netns);
  const timeout = opts.readyTimeoutMs ?? 10_000;
  const { port, inode } = parseReady(await nextLine(proc, 'READY ', timeout, 'ping-sink'));
  const initial = opts.send ? parseSent(await nextLine(proc, 'SENT ', 60_000, 'ping-sink'), proc.stderr) : undefined;
  let queue = Promise.resolve<unknown>(undefined);
  const sendEchoes = (count: number): Promise<SendResult> => {
    const run = async () => {
      if (proc.exitCode !== undefined) throw new Error('ping-sink has exited');
      proc.stderr = '';
      proc.child.stdin!.write(`send ${count}\n`);
      return parseSent(await nextLine(proc, 'SENT ', 60_000, 'ping-sink'), proc.stderr);
    };
    const p = queue.then(run, run); // one burst at a time: SENT lines answer in order
    queue = p.catch(() => undefined);
    return p;
  };
  return { pid: proc.pid, ident: port, inode, netns: opts.netns, initial, sendEchoes, stop: () => stopProc(proc) };
}

export interface PingSendOptions {
  /** destination address, "127.0.0.1" or "::1" */
  to: string;
  count: number;
  /** send echo replies with this id from a raw socket (root), aimed at the ping socket with
   *  that ident. Without it: echo requests from a fresh ping socket of its own. */
  id?: number;
  /** payload bytes, default 16 */
  size?: number;
  netns?: string;
  timeoutMs?: number;
}

export async function pingSend(opts: PingSendOptions): Promise<SendResult> {
  const args = ['ping-send', '--to', opts.to, '-n', String(opts.count)];
  if (opts.id !== undefined) args.push('--id', String(opts.id));
  if (opts.size !== undefined) args.push('--size', String(opts.size));
  return runSender(args, opts.netns, opts.timeoutMs ?? 60_000, 'ping-send');
}
