// What the release tests (npm run test:ship) share: where the artifacts are, and one live check
// that an rxtrace command (an installed package, the single executable) traces real drops.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { expect } from 'vitest';
import { onlineCpuCount, startCli, type RunOptions } from '../helpers/cli.js';
import { settledUdpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink } from '../helpers/rxflood.js';

/** Set by scripts/ship/test.sh; a clear failure when a test file is run on its own without it. */
export function artifact(name: 'RXTRACE_TARBALL' | 'RXTRACE_SEA'): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the release tests with npm run test:ship (scripts/ship/test.sh builds the artifacts)`);
  return v;
}

export interface Json {
  [k: string]: unknown;
}

export function ndjson(stdout: string): Json[] {
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Json);
}

/** Files mapped by `pid` that live in `dirs` (or were unlinked from them): path as the kernel shows it. */
export function mappedFilesUnder(pid: number, dirs: string[]): string[] {
  const out = new Set<string>();
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const path = line.split(/\s+/).slice(5).join(' ');
    if (dirs.some((d) => path.startsWith(`${d}/`))) out.add(path);
  }
  return [...out];
}

/** Targets of the process's open fds (anon inodes and sockets included). */
export function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

export interface TraceRun {
  /** udp_fail_queue_rcv_skb lines for our port */
  ours: number;
  /** the socket's own drops counter, before → after */
  delta: number;
  lost: number;
  code: number | null;
  stderr: string;
  /** what the running process had mapped from the temp directories (see mappedFilesUnder) */
  mappedTemp: string[];
}

/**
 * `<command> trace --format ndjson -p PORT` while rxflood makes `count` real drops on an unread
 * socket with the smallest receive buffer; stopped with SIGINT once the kernel's counter settles.
 */
export async function traceRealDrops(command: string[], opts: RunOptions & { count?: number; tempDirs?: string[] } = {}): Promise<TraceRun> {
  const count = opts.count ?? 2000;
  const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
  try {
    const cli = startCli(['trace', '--format', 'ndjson', '-p', String(sink.port)], { ...opts, command });
    // At least one tracepoint on every CPU (the layout decides how many this kernel has).
    await cli.waitForPerfFds(onlineCpuCount(), 30_000, 1000);
    const mappedTemp = mappedFilesUnder(cli.pid, opts.tempDirs ?? []);
    const before = await settledUdpSocketDrops(sink.inode);
    await send({ to: addrPort('127.0.0.1', sink.port), count });
    const delta = (await settledUdpSocketDrops(sink.inode)) - before;
    // Let the last batch reach stdout (a quiet ring is flushed every 20 ms).
    await new Promise((r) => setTimeout(r, 500));
    cli.signal('SIGINT');
    const r = await cli.exited;
    const recs = ndjson(r.stdout);
    const ours = recs.filter((e) => {
      if (e.event !== 'udp:udp_fail_queue_rcv_skb') return false;
      const f = e.fields as Json;
      // 6.10+ has dport; before, the event has only lport (KERNEL.md).
      return (f.dport ?? f.lport) === sink.port;
    }).length;
    const lost = recs.filter((e) => e.event === 'lost').reduce((n, e) => n + Number(e.lost), 0);
    expect(delta, 'the sender made drops').toBeGreaterThan(0);
    return { ours, delta, lost, code: r.code, stderr: r.stderr, mappedTemp };
  } finally {
    await sink.stop();
  }
}
