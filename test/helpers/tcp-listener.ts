// A TCP listener with listen(fd, 1) that never accepts, and a storm of non-blocking connects
// that overflows its accept queue (tcp-listen and explain live tests). How the drop is made:
// docs/tcp-drops.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const LISTENER = `
import socket, os, sys, ctypes
ctypes.CDLL(None).prctl(15, b'rxt-listener', 0, 0, 0)  # PR_SET_NAME
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('127.0.0.1', 0))
s.listen(1)
print('READY', s.getsockname()[1], os.fstat(s.fileno()).st_ino, flush=True)
sys.stdin.read()
`;
// 200 non-blocking connects, held 1.5 s (SYN retransmits at 1 s add overflows), then closed:
// a closed SYN_SENT socket retransmits no more, so the counters settle.
export const STORM = `
import socket, sys, time
port = int(sys.argv[1]); socks = []
for i in range(200):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM); c.setblocking(False)
    try: c.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    socks.append(c)
time.sleep(1.5)
for c in socks: c.close()
`;

const procs: ChildProcess[] = [];
export async function startListener(): Promise<{ pid: number; port: number; inode: number; stop(): void }> {
  const p = spawn('python3', ['-u', '-c', LISTENER], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(p);
  const it = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
  const r = await it.next();
  const [tag, port, inode] = String(r.value).split(' ');
  if (tag !== 'READY') throw new Error(`listener: ${r.value}`);
  return { pid: p.pid!, port: Number(port), inode: Number(inode), stop: () => p.stdin!.end() };
}

export function ssDrops(port: number): number {
  const out = execFileSync('ss', ['-ltmnH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /\bd(\d+)\)/.exec(out);
  if (!m) throw new Error(`no skmem d… in ss output: ${out}`);
  return Number(m[1]);
}

/** Stops every listener started (afterEach). */
export function stopAllListeners(): void {
  for (const p of procs.splice(0)) p.kill();
}

/** Runs the connect storm against 127.0.0.1:port (about 1.5 s). */
export function connectStorm(port: number): void {
  execFileSync('python3', ['-c', STORM, String(port)]);
}
