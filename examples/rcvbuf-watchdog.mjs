// A watchdog that gives SO_RCVBUF advice: every interval it reads every UDP socket of every
// network namespace (readSockets), and when a socket's receive queue keeps climbing or the
// socket drops, it says by how much to raise its receive buffer, or why that would not help.
// The tracer, when it can run (root or CAP_PERFMON), tells a full buffer (rc -12) from UDP's
// global memory limit (rc -105, net.ipv4.udp_mem), where a bigger SO_RCVBUF makes it worse.
//
//   node examples/rcvbuf-watchdog.mjs [--interval 1] [--rounds N] [--port P] [--climb 3]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openTracer, readSockets, RxtraceError } from 'rxtrace';

const { values: args } = parseArgs({
  options: {
    interval: { type: 'string', default: '1' }, // seconds between reads
    rounds: { type: 'string' }, // stop after this many reads (default: run until Ctrl-C)
    port: { type: 'string' }, // only sockets bound to this local port
    climb: { type: 'string', default: '3' }, // reads in a row with a growing rx_queue before advising
  },
});
const intervalMs = Number(args.interval) * 1000;
const climbReads = Number(args.climb);
const portSuffix = args.port ? `:${args.port}` : undefined;

const sysctl = (name) => Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8'));
const kib = (bytes) => `${Math.round(bytes / 1024)} KiB`;
const pow2 = (n) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

// Optional: why the drops happen. Without permission the watchdog still works from /proc.
const reasons = new Map(); // inode → { rcvbuf, udpMem }
let tracer;
try {
  tracer = await openTracer({ events: ['udp:udp_fail_queue_rcv_skb'], only: true, port: args.port ? Number(args.port) : undefined });
  tracer.unref();
  tracer.on('drop', (d) => {
    if (!d.socket) return;
    const r = reasons.get(d.socket.inode) ?? { rcvbuf: 0, udpMem: 0 };
    if (d.fields.rc === -105) r.udpMem++;
    else r.rcvbuf++;
    reasons.set(d.socket.inode, r);
  });
} catch (e) {
  if (!(e instanceof RxtraceError)) throw e;
  console.warn(`watchdog: tracing unavailable (${e.code}: ${e.hint ?? e.message}); advising from /proc only`);
}

const seen = new Map(); // inode → { rx_queue, drops, climbing, peak }

function advise(s, prev, state) {
  const who = s.owners.length ? s.owners.map((o) => `${o.comm}[${o.pid}]`).join(',') : 'no owner found';
  const dropped = prev && s.drops !== null && prev.drops !== null ? s.drops - prev.drops : 0;
  const r = reasons.get(s.inode);
  reasons.delete(s.inode);
  if (r && r.udpMem > 0 && r.udpMem >= r.rcvbuf) {
    console.log(
      `${s.table} ${s.local} (${who}): ${dropped} drops, ${r.udpMem} of them at UDP's global memory limit (net.ipv4.udp_mem): ` +
        'a bigger SO_RCVBUF will not help; find the sockets holding memory (rxtrace sockets) or raise udp_mem',
    );
    return;
  }
  const rmemMax = sysctl('rmem_max');
  const want = pow2(Math.max(4 * state.peak, 256 * 1024));
  const why = dropped > 0 ? `${dropped} drops since the last read` : `rx_queue climbed ${climbReads} reads in a row`;
  console.log(
    `${s.table} ${s.local} (${who}): ${why}, rx_queue ${kib(s.rx_queue)} (peak ${kib(state.peak)}): ` +
      `the reader falls behind. Raise its SO_RCVBUF to ${kib(want)}` +
      (want > rmemMax ? ` (above net.core.rmem_max = ${kib(rmemMax)}: sysctl -w net.core.rmem_max=${want}, or SO_RCVBUFFORCE as root)` : '') +
      ', or read faster (recvmmsg, more threads, SO_REUSEPORT)',
  );
}

async function round() {
  const rows = await readSockets({ tables: ['udp', 'udp6'] });
  const alive = new Set();
  for (const s of rows) {
    if (portSuffix && !s.local.endsWith(portSuffix)) continue;
    alive.add(s.inode);
    const prev = seen.get(s.inode);
    const state = { rx_queue: s.rx_queue, drops: s.drops, climbing: 0, peak: s.rx_queue };
    if (prev) {
      state.climbing = s.rx_queue > prev.rx_queue ? prev.climbing + 1 : 0;
      state.peak = Math.max(prev.peak, s.rx_queue);
      const dropped = s.drops !== null && prev.drops !== null && s.drops > prev.drops;
      if (dropped || state.climbing >= climbReads) {
        advise(s, prev, state);
        state.climbing = 0;
      }
    }
    seen.set(s.inode, state);
  }
  for (const inode of seen.keys()) if (!alive.has(inode)) seen.delete(inode);
}

console.log(`watchdog: reading UDP sockets every ${args.interval} s${portSuffix ? ` (port ${args.port})` : ''}`);
for (let i = 0; args.rounds === undefined || i < Number(args.rounds); i++) {
  await round();
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
await tracer?.close();
