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
import { nowMonoNs } from '../../dist/decode/batch.js';
const ProcAttributor = await import('../../dist/attribute/proc-attributor.js').then((m) => m.ProcAttributor, () => undefined);
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
  }
  // The sink stays open: the attribution replays match the recorded drops to it.
  return { plan, batches, clock: new WallClock(native.clockOffsetNs()), sink };
}

/** Stamp every sample of `buf` with CLOCK_MONOTONIC now (layout in src/native.ts: time at +24). */
function restamp(buf) {
  const dv = new DataView(buf);
  const now = BigInt(nowMonoNs());
  for (let off = 0; off + 16 <= buf.byteLength; off += 8 + dv.getUint16(off + 14, true)) {
    if (dv.getUint32(off + 8, true) === 9) dv.setBigUint64(off + 24, now, true);
  }
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
  // As runTrace does: one loop over the tracer's batches writes each record.
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
  const batchesIn = tracer.batches();
  const consumed = (async () => {
    for await (const batch of batchesIn) for (const rec of batch) line(rec);
  })();
  const pass = async () => {
    for (const b of batches) {
      tracer.onBatch(b);
      await new Promise((r) => setImmediate(r)); // the consumer drains it, as between two TSFN calls
    }
  };
  const { rates, walls } = await timePasses(pass, () => n);
  await tracer.close();
  await consumed;
  await out.end();
  return result('replay: RxTracer + NDJSON to /dev/null, fed recorded batches (the JS side of rxtrace trace --no-resolve)', rates, walls);
}

/** Warm up `pass` for 400 ms, then time windows of at least 100 ms of it: events (count()) per CPU-second and per wall second. */
async function timePasses(pass, count) {
  const t0 = performance.now();
  while (performance.now() - t0 < 400) await pass();
  const rates = [];
  const walls = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const n0 = count();
    const w0 = performance.now();
    const c0 = cpuNow();
    do await pass();
    while (performance.now() - w0 < 100);
    rates.push((count() - n0) / (cpuNow() - c0));
    walls.push((count() - n0) / ((performance.now() - w0) / 1000));
  }
  return { rates, walls };
}

/**
 * RxTracer fed the recorded batches, restamped to now so that they fall between live reads of
 * /proc, with attribution (ProcAttributor against this host: the recording's sink is still
 * open, so every event matches it) or without; counting drops (the library) or writing NDJSON
 * to /dev/null as well (the CLI). The kernel and the reader thread are out of the picture, so
 * the difference is attribution's own cost per event, /proc reads included.
 */
async function replayCounting(name, plan, batches, clock, { attributed, ndjsonOut }) {
  const session = { setPaused() {}, close: async () => {}, ref() {}, unref() {}, stats: () => ({}), start: async () => {} };
  const attributor = attributed ? await ProcAttributor.create() : undefined;
  const tracer = new RxTracer(plan, session, new BatchDecoder(plan.events.map((e) => e.compiled), clock), attributor, {});
  let n = 0;
  let matched = 0;
  let out;
  if (ndjsonOut) {
    const fd = openSync('/dev/null', 'w');
    out = new LineWriter(new Writable({ write(chunk, _enc, cb) { writeSync(fd, chunk); cb(); } }));
  }
  tracer.on('drop', (e) => {
    n++;
    if (e.socket) matched++;
    if (out) {
      ndjson.writeRecordJson(out.w, e);
      out.endLine();
    }
  });
  const pass = async () => {
    for (const b of batches) {
      restamp(b);
      tracer.onBatch(b);
      await new Promise((r) => setImmediate(r));
    }
    // Let attribution catch up (it waits for /proc reads) before the next pass: no backlog grows.
    while (tracer.pumping) await new Promise((r) => setTimeout(r, 1));
  };
  let m0 = 0;
  let n00 = 0;
  const { rates, walls } = await timePasses(pass, () => {
    // The first call after the warm-up: the matched share counts from here.
    if (n00 === 0) [m0, n00] = [matched, n];
    return n;
  });
  await tracer.close();
  if (out) await out.end();
  const r = result(name, rates, walls);
  if (attributed) r.matchedShare = (matched - m0) / Math.max(1, n - n00);
  return r;
}

const { plan, batches, clock, sink } = await record();
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
const JsonBytes = await import('../../dist/render/json-bytes.js')
  .catch(() => import('../../dist/decode/json-bytes.js')) // (older trees had it in decode/)
  .then((m) => m.JsonBytes, () => undefined);
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
// Attribution's cost, without the kernel: counting with and without it, and with NDJSON.
// (Older trees lack the pieces; then these cases are left out.)
if (ProcAttributor) {
  // A real flood to the sink meanwhile (untraced): attribution only names a socket whose drops
  // counter rose between its reads, so replayed events need the counter to move as it would.
  const flood = send(sink.port, 3 * (seconds + 0.4) + 2);
  results.push(await replayCounting('replay: RxTracer counting drops, no attribution (the library, resolve: false)', plan, hot, clock, { attributed: false }));
  results.push(await replayCounting('replay: RxTracer counting drops, with attribution (the library, resolve: true)', plan, hot, clock, { attributed: true }));
  results.push(await replayCounting('replay: RxTracer + attribution + NDJSON to /dev/null (the JS side of rxtrace trace)', plan, hot, clock, { attributed: true, ndjsonOut: true }));
  await flood;
}
await sink.stop();
process.stdout.write(JSON.stringify({ recordedEvents: sampleEvents, recordedBatches: batches.length, recordedBytes: bytes, results, sinkHole: sinkHole > 0 }) + '\n');
