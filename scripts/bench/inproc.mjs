// Bench modes 4 and 5b: rxtrace as a library in this process, counting drop events with a
// listener and rendering nothing; with --resolve, attribution on (each event matched to its
// socket and owners), so that its cost is measured without NDJSON's. Usage: node inproc.mjs PORT
// [--resolve]. Prints READY once tracing, and one JSON line of counts after SIGINT.
import { openTracer } from '../../dist/index.js';

const port = Number(process.argv[2]);
const resolve = process.argv.includes('--resolve');
const tracer = await openTracer({ port, resolve, notice: () => {} });
let drops = 0;
let lost = 0;
let unmatched = 0;
tracer.on('drop', (e) => {
  if (e.event === 'udp:udp_fail_queue_rcv_skb') drops++;
  if (resolve && !e.socket) unmatched++;
});
tracer.on('lost', (l) => {
  lost += l.lost;
});
process.once('SIGINT', async () => {
  await tracer.close();
  const s = tracer.stats();
  process.stdout.write(JSON.stringify({ drops, lost, unmatched, malformed: s.malformed, native: tracer.nativeStats() }) + '\n');
});
process.stdout.write('READY\n');
