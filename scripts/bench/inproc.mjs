// Bench mode 4: rxtrace as a library in this process, counting drop events with a listener and
// rendering nothing. Usage: node inproc.mjs PORT. Prints READY once tracing, and one JSON line
// of counts after SIGINT.
import { openTracer } from '../../dist/index.js';

const port = Number(process.argv[2]);
const tracer = await openTracer({ port, resolve: false, notice: () => {} });
let drops = 0;
let lost = 0;
tracer.on('drop', (e) => {
  if (e.event === 'udp:udp_fail_queue_rcv_skb') drops++;
});
tracer.on('lost', (l) => {
  lost += l.lost;
});
process.once('SIGINT', async () => {
  await tracer.close();
  const s = tracer.stats();
  process.stdout.write(JSON.stringify({ drops, lost, malformed: s.malformed, native: tracer.nativeStats() }) + '\n');
});
process.stdout.write('READY\n');
