// TCP receive drops made with a squeezed tcp_mem (tcp-mem and tcp-kfree live tests): connected
// pairs over loopback whose receiver never reads, a sender writing while net.ipv4.tcp_mem is
// "1 1 1" pages (global; restored in a finally), and `perf stat` counting the PROTO_MEM
// kfree_skb the kernel fired meanwhile: the anchor. On 6.18 it equals TcpExt TCPRcvQDrop (+2 in
// each of 8 runs), but the kernel wrote a sample for only 0, 1 or 2 of them: perf record and a
// bare perf_event_open reader missed the same ones, and the event's own count (read()) had them.
// rxtrace reports such hits as `lost` with cause "unsampled". A squeeze that fired no PROTO_MEM,
// or whose PROTO_MEM were all unsampled, is tried again on a fresh pair (squeezeUntilProtoMem).
// How the drop is made: docs/tcp-drops.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startCli, TIME_SCALE, type CliResult } from './cli.js';
import { nstat, pollUntil } from './procnet-read.js';
import { withSysctl } from './sysctl.js';

// One process, one pair per "pair" line (the one before is closed: its drops must not rise in the
// next squeeze's window). "go": the newest pair's sender writes for 1.5 s (times the test time
// scale). The receiver `a` is the accepted socket: its inode names it.
const PAIRS = `
import socket, sys, time, os
pairs = []
for line in sys.stdin:
    if line.strip() == 'pair':
        for s in (pairs[-1] if pairs else ()): s.close()
        l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(8)
        c = socket.socket(); c.connect(('127.0.0.1', l.getsockname()[1]))
        a, _ = l.accept()
        pairs.append((l, c, a))
        print('READY', l.getsockname()[1], c.getsockname()[1], os.fstat(a.fileno()).st_ino, flush=True)
    elif line.strip() == 'go':
        c = pairs[-1][1]; c.setblocking(False)
        buf = b'x' * 65536
        end = time.time() + 1.5 * float(sys.argv[1])
        sent = 0
        while time.time() < end:
            try: sent += c.send(buf)
            except BlockingIOError: time.sleep(0.001)
        print('SENT', sent, flush=True)
`;

export interface TcpPair {
  /** The listener's port: the receiver's local port. */
  port: number;
  /** The sender's port: the receiver's remote port. */
  cport: number;
  /** The receiver's (accepted socket's) inode. */
  inode: number;
}

export interface Squeeze {
  pair: TcpPair;
  /** The receiver's sk_drops (ss -tm's d) before and after. */
  drops0: number;
  drops1: number;
  /** PROTO_MEM kfree_skb the kernel fired during the squeeze, host-wide (perf stat -a). */
  protoMem: number;
  sent: number;
}

/** The receiver's sk_drops as ss shows it (skmem d…): the connection from `cport` to `port`. */
export function receiverDrops(p: TcpPair): number {
  const out = execFileSync('ss', ['-tmnH', `sport = :${p.port} and dport = :${p.cport}`], { encoding: 'utf8' });
  const m = /\bd(\d+)\)/.exec(out);
  if (!m) throw new Error(`no skmem d… in ss output: ${out}`);
  return Number(m[1]);
}

export class TcpSqueezer {
  private readonly py: ChildProcess;
  private readonly lines: AsyncIterator<string>;

  constructor() {
    this.py = spawn('python3', ['-u', '-c', PAIRS, String(TIME_SCALE)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = createInterface({ input: this.py.stdout! })[Symbol.asyncIterator]();
  }

  private async ask(cmd: string, tag: string): Promise<string[]> {
    this.py.stdin!.write(`${cmd}\n`);
    const r = await this.lines.next();
    const parts = String(r.value).split(' ');
    if (r.done || parts[0] !== tag) throw new Error(`tcp pair: "${cmd}" answered ${JSON.stringify(r.value)} (python3 exited?)`);
    return parts.slice(1);
  }

  async pair(): Promise<TcpPair> {
    const [port, cport, inode] = (await this.ask('pair', 'READY')).map(Number);
    return { port, cport, inode };
  }

  /**
   * One squeeze on a fresh pair: tcp_mem "1 1 1" while its sender writes, perf stat counting
   * kfree_skb with reason `protoMem` (this kernel's number for PROTO_MEM) over the same window.
   */
  async squeeze(protoMem: number): Promise<Squeeze> {
    const pair = await this.pair();
    const drops0 = receiverDrops(pair);
    // perf prints "go" from its workload once its counter is enabled; the workload ends on a line.
    const perf = spawn('perf', ['stat', '-a', '-x', ',', '-e', 'skb:kfree_skb', '--filter', `reason == ${protoMem}`, '--', 'sh', '-c', 'echo go; read x'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    perf.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => perf.once('exit', (c) => r(c)));
    try {
      const go = await createInterface({ input: perf.stdout! })[Symbol.asyncIterator]().next();
      if (go.value !== 'go') throw new Error(`perf stat did not start: ${err}`);
      const [sent] = await withSysctl('net/ipv4/tcp_mem', '1 1 1', () => this.ask('go', 'SENT'));
      // Settle: the last drops land in softirq right after the send loop.
      await new Promise((r) => setTimeout(r, 200 * TIME_SCALE));
      perf.stdin!.end('\n');
      const code = await exited;
      if (code !== 0) throw new Error(`perf stat exited ${code}: ${err}`);
      const line = err.split('\n').find((l) => l.includes('skb:kfree_skb'));
      const protoMemCount = Number(line?.split(',')[0]);
      if (!Number.isInteger(protoMemCount)) throw new Error(`no count in perf stat's output: ${err}`);
      return { pair, drops0, drops1: receiverDrops(pair), protoMem: protoMemCount, sent: Number(sent) };
    } finally {
      perf.kill();
    }
  }

  /**
   * Squeezes on fresh pairs until one made the kernel fire a PROTO_MEM kfree_skb and `delivered`
   * says the tracer under test printed one, at most `attempts`. The kernel may count a hit and
   * write no sample for it (6.18, both perf record and rxtrace miss it; rxtrace says so in a
   * `lost` record with cause "unsampled"): a squeeze whose drops all went that way proves nothing
   * about attribution, so another is made. Every squeeze is returned: the caller's checks cover all.
   */
  async squeezeUntilProtoMem(protoMem: number, delivered: () => boolean, attempts = 6): Promise<Squeeze[]> {
    const out: Squeeze[] = [];
    while (out.length < attempts) {
      const s = await this.squeeze(protoMem);
      out.push(s);
      if (s.protoMem > 0 && (await pollUntil(delivered, (v) => v, 3000 * TIME_SCALE, 50))) break;
    }
    return out;
  }

  close(): void {
    this.py.stdin!.end();
    this.py.kill();
  }
}

/** What `rxtrace trace --proto tcp` printed around squeezes, with the kernel's figures. */
export interface TracedSqueeze {
  tries: Squeeze[];
  /** TcpExt (nstat) before the first squeeze and after the last. */
  n0: Record<string, number>;
  n1: Record<string, number>;
  /** The trace's exit. */
  result: CliResult;
  /** Its NDJSON lines, parsed. */
  recs: Record<string, any>[];
  /** PROTO_MEM kfree_skb perf stat counted over all the squeezes. */
  perfProtoMem: number;
  /** Hits rxtrace said the kernel counted but wrote no sample for (lost, cause "unsampled"). */
  unsampled: number;
}

/**
 * `rxtrace trace --proto tcp` (NDJSON, a big ring) around squeezeUntilProtoMem, stopped with
 * SIGINT once the last drops are in: the run the tcp-mem and tcp-kfree tests judge.
 */
export async function traceTcpSqueeze(protoMem: number): Promise<TracedSqueeze> {
  const sq = new TcpSqueezer();
  try {
    const cli = startCli(['trace', '--proto', 'tcp', '--format', 'ndjson', '--ring-pages', '1024']);
    await cli.waitForPerfFds(1);
    await new Promise((r) => setTimeout(r, 300 * TIME_SCALE));
    const n0 = nstat();
    const tries = await sq.squeezeUntilProtoMem(protoMem, () => cli.lines.some((l) => l.includes('"reason":"PROTO_MEM"')));
    await new Promise((r) => setTimeout(r, 300 * TIME_SCALE));
    const n1 = nstat();
    cli.signal('SIGINT');
    const result = await cli.exited;
    const recs = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    const unsampled = recs.filter((e) => e.event === 'lost' && e.cause === 'unsampled').reduce((a, e) => a + e.lost, 0);
    return { tries, n0, n1, result, recs, perfProtoMem: tries.reduce((a, t) => a + t.protoMem, 0), unsampled };
  } finally {
    sq.close();
  }
}
