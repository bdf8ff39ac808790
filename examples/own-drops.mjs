// A UDP daemon that watches its own socket's receive drops with rxtrace, in the background.
// Run as root (or with CAP_PERFMON): `node examples/own-drops.mjs` serves until Ctrl-C;
// `node examples/own-drops.mjs --demo` makes its own socket drop once, reports, and exits.
import dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { openTracer, readSockets } from 'rxtrace';

const sock = dgram.createSocket('udp4').on('message', () => {});
await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
const { port } = sock.address();

// ---- the ten lines: trace this socket's drops, log them once a second ----
const tracer = await openTracer({ port }); // filtered in the kernel: only drops on our port
tracer.unref(); // tracing alone never keeps the daemon alive
let dropped = 0;
tracer.on('drop', () => dropped++);
tracer.on('lost', (l) => console.warn(`rxtrace lost ${l.lost} drop events on cpu ${l.cpu}`));
tracer.on('error', (e) => console.warn(`rxtrace: ${e.message}`));
let logged = 0;
const log = () => dropped > logged && console.log(`udp 127.0.0.1:${port} dropped ${dropped - logged} datagrams (${(logged = dropped)} in all)`);
setInterval(log, 1000).unref();
// ---------------------------------------------------------------------------

console.log(`listening on udp 127.0.0.1:${port}, tracing its drops (pid ${process.pid})`);

if (process.argv.includes('--demo')) {
  // Make our own socket drop: a small receive buffer, and a worker that floods it while this
  // thread is too busy to read (as a daemon stuck in a long synchronous task would be).
  sock.setRecvBufferSize(4096);
  const busy = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const dgram = require('node:dgram');
     const { workerData } = require('node:worker_threads');
     const s = dgram.createSocket('udp4');
     let left = 2000;
     for (let i = 0; i < 2000; i++) s.send(Buffer.alloc(64), workerData.port, '127.0.0.1', () => { if (--left === 0) s.close(); });`,
    { eval: true, workerData: { port } },
  );
  Atomics.wait(busy, 0, 0, 500); // the event loop is blocked: nobody reads the socket
  await new Promise((resolve) => worker.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 300)); // let the last batch arrive
  log();
  const [row] = (await readSockets({ tables: ['udp'] })).filter((s) => s.local === `127.0.0.1:${port}`);
  console.log(`tracer saw ${dropped} drops; the kernel counted ${row?.drops ?? '?'} (drops column of /proc/net/udp)`);
  await tracer.close();
  sock.close();
}
