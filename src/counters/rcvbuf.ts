// Each socket's receive buffer size (sk_rcvbuf), for the sockets whose rows do not carry it:
// sock_diag rows do (SKMEMINFO), but /proc/net/udp does not, and ping sockets have no sock_diag
// handler. For those, rxtrace asks `ss -uwamne` (iproute2) and reads only `ino:` and
// `skmem:(…rb<N>…)` from it. Best effort: without ss, or in a namespace that cannot be entered,
// the size is unknown and `top` shows no fill for that socket.
import { execFile } from 'node:child_process';

export interface SkMem {
  /** sk_rmem_alloc: bytes queued (the same as rx_queue in /proc/net/udp). */
  rmem_alloc: number;
  /** sk_rcvbuf: the receive buffer size the socket may fill. */
  rcvbuf: number;
  /** sk_drops. */
  drops: number | null;
}

const SKMEM = /skmem:\(([^)]*)\)/;
const INO = /(?:^|\s)ino:(\d+)(?:\s|$)/;

/**
 * `ss -amne` text → inode → skmem. A record is a line that starts at column 0 and the indented
 * lines under it; records without both `ino:` and `skmem:` are skipped.
 */
export function parseSsSkmem(text: string): Map<number, SkMem> {
  const out = new Map<number, SkMem>();
  const records: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line) && records.length > 0) records[records.length - 1] += ` ${line.trim()}`;
    else records.push(line);
  }
  for (const rec of records) {
    const ino = INO.exec(rec);
    const mem = SKMEM.exec(rec);
    if (!ino || !mem) continue;
    const fields = new Map<string, number>();
    for (const part of mem[1].split(',')) {
      const m = /^([a-z]+)(\d+)$/.exec(part);
      if (m) fields.set(m[1], Number(m[2]));
    }
    const r = fields.get('r');
    const rb = fields.get('rb');
    if (r === undefined || rb === undefined) continue;
    out.set(Number(ino[1]), { rmem_alloc: r, rcvbuf: rb, drops: fields.get('d') ?? null });
  }
  return out;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 3000, maxBuffer: 64 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

/**
 * Reads sk_rcvbuf of UDP and raw sockets with ss, in rxtrace's own namespace and (through
 * nsenter and one pid of each) in `otherNetns`. Remembers when ss is missing and stops asking.
 */
export class RcvbufReader {
  private available = true;
  private why?: string;

  get unavailable(): string | undefined {
    return this.available ? undefined : this.why;
  }

  async read(otherNetns: ReadonlyMap<number, number> = new Map()): Promise<Map<number, SkMem>> {
    const out = new Map<number, SkMem>();
    if (!this.available) return out;
    const args = ['-uwamneH'];
    try {
      for (const [k, v] of parseSsSkmem(await run('ss', args))) out.set(k, v);
    } catch (e) {
      this.available = false;
      this.why = `ss failed: ${(e as Error).message.split('\n')[0]}`;
      return out;
    }
    await Promise.all(
      [...otherNetns].map(async ([, pid]) => {
        try {
          for (const [k, v] of parseSsSkmem(await run('nsenter', [`--net=/proc/${pid}/ns/net`, 'ss', ...args]))) out.set(k, v);
        } catch {
          // the process left, or nsenter is missing or not allowed: sizes there stay unknown
        }
      }),
    );
    return out;
  }
}
