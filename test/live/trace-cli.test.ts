// Live end-to-end tests of `rxtrace trace` (the built CLI, bin/rxtrace.js → dist/): NDJSON that
// JSON.parse and jq both accept, counts that match the kernel's drops column, the lifecycle
// (--duration, --count, SIGINT, a reader that goes away), text output, and bad input with its
// exit codes. Run `npm run build` first. Counts are scoped to sockets and ports of our own.
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { accessSync, constants, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { assertBuilt, cliCommand, CLI, onlineCpuCount, runCli, runShell, startCli, stopAllCli, type CliResult, TIME_SCALE } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { ALWAYS, eventPort, expectUdpFields, itOnKernel, kernelLayout, portFilter, portFilterArgs } from '../helpers/kernel.js';
import { leftoverNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/ports.js';
import { pollUntil, udpSocketDrops, settledSinkUdpDrops as settledUdpDrops, sinkUdpDrops as udpDrops } from '../helpers/procnet-read.js';
import { addrPort, runningRxflood, rxfloodPath, send, startSink, stopAllRxflood, type Sink } from '../helpers/rxflood.js';
import { EXIT } from '../../src/cli/exit-codes.js';

/** What this kernel's tracepoints can show (lport before 6.10, dport after…). */
const K = await kernelLayout();

const N = 20_000;
const RFC3339_NS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;
const SUMMARY = /^rxtrace: (\d+) events in [\d.]+ s.*, (\d+) lost/m;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Json {
  [k: string]: unknown;
}

/** Every stdout line, parsed; throws naming the first line that is not JSON. */
function parseLines(stdout: string): Json[] {
  const lines = stdout.split('\n');
  expect(lines.pop(), 'stdout ends with a newline').toBe('');
  return lines.map((l, i) => {
    try {
      return JSON.parse(l) as Json;
    } catch (e) {
      throw new Error(`stdout line ${i + 1} is not JSON (${(e as Error).message}): ${l.slice(0, 200)}`);
    }
  });
}

/** Lines jq accepts (`jq -c .`): a second, independent NDJSON parser. */
function jqLineCount(stdout: string): number {
  const out = execFileSync('jq', ['-c', '.'], { input: stdout, maxBuffer: 1 << 30, encoding: 'utf8' });
  return out.split('\n').filter((l) => l.length > 0).length;
}


/** A steady, gentle stream of datagrams from this process (leaves the CPUs to the tracer). */
function drizzle(host: string, port: number, perTick = 100, everyMs = 10): { stop(): Promise<number> } {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const payload = Buffer.alloc(16, 0x61);
  let sent = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) sock.send(payload, port, host, () => undefined);
    sent += perTick;
  }, everyMs);
  return {
    stop: () =>
      new Promise((resolve) => {
        clearInterval(timer);
        sock.close(() => resolve(sent));
      }),
  };
}

/** stderr of a failed run: one error line, `rxtrace:` on every line, never a stack trace. */
function expectCleanError(r: CliResult, code: number): string {
  expect(r.timedOut).toBe(false);
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr).not.toContain('    at ');
  const lines = r.stderr.trimEnd().split('\n');
  for (const l of lines) expect(l, 'every stderr line starts with "rxtrace:"').toMatch(/^rxtrace: /);
  return lines[lines.length - 1];
}

const cpus = onlineCpuCount();

describeLive('rxtrace trace (CLI, live)', () => {
  beforeAll(() => {
    assertBuilt();
  });

  afterEach(async () => {
    await stopAllCli();
    await stopAllRxflood();
  });

  afterAll(() => {
    expect(runningRxflood()).toEqual([]);
    expect(leftoverNetns()).toEqual([]);
  });

  for (const [label, host, type] of [
    ['127.0.0.1', '127.0.0.1', 'udp4'],
    ['[::1]', '::1', 'udp6'],
  ] as const) {
    // IPv6 UDP drops fire the udp event only from 6.5 on: before, the case cannot exist
    itOnKernel(`NDJSON for a ${label} flood: every line parses (JSON.parse and jq), one line per drop of our socket, lost 0`, type === 'udp6' ? K.need.udp6Event : ALWAYS, async () => {
      const port = await freePort(type);
      const sink = await startSink({ bind: addrPort(host, port), rcvbuf: 1 });
      const cli = startCli(['trace', ...portFilterArgs(K, port), '--ring-pages', '2048']);
      await cli.waitForPerfFds(1 * cpus);
      const before = udpDrops(sink);
      const t0 = Date.now();
      await send({ to: addrPort(host, port), count: N });
      const t1 = Date.now();
      const delta = (await settledUdpDrops(sink, before + N * 0.9)) - before;
      await cli.waitForLines(delta); // readiness: every drop the kernel counted is printed
      cli.signal('SIGINT');
      const r = await cli.exited;
      expect(r.code, r.stderr).toBe(0);
      const recs = parseLines(r.stdout);
      expect(jqLineCount(r.stdout)).toBe(recs.length);
      const lost = recs.filter((x) => x.event === 'lost');
      const drops = recs.filter((x) => x.event === 'udp:udp_fail_queue_rcv_skb');
      console.log(`[trace-cli] ${label}:${port}: drops Δ ${delta}, NDJSON lines ${recs.length} (udp ${drops.length}, lost records ${lost.length}); ${r.stderr.trim().split('\n').pop()}`);
      expect(lost).toEqual([]);
      expect(drops.length).toBe(recs.length);
      expect(drops.length).toBe(delta);
      const m = SUMMARY.exec(r.stderr);
      expect(m, r.stderr).not.toBeNull();
      expect(Number(m![1])).toBe(delta);
      expect(Number(m![2])).toBe(0);
      for (const e of drops) {
        const f = e.fields as Json;
        expect(f.rc).toBe(-12);
        expectUdpFields(K, f, { port, family: type === 'udp4' ? 'AF_INET' : 'AF_INET6', daddr: addrPort(host, port) });
        expect(e.time).toMatch(RFC3339_NS);
        const t = Date.parse((e.time as string).slice(0, 23) + 'Z');
        expect(t).toBeGreaterThanOrEqual(t0 - 5000);
        expect(t).toBeLessThanOrEqual(t1 + 5000);
        expect(e.match).toBe('address');
        expect((e.socket as Json).inode).toBe(sink.inode);
        // the contract's key order (DESIGN.md)
        expect(Object.keys(e)).toEqual(['time', 'cpu', 'pid', 'tid', 'event', 'fields', 'match', 'socket']);
      }
    });
  }

  it('--port A: of two flooded sinks only A appears, one line per drop of A', async () => {
    const a = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const b = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const cli = startCli(['trace', '--port', String(a.port), '--ring-pages', '2048']);
    await cli.waitForPerfFds(3 * cpus);
    const a0 = udpDrops(a);
    const b0 = udpDrops(b);
    await Promise.all([send({ to: addrPort('127.0.0.1', a.port), count: N }), send({ to: addrPort('127.0.0.1', b.port), count: N })]);
    const da = (await settledUdpDrops(a, a0 + N * 0.9)) - a0;
    const db = (await settledUdpDrops(b, b0 + N * 0.9)) - b0;
    await cli.waitForLines(da); // readiness: every drop on A is printed (B's are filtered out)
    cli.signal('SIGINT');
    const r = await cli.exited;
    expect(r.code, r.stderr).toBe(0);
    const recs = parseLines(r.stdout);
    const ports = new Map<unknown, number>();
    for (const e of recs) if (e.event === 'udp:udp_fail_queue_rcv_skb') ports.set(eventPort(K, e.fields as Json), (ports.get(eventPort(K, e.fields as Json)) ?? 0) + 1);
    console.log(`[trace-cli] --port ${a.port}: A drops Δ ${da}, lines ${ports.get(a.port)}; B drops Δ ${db}, lines ${ports.get(b.port) ?? 0}`);
    expect(db).toBeGreaterThanOrEqual(N * 0.9);
    expect(ports.get(a.port)).toBe(da);
    expect([...ports.keys()]).toEqual([a.port]);
    expect(recs.filter((e) => e.event === 'lost')).toEqual([]);
  });

  it('`trace --format ndjson -d 3` during a flood: exit 0 after ~3 s, NDJSON that jq parses, our drops among the lines', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const cli = startCli(['trace', '--format', 'ndjson', '-d', '3', '--ring-pages', '2048']);
    await cli.waitForPerfFds(3 * cpus);
    const before = udpDrops(sink);
    await send({ to: addrPort('127.0.0.1', sink.port), count: N });
    const delta = (await settledUdpDrops(sink, before + N * 0.9)) - before;
    const r = await cli.exited;
    expect(r.code, r.stderr).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(3000);
    const recs = parseLines(r.stdout);
    expect(recs.length).toBeGreaterThan(0);
    expect(jqLineCount(r.stdout)).toBe(recs.length);
    const ours = recs.filter((e) => e.event === 'udp:udp_fail_queue_rcv_skb' && eventPort(K, e.fields as Json) === sink.port);
    console.log(`[trace-cli] -d 3: exit after ${r.ms} ms, ${recs.length} lines, ours ${ours.length} of drops Δ ${delta}`);
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.length).toBeLessThanOrEqual(delta);
    for (const e of recs) expect(['udp:udp_fail_queue_rcv_skb', 'sock:sock_rcvqueue_full', 'sock:sock_exceed_buf_limit', 'lost']).toContain(e.event);
    expect(r.stderr).toMatch(SUMMARY);
  });

  it('`rxtrace trace | head -1` exits 0 within 5 s with exactly one NDJSON line (the default format on a pipe)', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const d = drizzle('127.0.0.1', sink.port);
    try {
      const r = await runShell(`set -o pipefail; ${cliCommand(['trace', '--port', String(sink.port)])} | head -1`, { timeoutMs: 30_000 });
      console.log(`[trace-cli] | head -1: exit ${r.code} after ${r.ms} ms`);
      expect(r.timedOut).toBe(false);
      expect(r.code, r.stderr).toBe(0);
      expect(r.ms).toBeLessThan(5000 * TIME_SCALE);
      const recs = parseLines(r.stdout);
      expect(recs).toHaveLength(1);
      expect(recs[0].event).toBe('udp:udp_fail_queue_rcv_skb');
      expect(r.stderr).not.toContain('    at ');
      expect(r.stderr).not.toMatch(/EPIPE|internal error/);
    } finally {
      await d.stop();
    }
  });

  it('SIGINT: exit 0 with a summary on stderr (events in … s, lost), every drop printed', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const cli = startCli(['trace', '--port', String(sink.port)]);
    await cli.waitForPerfFds(3 * cpus);
    const before = udpDrops(sink);
    const d = drizzle('127.0.0.1', sink.port);
    await sleep(1000);
    await d.stop();
    const delta = (await settledUdpDrops(sink, before + 1)) - before;
    const t = Date.now();
    cli.signal('SIGINT');
    const r = await cli.exited;
    const recs = parseLines(r.stdout);
    console.log(`[trace-cli] SIGINT: exit ${r.code} ${Date.now() - t} ms after the signal, drops Δ ${delta}, lines ${recs.length}; stderr ${JSON.stringify(r.stderr.trim().split('\n').pop())}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.stderr).not.toContain('    at ');
    // (when this fails with an empty stderr: the process exited with runTrace still pending,
    // see the close() test in trace-counts.test.ts)
    const m = SUMMARY.exec(r.stderr);
    expect(m, `no summary on stderr: ${JSON.stringify(r.stderr)}`).not.toBeNull();
    expect(recs.filter((e) => e.event === 'lost')).toEqual([]);
    expect(recs.length).toBe(delta);
    expect(Number(m![1])).toBe(delta);
  });

  it('--count 5 prints exactly 5 lines and exits 0', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const d = drizzle('127.0.0.1', sink.port);
    try {
      const r = await runCli(['trace', '--port', String(sink.port), '--count', '5'], { timeoutMs: 30_000 });
      console.log(`[trace-cli] --count 5: exit ${r.code} after ${r.ms} ms`);
      expect(r.code, r.stderr).toBe(0);
      const recs = parseLines(r.stdout);
      expect(recs).toHaveLength(5);
      for (const e of recs) {
        expect(e.event).toBe('udp:udp_fail_queue_rcv_skb');
        expect(eventPort(K, e.fields as Json)).toBe(sink.port);
      }
      // The summary counts the lines printed, not every event the tracer delivered.
      const m = SUMMARY.exec(r.stderr);
      expect(m, r.stderr).not.toBeNull();
      expect(Number(m![1])).toBe(5);
      expect(r.stderr).toMatch(/^rxtrace: 5 events in [\d.]+ s \(udp:udp_fail_queue_rcv_skb 5\), 0 lost/m);
    } finally {
      await d.stop();
    }
  });

  it('--count 5 under a flood that overflows the rings: still exactly 5 drop lines, exit 0', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    // a flood that lasts until the CLI is done (however slow its start on a busy machine)
    const flood = spawn(rxfloodPath(), ['send', '--to', addrPort('127.0.0.1', sink.port), '--duration', '120'], { stdio: 'ignore' });
    const floodExited = new Promise((r) => flood.once('close', r));
    try {
      await pollUntil(() => udpDrops(sink), (x) => x > 1000, 5000);
      const r = await runCli(['trace', '--port', String(sink.port), '--count', '5'], { timeoutMs: 60_000 });
      const recs = parseLines(r.stdout);
      const drops = recs.filter((e) => e.event !== 'lost');
      console.log(`[trace-cli] --count 5 in a flood: exit ${r.code} after ${r.ms} ms, ${drops.length} drop lines + ${recs.length - drops.length} lost lines; ${r.stderr.trim().split('\n').pop()}`);
      expect(r.code, r.stderr).toBe(0);
      expect(drops).toHaveLength(5);
      for (const e of drops) expect(eventPort(K, e.fields as Json)).toBe(sink.port);
      // The summary: the 5 printed (not the hundreds delivered while the tracer stopped), the
      // lost samples of the lost lines printed, and what was delivered beyond --count said apart.
      const m = SUMMARY.exec(r.stderr);
      expect(m, r.stderr).not.toBeNull();
      expect(Number(m![1])).toBe(5);
      expect(Number(m![2])).toBe(recs.reduce((a, e) => a + (typeof e.lost === 'number' ? e.lost : 0), 0));
      const more = /not printed: (\d+) more events delivered after --count 5 \((\d+) events delivered in all\)/.exec(r.stderr);
      if (more) {
        expect(Number(more[1])).toBeGreaterThan(0);
        expect(Number(more[2])).toBe(5 + Number(more[1]));
      }
    } finally {
      flood.kill('SIGTERM');
      await floodExited;
    }
  });

  it('--duration 1 exits 0 after about a second', async () => {
    const port = await freePort();
    const r = await runCli(['trace', '--port', String(port), '--duration', '1'], { timeoutMs: 30_000 });
    console.log(`[trace-cli] --duration 1: exit ${r.code} after ${r.ms} ms`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(1000);
    expect(r.ms).toBeLessThan(5000 * TIME_SCALE);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^rxtrace: 0 events in \d+\.\d s, 0 lost/m);
  });

  it('--format text: readable lines with the socket local address, inode and owner', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxt-textsink' });
    const cli = startCli(['trace', '--format', 'text', '--port', String(sink.port)]);
    await cli.waitForPerfFds(3 * cpus);
    await send({ to: addrPort('127.0.0.1', sink.port), count: 50 });
    await cli.waitForLines(45); // readiness: the drops are printed
    cli.signal('SIGINT');
    const r = await cli.exited;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^rxtrace: tracing udp:udp_fail_queue_rcv_skb \\[${portFilter(K, sink.port)}\\]`, 'm'));
    const lines = r.stdout.trimEnd().split('\n');
    console.log(`[trace-cli] text: ${lines.length} lines, e.g. ${lines[0]}`);
    expect(lines.length).toBeGreaterThanOrEqual(45);
    for (const l of lines) {
      expect(() => JSON.parse(l)).toThrow();
      expect(l).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{6} cpu\d+ udp_fail_queue_rcv_skb /);
      // the packet's addresses since 6.10; before, the event has only the local port
      expect(l).toContain(K.udp.addresses ? `> 127.0.0.1:${sink.port}` : `lport=${sink.port}`);
      expect(l).toContain(`udp 127.0.0.1:${sink.port} inode=${sink.inode}`);
      expect(l).toContain(`rxt-textsink[${sink.pid}]`);
      expect(l).toContain('rc=-12');
    }
  });

  it('output is live: a handful of drops reaches stdout within 3 s, while tracing goes on', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    const cli = startCli(['trace', '--port', String(sink.port)]);
    await cli.waitForPerfFds(3 * cpus);
    const before = udpDrops(sink);
    await send({ to: addrPort('127.0.0.1', sink.port), count: 5 });
    const delta = (await settledUdpDrops(sink, before + 1)) - before;
    expect(delta).toBeGreaterThan(0);
    let seen = true;
    try {
      await cli.waitForLines(delta, 3000);
    } catch {
      seen = false;
    }
    const bytesWhileRunning = cli.stdoutBytes;
    cli.signal('SIGINT');
    const r = await cli.exited;
    console.log(`[trace-cli] live output: ${delta} drops, stdout bytes while running ${bytesWhileRunning}, lines at exit ${parseLines(r.stdout).length}`);
    expect(parseLines(r.stdout), `lines at exit; stderr: ${JSON.stringify(r.stderr)}`).toHaveLength(delta); // everything arrives in the end…
    expect(seen, `no NDJSON line on stdout 3 s after ${delta} drops (stdout bytes so far: ${bytesWhileRunning})`).toBe(true); // …but not live
  });

  // ---- bad input ----

  it('unknown event: exit 2, and the message suggests the real name', async () => {
    const r = await runCli(['trace', '-e', 'udp:udp_fail_queue_rcv', '-d', '1']);
    const msg = expectCleanError(r, EXIT.USAGE);
    expect(msg).toContain('udp:udp_fail_queue_rcv_skb');
    expect(msg).toMatch(/did you mean/);
  });

  it('filter on a field no event has: exit 2, and the message lists the fields', async () => {
    const r = await runCli(['trace', '--filter', 'nosuchfield == 1', '-d', '1']);
    const msg = expectCleanError(r, EXIT.USAGE);
    expect(msg).toContain('nosuchfield');
    expect(msg).toMatch(new RegExp(`fields are: .*${K.udp.portField}`));
  });

  it('filter the kernel rejects: exit 2 with "rejected" and the fields', async () => {
    const r = await runCli(['trace', '--filter', `${K.udp.portField} == == 3`, '-d', '1']);
    const msg = expectCleanError(r, EXIT.USAGE);
    expect(msg).toMatch(/rejected by the kernel/);
    expect(msg).toContain(`${K.udp.portField} == == 3`);
  });

  it('unknown --reason: exit 2', async () => {
    const r = await runCli(['trace', '--reason', 'NOSUCH', '-d', '1']);
    const msg = expectCleanError(r, EXIT.USAGE);
    expect(msg).toMatch(/unknown drop reason "NOSUCH"/);
  });

  it('option parsing errors (--duration abc, --count 0, --port 70000, --format xml): exit 2 with one "rxtrace:" line naming the option', async () => {
    const cases = [
      ['--duration', 'abc'],
      ['--count', '0'],
      ['--port', '70000'],
      ['--format', 'xml'],
    ];
    const results = await Promise.all(cases.map((args) => runCli(['trace', ...args])));
    results.forEach((r, i) => {
      const [opt] = cases[i];
      expect.soft(r.code, `${cases[i].join(' ')}: exit code`).toBe(EXIT.USAGE);
      expect.soft(r.stdout, `${cases[i].join(' ')}: stdout`).toBe('');
      expect.soft(r.stderr, `${cases[i].join(' ')}: no stack trace`).not.toContain('    at ');
      expect.soft(r.stderr, `${cases[i].join(' ')}: names the option`).toContain(opt);
      expect.soft(r.stderr.trimEnd().split('\n'), `${cases[i].join(' ')}: one stderr line starting with "rxtrace:"`).toEqual([expect.stringMatching(/^rxtrace: /)]);
    });
  });

  // ---- not root ----

  const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

  /** Whether uid 65534 can read the CLI, dist/ and node_modules (it needs nothing else). */
  function nobodyCanRun(): string | undefined {
    try {
      execFileSync(nobody[0], [...nobody.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(CLI)}, 4)`], { stdio: 'pipe' });
      return undefined;
    } catch (e) {
      return `uid 65534 cannot read ${CLI}: ${(e as { stderr?: Buffer }).stderr?.toString().trim()}`;
    }
  }

  it('not root: exit 77 (or 69 when tracefs is unreadable first), naming root/CAP_PERFMON or tracefs, with a hint', async () => {
    accessSync(CLI, constants.R_OK);
    const why = nobodyCanRun();
    if (why) throw new Error(`${why}: make /work readable by others to run this test (nothing was copied)`);
    const r = await runCli(['trace', '-d', '1'], { prefix: nobody, timeoutMs: 30_000 });
    console.log(`[trace-cli] as nobody: exit ${r.code}: ${r.stderr.trim()}`);
    expect([EXIT.NOPERM, EXIT.UNAVAILABLE]).toContain(r.code);
    const msg = expectCleanError(r, r.code!);
    expect(msg).toMatch(/root|CAP_PERFMON|tracefs/);
    expect(msg).toMatch(/\(.+\)$/); // the hint
  });

  it('not root with tracefs mounted but unreadable: the message does not claim tracefs is "not mounted"', async () => {
    const mounted = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[2] === 'tracefs');
    expect(mounted, 'precondition: tracefs is mounted').toBe(true);
    const why = nobodyCanRun();
    if (why) throw new Error(why);
    const r = await runCli(['trace', '-d', '1'], { prefix: nobody, timeoutMs: 30_000 });
    expect([EXIT.NOPERM, EXIT.UNAVAILABLE]).toContain(r.code);
    expect(r.stderr).not.toMatch(/not mounted/);
    expect(r.stderr).toMatch(/permission|denied|root|CAP_PERFMON/i);
  });
});
