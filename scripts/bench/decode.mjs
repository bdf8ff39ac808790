// Decode micro-benchmark: events/s through the TypeScript decoder (dist/decode) on batches
// recorded from this kernel by the addon itself (a real udp_fail_queue_rcv_skb flood), replayed
// in a loop: decode only; decode and read every field; decode and render NDJSON; and the whole
// JavaScript side of `rxtrace trace --no-resolve > /dev/null` (RxTracer, NDJSON, writes to
// /dev/null) with the kernel and the reader thread taken out.
// Rates are per CPU-second of this process (the machine may be shared), with wall rates beside.
// Usage: node decode.mjs [SECONDS_PER_CASE]. Prints one JSON line.
import { BatchDecoder } from '../../dist/decode/batch.js';
import { WallClock } from '../../dist/decode/clock.js';
import { loadNative } from '../../dist/native.js';
import { buildPlan } from '../../dist/plan.js';
import * as ndjson from '../../dist/render/ndjson.js';
import { onlineCpus } from '../../dist/cpus.js';
import { openSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { RxTracer } from '../../dist/tracer.js';
import { LineWriter } from '../../dist/cli/output.js';
import { send, startSink } from './lib.mjs';

const seconds = Number(process.argv[2] ?? 2);
const WANT = 400_000; // events to record: ~40 MB of batches, enough to defeat the caches

async function record() {
  const sink = await startSink();
  const plan = await buildPlan({ only: true, events: ['udp:udp_fail_queue_rcv_skb'], port: sink.port, notice: () => {} });
  const native = loadNative();
  const batches = [];
  let events = 0;
  const session = new native.PerfSession(
    {
      events: plan.events.map((e) => ({ id: e.compiled.schema.id, filter: e.filter })),
      cpus: onlineCpus(),
      ringPages: 2048,
      wakeupBytes: 1 << 20,
      flushMs: 20,
      batchBytes: 256 * 1024,
      maxQueuedBatches: 1 << 12,
    },
    (b) => {
      if (events < WANT) {
        batches.push(b);
        events += Math.floor(b.byteLength / 120);
      }
    },
  );
  await session.start();
  try {
    for (let i = 0; i < 10 && events < WANT; i++) await send(sink.port, 0.5);
  } finally {
    await session.close();
    await sink.stop();
  }
  return { plan, batches, clock: new WallClock(native.clockOffsetNs()) };
}

const cpuNow = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

/**
 * Warm up (the optimizer), then time windows of at least 100 ms over `batches` and report the
 * median and the best window, per CPU-second of this process and per wall second. On a shared
 * machine the best window is the one least disturbed by others.
 */
function bench(name, batches, makeDecoder, makeSink) {
  const dec = makeDecoder();
  const sink = makeSink();
  const t0 = performance.now();
  while (performance.now() - t0 < 400) for (const b of batches) dec.decode(b, sink);
  const rates = [];
  const walls = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const s0 = dec.counters.samples;
    const w0 = performance.now();
    const c0 = cpuNow();
    do for (const b of batches) dec.decode(b, sink);
    while (performance.now() - w0 < 100);
    const n = dec.counters.samples - s0;
    rates.push(n / (cpuNow() - c0));
    walls.push(n / ((performance.now() - w0) / 1000));
  }
  return result(name, rates, walls);
}

function result(name, rates, walls) {
  return {
    case: name,
    eventsPerSec: Math.round(median(rates)),
    bestEventsPerSec: Math.round(Math.max(...rates)),
    eventsPerWallSec: Math.round(median(walls)),
    windows: rates.length,
  };
}

function median(xs) {
  const v = [...xs].sort((a, b) => a - b);
  return v[v.length >> 1];
}

/** The JS side of `rxtrace trace --no-resolve > /dev/null`, fed the recorded batches. */
async function replay(plan, batches, clock) {
  const fd = openSync('/dev/null', 'w');
  // What process.stdout is when redirected to a file: a synchronous write per chunk.
  const devnull = new Writable({
    write(chunk, _enc, cb) {
      writeSync(fd, chunk);
      cb();
    },
  });
  const session = { setPaused() {}, close: async () => {}, ref() {}, unref() {}, stats: () => ({}), start: async () => {} };
  const tracer = new RxTracer(plan, session, new BatchDecoder(plan.events.map((e) => e.compiled), clock), undefined, {});
  const out = new LineWriter(devnull);
  let n = 0;
  // As runTrace does: a listener writes each record as the tracer delivers it.
  const line = out.w
    ? (rec) => {
      ndjson.writeRecordJson(out.w, rec);
      out.endLine();
      n++;
    }
    : (rec) => {
      out.line(ndjson.recordToJson(rec));
      n++;
    };
  tracer.on('drop', line);
  tracer.on('lost', line);
  const pass = async () => {
    for (const b of batches) {
      tracer.onBatch(b);
      await new Promise((r) => setImmediate(r)); // the consumer drains it, as between two TSFN calls
    }
  };
  const t0 = performance.now();
  while (performance.now() - t0 < 400) await pass();
  const rates = [];
  const walls = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const n0 = n;
    const w0 = performance.now();
    const c0 = cpuNow();
    do await pass();
    while (performance.now() - w0 < 100);
    rates.push((n - n0) / (cpuNow() - c0));
    walls.push((n - n0) / ((performance.now() - w0) / 1000));
  }
  await tracer.close();
  await out.end();
  return result('replay: RxTracer + NDJSON to /dev/null, fed recorded batches (the JS side of rxtrace trace --no-resolve)', rates, walls);
}

const { plan, batches, clock } = await record();
const compiled = plan.events.map((e) => e.compiled);
const mk = () => new BatchDecoder(compiled, clock);
let sampleEvents = 0;
let bytes = 0;
for (const b of batches) bytes += b.byteLength;
{
  const d = mk();
  for (const b of batches) d.decode(b, { drop: () => sampleEvents++, lost: () => {} });
}

// The live pipeline decodes each batch right after the reader thread copied it, so the bytes are
// in cache: the "hot" cases cycle over the first 2 MB. "cold" cycles over everything recorded.
const hot = [];
for (let i = 0, b = 0; i < batches.length && b < 2 << 20; b += batches[i].byteLength, i++) hot.push(batches[i]);

let sinkHole = 0;
const results = [];
results.push(bench('decode (DropEvent objects), batches in cache', hot, mk, () => ({ drop: () => sinkHole++, lost: () => {} })));
results.push(bench('decode (DropEvent objects), 48 MB of batches out of cache', batches, mk, () => ({ drop: () => sinkHole++, lost: () => {} })));
results.push(
  bench('decode + read time and every field', hot, mk, () => ({
    drop: (e) => {
      const f = e.fields;
      for (const k in f) if (f[k] !== undefined) sinkHole++;
      sinkHole += e.time.length;
    },
    lost: () => {},
  })),
);
results.push(bench('decode + NDJSON line as a string (recordToJson)', hot, mk, () => ({ drop: (e) => (sinkHole += ndjson.recordToJson(e).length), lost: () => {} })));
// (Older trees, for before/after comparisons, have only the string path.)
const JsonBytes = await import('../../dist/decode/json-bytes.js').then((m) => m.JsonBytes, () => undefined);
if (JsonBytes && ndjson.writeRecordJson) {
  // The CLI's path: lines written as bytes into one reusable buffer, handed on at 64 KiB.
  const w = new JsonBytes(1 << 17);
  const line = (e) => {
    ndjson.writeRecordJson(w, e);
    w.byte(10);
    if (w.pos >= 65536) {
      sinkHole += w.pos;
      w.pos = 0;
    }
  };
  results.push(bench('decode + NDJSON into a reusable buffer (the CLI path)', hot, mk, () => ({ drop: line, lost: line })));
}
results.push(await replay(plan, hot, clock));
process.stdout.write(JSON.stringify({ recordedEvents: sampleEvents, recordedBatches: batches.length, recordedBytes: bytes, results, sinkHole: sinkHole > 0 }) + '\n');
