// Live smoke test of the native addon alone: real UDP rcvbuf drops on loopback, traced with
// perf_event_open and counted against the socket's `drops` column in /proc/net/udp; then the
// lifecycle (double close, fd leaks, error shapes, unref, GC, worker teardown, backpressure).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeLive } from '../helpers/live.js';
import { kernelLayout, portFilter } from '../helpers/kernel.js';
import {
  loadNative,
  type NativeAddon,
  type NativeError,
  type NativeEventSpec,
  type NativePerfSession,
  type NativeSessionOptions,
} from '../../src/native.js';

/** What this kernel's tracepoints can show (lport before 6.10, dport after…). */
const K = await kernelLayout();

const TRACEFS = '/sys/kernel/tracing';
const EVENT_DIR = `${TRACEFS}/events/udp/udp_fail_queue_rcv_skb`;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Loads the addon the way src/native.ts does, for child processes and workers (CommonJS).
const REQUIRE_ADDON = `require(${JSON.stringify(path.join(ROOT, 'node_modules/bindings'))})({ bindings: 'rxtrace', module_root: ${JSON.stringify(ROOT)} })`;

// PERF_RECORD_* types and the batch layout documented in src/native.ts.
const PERF_RECORD_LOST = 2;
const PERF_RECORD_SAMPLE = 9;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function onlineCpus(): number[] {
  const cpus: number[] = [];
  for (const part of fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    for (let c = lo; c <= (hi ?? lo); c++) cpus.push(c);
  }
  return cpus;
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function perfFdCount(): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[perf_event]') n++;
    } catch {
      // the fd readdir itself used is gone by now
    }
  }
  return n;
}

/** The `drops` column of the 127.0.0.1:port row of /proc/net/udp. */
function socketDrops(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const t = line.trim().split(/\s+/);
    if (t[1] === local) return Number(t[t.length - 1]);
  }
  throw new Error(`no /proc/net/udp row for ${local}`);
}

/**
 * `drops` once it stops moving. Loopback delivery usually finishes inside sendmsg, but on a
 * loaded machine the softirq may fall to ksoftirqd and land later.
 */
async function settledDrops(port: number): Promise<number> {
  let last = socketDrops(port);
  for (let i = 0; i < 40; i++) {
    await sleep(50);
    const now = socketDrops(port);
    if (now === last) return now;
    last = now;
  }
  return last;
}

/** An unread UDP socket with the smallest rcvbuf, in a python3 child (node's dgram always reads). */
async function startSink(): Promise<{ port: number; child: ChildProcess }> {
  const code = [
    'import socket, sys',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)',
    "s.bind(('127.0.0.1', 0))",
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (c) => reject(new Error(`sink exited early (${c})`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
  });
  return { port, child };
}

async function sendDatagrams(port: number, n: number): Promise<void> {
  const sock = dgram.createSocket('udp4');
  const payload = Buffer.alloc(16, 0x61);
  try {
    await new Promise<void>((resolve, reject) => {
      let left = n;
      for (let i = 0; i < n; i++) {
        sock.send(payload, port, '127.0.0.1', (err) => {
          if (err) reject(err);
          else if (--left === 0) resolve();
        });
      }
    });
  } finally {
    sock.close();
  }
}

interface Tally {
  samples: number;
  matching: number;
  lost: number;
  times: bigint[];
  cpuMismatch: number;
}

/** Walks batches in the layout of src/native.ts and counts this test's samples. */
function tally(batches: ArrayBuffer[], id: number, port: number): Tally {
  const t: Tally = { samples: 0, matching: 0, lost: 0, times: [], cpuMismatch: 0 };
  for (const ab of batches) {
    const v = new DataView(ab);
    let off = 0;
    while (off < ab.byteLength) {
      const ringCpu = v.getUint32(off, true);
      const type = v.getUint32(off + 8, true);
      const size = v.getUint16(off + 14, true);
      expect(size % 8).toBe(0);
      if (type === PERF_RECORD_SAMPLE) {
        t.samples++;
        if (v.getUint32(off + 32, true) !== ringCpu) t.cpuMismatch++;
        const raw = off + 44;
        if (v.getUint16(raw, true) === id && v.getUint16(raw + 14, true) === port) {
          t.matching++;
          t.times.push(v.getBigUint64(off + 24, true));
        }
      } else if (type === PERF_RECORD_LOST) {
        t.lost += Number(v.getBigUint64(off + 24, true));
      }
      off += 8 + size;
    }
    expect(off).toBe(ab.byteLength);
  }
  return t;
}

describeLive('native addon: perf_event_open on udp:udp_fail_queue_rcv_skb', () => {
  let native: NativeAddon;
  let id: number;
  let cpus: number[];
  let mountedTracefs = false;
  let sink: { port: number; child: ChildProcess };
  // Every session a test opens, so a failing test cannot leave a reader running.
  const opened: NativePerfSession[] = [];
  const open = (opts: NativeSessionOptions, onBatch: (b: ArrayBuffer) => void): NativePerfSession => {
    const session = new native.PerfSession(opts, onBatch);
    opened.push(session);
    return session;
  };

  const options = (events: NativeEventSpec[], over: Partial<NativeSessionOptions> = {}): NativeSessionOptions => ({
    events,
    cpus,
    ringPages: 64,
    wakeupBytes: 16384,
    flushMs: 20,
    batchBytes: 256 * 1024,
    maxQueuedBatches: 64,
    ...over,
  });

  beforeAll(async () => {
    if (!fs.existsSync(`${TRACEFS}/events`)) {
      execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS]);
      mountedTracefs = true;
      console.info(`[rxtrace test] mounted tracefs on ${TRACEFS}`);
    }
    id = Number(fs.readFileSync(`${EVENT_DIR}/id`, 'utf8'));
    cpus = onlineCpus();
    native = loadNative();
    sink = await startSink();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    sink?.child.kill();
    if (mountedTracefs) {
      execFileSync('umount', [TRACEFS]);
      console.info(`[rxtrace test] unmounted tracefs from ${TRACEFS}`);
    }
  });

  it('traces every rcvbuf drop of a socket: samples == drops delta, nothing lost', async () => {
    const { port } = sink;
    const batches: ArrayBuffer[] = [];
    // 1 MiB rings hold all 5000 records (~120 bytes each) even if this busy machine leaves
    // the reader unscheduled for the whole flood: loss here would be a bug, not load.
    const session = open(options([{ id, filter: portFilter(K, port) }], { ringPages: 256 }), (b) =>
      batches.push(b),
    );
    await session.start();
    const before = socketDrops(port);
    const t0 = process.hrtime.bigint();

    await sendDatagrams(port, 5000);
    const drops = (await settledDrops(port)) - before;
    await session.close();
    const t1 = process.hrtime.bigint();

    const t = tally(batches, id, port);
    const stats = session.stats();
    expect(drops).toBeGreaterThan(4000);
    expect(t.matching).toBe(drops);
    expect(t.samples).toBe(t.matching); // the in-kernel filter let nothing else through
    expect(t.lost).toBe(0);
    expect(stats.lostPerCpu).toEqual(cpus.map(() => 0));
    expect(stats.samples).toBe(t.samples);
    expect(stats.batches).toBe(batches.length);
    expect(stats.bytes).toBe(batches.reduce((n, b) => n + b.byteLength, 0));
    expect(t.cpuMismatch).toBe(0);
    // CLOCK_MONOTONIC, the clock of process.hrtime.
    for (const time of t.times) {
      expect(time >= t0 && time <= t1).toBe(true);
    }
  });

  it('clockOffsetNs() is CLOCK_REALTIME - CLOCK_MONOTONIC', () => {
    const offset = native.clockOffsetNs();
    expect(typeof offset).toBe('bigint');
    const wallNs = BigInt(Date.now()) * 1_000_000n;
    const estimate = offset + process.hrtime.bigint();
    const diff = estimate > wallNs ? estimate - wallNs : wallNs - estimate;
    expect(diff < 50_000_000n).toBe(true);
  });

  it('close() twice: both settle, stats() still works, no fd left', async () => {
    const fds = fdCount();
    const session = open(options([{ id }]), () => {});
    expect(native.openSessionCount()).toBe(1);
    await session.start();
    const [a, b] = [session.close(), session.close()];
    await Promise.all([a, b]);
    await session.close();
    expect(session.stats().lostPerCpu).toHaveLength(cpus.length);
    expect(native.openSessionCount()).toBe(0);
    expect(fdCount()).toBe(fds);
    await expect(session.start()).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
  });

  it('5 open/start/close cycles leave the fd count and openSessionCount unchanged', async () => {
    const fds = fdCount();
    for (let i = 0; i < 5; i++) {
      const session = open(options([{ id, filter: portFilter(K, sink.port) }, { id }]), () => {});
      expect(native.openSessionCount()).toBe(1);
      if (i % 2 === 0) await session.start(); // odd rounds close a session that never started
      await session.close();
      expect(native.openSessionCount()).toBe(0);
    }
    expect(fdCount()).toBe(fds);
    expect(perfFdCount()).toBe(0);
  });

  it('a bad filter throws EINVAL from SET_FILTER and leaves no fd', () => {
    const fds = fdCount();
    let err: NativeError | undefined;
    try {
      new native.PerfSession(options([{ id, filter: 'nosuchfield == 1' }]), () => {});
    } catch (e) {
      err = e as NativeError;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err!.code).toBe('EINVAL');
    expect(err!.errno).toBe(-22);
    expect(err!.syscall).toContain('SET_FILTER');
    expect(err!.eventId).toBe(id);
    expect(cpus).toContain(err!.cpu);
    expect(err!.message).toContain('nosuchfield');
    expect(fdCount()).toBe(fds);
    expect(native.openSessionCount()).toBe(0);
  });

  it('an unknown tracepoint id throws from perf_event_open and leaves no fd', () => {
    const fds = fdCount();
    let err: NativeError | undefined;
    try {
      new native.PerfSession(options([{ id: 999999 }]), () => {});
    } catch (e) {
      err = e as NativeError;
    }
    expect(['ENOENT', 'EINVAL']).toContain(err?.code);
    expect(err!.syscall).toBe('perf_event_open');
    expect(err!.errno).toBeLessThan(0);
    expect(err!.message).toMatch(/^perf_event_open\(tracepoint 999999, cpu \d+\): /);
    expect(fdCount()).toBe(fds);
  });

  it('rejects bad options with TypeError/RangeError before opening anything', () => {
    const fds = fdCount();
    expect(() => new native.PerfSession(options([{ id }], { ringPages: 3 }), () => {})).toThrow(RangeError);
    expect(() => new native.PerfSession(options([]), () => {})).toThrow(TypeError);
    expect(() => new native.PerfSession(options([{ id }]), 'nope' as never)).toThrow(TypeError);
    expect(fdCount()).toBe(fds);
  });

  it("an unref()'d session lets the process exit; a ref'd one keeps it alive", async () => {
    const script = (unref: boolean) => `
      const native = ${REQUIRE_ADDON};
      const s = new native.PerfSession({ events: [{ id: ${id} }], cpus: [${cpus[0]}], ringPages: 8,
        wakeupBytes: 4096, flushMs: 50, batchBytes: 65536, maxQueuedBatches: 4 }, () => {});
      s.start().then(() => { ${unref ? 's.unref();' : ''} console.log('started'); });`;
    const run = (unref: boolean) => {
      const child = spawn(process.execPath, ['-e', script(unref)], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Timed from 'started', not from spawn: node's own startup is slow on a loaded machine.
      const started = new Promise<boolean>((resolve) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('started')) resolve(true);
        });
        child.once('exit', () => resolve(out.includes('started')));
      });
      return { child, exited, started };
    };
    const within = <T,>(p: Promise<T>, ms: number) =>
      Promise.race([p, sleep(ms).then(() => 'timeout' as const)]);

    const unrefd = run(true);
    const refd = run(false);
    try {
      expect(await within(unrefd.started, 20_000)).toBe(true);
      expect(await within(unrefd.exited, 3000)).toBe(0);

      expect(await within(refd.started, 20_000)).toBe(true);
      // Still running: the ref'd session holds the event loop open.
      expect(await within(refd.exited, 1500)).toBe('timeout');
    } finally {
      for (const { child, exited } of [unrefd, refd]) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      }
    }
  });

  it('a session collected without close() closes its fds', async () => {
    const script = `
      const native = ${REQUIRE_ADDON};
      const fs = require('fs');
      const perfFds = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
        try { return fs.readlinkSync('/proc/self/fd/' + fd) === 'anon_inode:[perf_event]'; } catch { return false; }
      }).length;
      (function () {
        new native.PerfSession({ events: [{ id: ${id} }], cpus: ${JSON.stringify(cpus)}, ringPages: 8,
          wakeupBytes: 4096, flushMs: 50, batchBytes: 65536, maxQueuedBatches: 4 }, () => {});
      })();
      const opened = perfFds();
      (async () => {
        for (let i = 0; i < 10 && native.openSessionCount() > 0; i++) {
          globalThis.gc();
          await new Promise((r) => setTimeout(r, 20));
        }
        console.log(JSON.stringify({ opened, open: native.openSessionCount(), fds: perfFds() }));
      })();`;
    const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ opened: cpus.length, open: 0, fds: 0 });
  });

  it('terminating a worker mid-trace stops its reader and closes its fds', async () => {
    const baseline = perfFdCount();
    const worker = new Worker(
      `const { parentPort } = require('worker_threads');
       const native = ${REQUIRE_ADDON};
       let batches = 0;
       const s = new native.PerfSession({ events: [{ id: ${id}, filter: '${portFilter(K, sink.port)}' }],
         cpus: ${JSON.stringify(cpus)}, ringPages: 16, wakeupBytes: 4096, flushMs: 5,
         batchBytes: 4096, maxQueuedBatches: 4 }, () => { batches++; });
       s.start().then(() => parentPort.postMessage('started'));`,
      { eval: true },
    );
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(perfFdCount()).toBe(baseline + cpus.length);
    const flood = sendDatagrams(sink.port, 3000);
    await sleep(5);
    await worker.terminate();
    await flood;
    expect(perfFdCount()).toBe(baseline);
    expect(native.openSessionCount()).toBe(0); // the main thread's env never had one
  });

  it('a slow consumer becomes counted loss, not memory: samples + lost == drops', async () => {
    const { port } = sink;
    const batches: ArrayBuffer[] = [];
    let slow = true;
    const session = open(
      // A one-page ring and a one-batch queue: the flood overflows them at once.
      options([{ id, filter: portFilter(K, port) }], { ringPages: 1, wakeupBytes: 1024, batchBytes: 1024, maxQueuedBatches: 1 }),
      (b) => {
        batches.push(b);
        const until = Date.now() + (slow ? 20 : 0);
        while (Date.now() < until) {
          // a consumer that cannot keep up
        }
      },
    );
    await session.start();
    const before = socketDrops(port);
    await sendDatagrams(port, 5000);
    await sleep(100);
    slow = false;
    // The queue drains and the reader empties the rings: wait until deliveries stop.
    for (let last = -1, i = 0; i < 40 && session.stats().bytes !== last; i++) {
      last = session.stats().bytes;
      await sleep(50);
    }
    // No record follows the flood, so the kernel still owes each ring its PERF_RECORD_LOST:
    // close() must find that loss through read(PERF_FORMAT_LOST) and report it.
    const drops = (await settledDrops(port)) - before;
    await session.close();

    const t = tally(batches, id, port);
    const stats = session.stats();
    expect(stats.stalls).toBeGreaterThan(0);
    expect(t.lost).toBeGreaterThan(0);
    expect(stats.lostPerCpu.reduce((a, b) => a + b, 0)).toBe(t.lost);
    expect(t.matching + t.lost).toBe(drops);
    // Bounded: each batch is at most batchBytes plus one record.
    for (const b of batches) expect(b.byteLength).toBeLessThan(1024 + 512);
  });
});
