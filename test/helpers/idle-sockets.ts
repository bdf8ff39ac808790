// Many idle UDP sockets for scale tests and the bench, held in helper processes (the hard
// `ulimit -n` may be 20,000 and raising it needs CAP_SYS_RESOURCE): python3, because a
// socket costs it a file descriptor and nothing else, where node would build a libuv handle.
import { spawn, type ChildProcess } from 'node:child_process';

const HOLDER = `
import socket, sys, resource
n = int(sys.argv[1]); fam = socket.AF_INET6 if sys.argv[2] == '6' else socket.AF_INET; h = int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
keep = []
for i in range(n):
    # the ephemeral range (~28k ports) is per address: each holder its own loopback addresses (v4)
    host = '::1' if fam == socket.AF_INET6 else '127.%d.%d.%d' % (1 + h // 250, 1 + h % 250, 2 + i // 20000)
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((host, 0)); keep.append(s)
print('READY', len(keep), flush=True)
sys.stdin.read()
`;

export interface IdleSockets {
  pids: number[];
  count: number;
  stop(): Promise<void>;
}

/** Hold `total` idle UDP sockets bound to loopback, at most `perProcess` per helper. */
export async function holdIdleSockets(total: number, opts: { perProcess?: number; family?: 4 | 6; netns?: string } = {}): Promise<IdleSockets> {
  const per = opts.perProcess ?? 15_000;
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null || p.signalCode !== null) return r();
            p.once('exit', () => r());
            p.kill('SIGKILL');
          }),
      ),
    );
  };
  try {
    const ready: Promise<void>[] = [];
    for (let left = total; left > 0; left -= per) {
      const n = Math.min(per, left);
      const argv = ['python3', '-c', HOLDER, String(n), String(opts.family ?? 4), String(procs.length)];
      const p = opts.netns ? spawn('ip', ['netns', 'exec', opts.netns, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] }) : spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
      procs.push(p);
      ready.push(
        new Promise<void>((resolve, reject) => {
          let out = '';
          p.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('READY')) resolve();
          });
          p.once('exit', (code) => reject(new Error(`idle-socket holder exited (${code}) before READY`)));
        }),
      );
    }
    await Promise.all(ready);
  } catch (e) {
    await stop();
    throw e;
  }
  return { pids: procs.map((p) => p.pid!), count: total, stop };
}
