// Counting mode, live: the kernel counts each traced drop in a perf counting fd (no ring, no
// sample). For a flood into a socket of our own, the count must equal `perf stat`'s for the
// same tracepoint and filter, and the socket's own drops; `serve` (counting, the default) must
// export the socket's series equal to the kernel's drops, and so must `serve --mode events`.
// The filter comes from the kernel's format file through the product's plan (`dport` since
// 6.10, `lport` before), and perf stat is given the very same text.
// Other engineers' live tests may drop elsewhere meanwhile: every count here is scoped to our port.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { openCounters } from '../../src/counting.js';
import { describeLive } from '../helpers/live.js';
import { freePort } from '../helpers/ports.js';
import { pollUntil, settledUdpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'rxtrace.js');
const UDP = 'udp:udp_fail_queue_rcv_skb';
const STORM = 20_000;
const children = new Set<ChildProcess>();

function spawnTracked(cmd: string, args: string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, out: () => out, err: () => err, exited };
}

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** rxtrace_drops_total samples of one event: `table local comm` → value. */
function dropSeries(body: string, event: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of body.matchAll(/^rxtrace_drops_total\{event="([^"]*)",table="([^"]*)",local="([^"]*)",comm="([^"]*)"\} (\S+)$/gm)) {
    if (m[1] === event) out.set(`${m[2]} ${m[3]} ${m[4]}`, Number(m[5]));
  }
  return out;
}

async function startServe(args: string[]) {
  const s = spawnTracked(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', ...args]);
  const m = await pollUntil(() => /serving http:\/\/127\.0\.0\.1:(\d+)\/metrics \(([^;]*);/.exec(s.err()), (x) => x !== null, 30_000, 50);
  if (!m) throw new Error(`rxtrace serve did not start: ${s.err()}`);
  return { ...s, port: Number(m[1]), what: m[2] };
}

describeLive('counting mode (perf counting fds): equal to perf stat and to the socket\'s drops', () => {
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await stopAllRxflood();
  });

  it('a flood counts the same in rxtrace\'s counters, in perf stat and in the socket\'s drops', async () => {
    const port = await freePort();
    const sink = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, comm: 'rxcnt-sink' });
    const counters = await openCounters({ port, notice: () => undefined });
    try {
      expect(counters.events).toEqual([UDP]); // the others have no port field to filter on
      const filter = counters.plan.events[0].filter!;
      expect(filter).toMatch(new RegExp(`^(dport|lport) == ${port}$`));
      const before = counters.read().get(UDP)!;
      const drops0 = await settledUdpSocketDrops(sink.inode);
      // perf stat prints "go" from its workload once its counters are enabled; the flood
      // starts after that and ends before the workload does.
      const perf = spawnTracked('perf', ['stat', '-a', '-x', ',', '-e', UDP, '--filter', filter, '--', 'sh', '-c', 'echo go; sleep 4']);
      await pollUntil(() => perf.out(), (o) => o.includes('go'), 15_000);
      expect(perf.out()).toContain('go');
      const sent = await send({ to: addrPort('127.0.0.1', port), count: STORM });
      const drops = (await settledUdpSocketDrops(sink.inode)) - drops0;
      const ours = counters.read().get(UDP)! - before;
      expect(await perf.exited).toBe(0);
      const line = perf.err().split('\n').find((l) => l.includes(UDP));
      const perfCount = Number(line?.split(',')[0]);
      console.info(`[counting] sent ${sent.sent}; socket drops ${drops}; rxtrace counters ${ours}; perf stat ${perfCount} (filter "${filter}")`);
      expect(drops).toBeGreaterThan(STORM / 2);
      expect(ours).toBe(drops);
      expect(perfCount).toBe(ours);
    } finally {
      counters.close();
      await sink.stop();
    }
    expect(() => counters.read()).toThrow(/closed/);
  });

  for (const mode of ['counting', 'events'] as const) {
    it(`serve ${mode === 'counting' ? '(counting, the default)' : '--mode events'}: the socket's series equals the kernel's drops`, async () => {
      const port = await freePort();
      const sink = await startSink({ bind: addrPort('127.0.0.1', port), rcvbuf: 1, comm: 'rxcnt-serve' });
      const serve = await startServe(['--port', String(port), ...(mode === 'events' ? ['--mode', 'events'] : [])]);
      try {
        expect(serve.what).toMatch(mode === 'counting' ? /^counting udp:udp_fail_queue_rcv_skb$/ : /^tracing udp:udp_fail_queue_rcv_skb, /);
        await scrape(serve.port); // a baseline scrape before the storm
        await send({ to: addrPort('127.0.0.1', port), count: STORM });
        const kernel = await settledUdpSocketDrops(sink.inode);
        expect(kernel).toBeGreaterThan(STORM / 2);
        const key = `udp 127.0.0.1:${port} rxcnt-serve`;
        // A new series shows 0 at its first delivered scrape, its count from the next one on.
        let last = new Map<string, number>();
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline && last.get(key) !== kernel) {
          await new Promise((r) => setTimeout(r, 300));
          last = dropSeries(await scrape(serve.port), UDP);
        }
        console.info(`[counting] serve ${mode}: kernel ${kernel}; series ${JSON.stringify([...last])}`);
        expect(last.get(key)).toBe(kernel);
        // Scoped to our port: nothing else of this event, not even as unknown or other.
        const sum = [...last.values()].reduce((a, b) => a + b, 0);
        expect(sum).toBe(kernel);
      } finally {
        serve.child.kill('SIGTERM');
        expect(await serve.exited).toBe(0);
        await sink.stop();
      }
    });
  }

  it('bad --mode, and --ring-pages in counting mode, are usage errors (exit 2, one line)', async () => {
    for (const [args, msg] of [
      [['--mode', 'sampled'], /--mode is counting or events, got "sampled"/],
      [['--ring-pages', '64'], /--ring-pages applies to --mode events only/],
    ] as const) {
      const s = spawnTracked(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', ...args]);
      expect(await s.exited, args.join(' ')).toBe(2);
      expect(s.err()).toMatch(msg);
      expect(s.err()).not.toMatch(/\n\s+at /);
    }
  });
});
