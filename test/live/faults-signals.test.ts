// Fault matrix (docs/faults.md), signals: SIGINT, SIGTERM and SIGHUP while tracing (exit 0,
// summary), while a drop storm fills the rings, during start-up (while rxtrace holds its
// temporary tracefs mount), a second SIGINT during a shutdown that cannot finish (stdout stuck:
// exit 130), SIGTERM with a stuck stdout, and the other long-running commands (top, serve).
// Runs the built CLI: `npm run build` first.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { assertBuilt, onlineCpuCount, type RunningCli, startCli, stopAllCli, TIME_SCALE } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { kernelLayout, portFilter } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';
import { udpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, runningRxflood, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';
import { drizzle, expectCleanError, expectCleanExit, inMountNs, sleep, SUMMARY, tracefsMounts } from './faults-shared.js';

/** What this kernel's tracepoints can show (lport before 6.10, dport after…). */
const K = await kernelLayout();

interface Rec {
  event: string;
  lost?: number;
}

const records = (stdout: string): Rec[] =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Rec);

/** Poll `ok` every 20 ms until it holds or `ms` have passed. */
async function waitUntil(ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok() && Date.now() < deadline) await sleep(20);
}

/**
 * Readiness for the stuck-stdout cases: rxtrace has written so much that our paused end of its
 * stdout holds a full buffer (node stops reading the pipe there), so the pipe fills and
 * rxtrace's writes wait from then on.
 */
async function stdoutBacklogged(cli: RunningCli): Promise<void> {
  const out = cli.child.stdout!;
  await waitUntil(() => out.readableLength >= out.readableHighWaterMark || cli.child.exitCode !== null, 20_000);
  expect(out.readableLength, 'rxtrace wrote a full buffer to the stdout nobody reads').toBeGreaterThanOrEqual(out.readableHighWaterMark);
}

describeLive('fault matrix: signals', () => {
  let mountsAtStart: string[];
  const cpus = onlineCpuCount();

  beforeAll(() => {
    assertBuilt();
    mountsAtStart = tracefsMounts();
  });

  afterEach(async () => {
    await stopAllCli();
    await stopAllRxflood();
  });

  afterAll(() => {
    expect(runningRxflood()).toEqual([]);
    expect(tracefsMounts()).toEqual(mountsAtStart);
  });

  describe('trace', () => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      it(`${sig} while drops arrive: exit 0 within 5 s, the summary on stderr, every printed drop counted in it`, async () => {
        const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
        const cli = startCli(['trace', '--port', String(sink.port)]);
        await cli.waitForPerfFds(cpus);
        const d = drizzle('127.0.0.1', sink.port);
        await cli.waitForLines(10); // drops are arriving and printed
        const t = Date.now();
        cli.signal(sig);
        const r = await cli.exited;
        await d.stop();
        const took = Date.now() - t;
        console.log(`[faults-signals] ${sig}: exit ${r.code} ${took} ms after the signal; ${r.stderr.trim().split('\n').pop()}`);
        expectCleanExit(r);
        expect(took).toBeLessThan(5000 * TIME_SCALE);
        const m = SUMMARY.exec(r.stderr);
        expect(m, `no summary on stderr ${JSON.stringify(r.stderr)}; ${r.stdout.split('\n').length - 1} stdout lines`).not.toBeNull();
        const recs = records(r.stdout);
        expect(recs.length).toBeGreaterThan(0);
        expect(Number(m![1])).toBe(recs.filter((e) => e.event !== 'lost').length);
        expect(Number(m![2])).toBe(recs.reduce((a, e) => a + (e.lost ?? 0), 0));
      });
    }

    it('SIGINT while drops arrive, 10 times over: the summary every time (shutdown never ends early and silently)', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const outcomes: string[] = [];
      for (let i = 0; i < 10; i++) {
        const cli = startCli(['trace', '--port', String(sink.port)]);
        await cli.waitForPerfFds(cpus);
        const d = drizzle('127.0.0.1', sink.port);
        await cli.waitForLines(10);
        cli.signal('SIGINT');
        const r = await cli.exited;
        await d.stop();
        const lines = r.stdout.split('\n').length - 1;
        outcomes.push(`${r.code}${SUMMARY.test(r.stderr) ? '' : `(no summary, ${lines} lines)`}`);
      }
      console.log(`[faults-signals] 10 × SIGINT: ${outcomes.join(' ')}`);
      expect(outcomes.filter((o) => o !== '0'), 'runs without exit 0 and a summary').toEqual([]);
      // Ten CLI start-ups: under emulation each node start alone takes 8-15 s.
    }, 240_000 * TIME_SCALE);

    it('SIGINT in the middle of a drop storm (rings full): exit 0 within 15 s; delivered + lost within the kernel\'s count', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const cli = startCli(['trace', '-e', 'udp:udp_fail_queue_rcv_skb', '--only', '--filter', portFilter(K, sink.port), '--ring-pages', '8']);
      await cli.waitForPerfFds(cpus);
      const before = udpSocketDrops(sink.inode)!.drops;
      const storm = send({ to: addrPort('127.0.0.1', sink.port), durationS: 4 });
      await cli.waitForLines(200); // the storm is on and rxtrace prints it
      await sleep(300); // then a little more of it, so that the rings fill
      const t = Date.now();
      cli.signal('SIGINT');
      const r = await cli.exited;
      const took = Date.now() - t;
      await storm;
      const after = udpSocketDrops(sink.inode)!.drops;
      expectCleanExit(r);
      const recs = records(r.stdout);
      const delivered = recs.filter((e) => e.event !== 'lost').length;
      const lost = recs.reduce((a, e) => a + (e.lost ?? 0), 0);
      console.log(`[faults-signals] SIGINT mid-storm: exit after ${took} ms; delivered ${delivered} + lost ${lost} = ${delivered + lost}; kernel drops during the whole storm ${after - before}`);
      expect(took).toBeLessThan(15_000 * TIME_SCALE);
      // The storm outlived the trace: everything the trace saw is at most what the kernel counted.
      expect(delivered + lost).toBeGreaterThan(0);
      expect(delivered + lost).toBeLessThanOrEqual(after - before);
      const m = SUMMARY.exec(r.stderr);
      expect(Number(m?.[1])).toBe(delivered);
      expect(Number(m?.[2])).toBe(lost);
    });

    it('a second SIGINT while shutdown waits on a stdout nobody reads: exit 130 at once, one line', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const cli = startCli(['trace', '--port', String(sink.port), '--ring-pages', '2048']);
      cli.child.stdout!.pause(); // nobody reads: the pipe fills, writes wait
      await cli.waitForPerfFds(cpus);
      await send({ to: addrPort('127.0.0.1', sink.port), count: 20_000 });
      await stdoutBacklogged(cli);
      cli.signal('SIGINT');
      // Shutdown has begun once the tracer is closed; it then waits on stdout, for up to
      // FINAL_FLUSH_MS (2 s) without progress. The second SIGINT must land in that wait.
      await waitUntil(() => cli.perfFds() === 0 || cli.child.exitCode !== null, 1500);
      const stuck = cli.child.exitCode === null && cli.child.signalCode === null;
      const t = Date.now();
      // The process's own end ('exit'), apart from 'close', which also waits for our paused pipe.
      let gone = 0;
      cli.child.once('exit', () => (gone = Date.now()));
      cli.signal('SIGINT');
      const r = await cli.exited;
      console.log(`[faults-signals] second SIGINT: stuck after the first: ${stuck}; exit ${r.code}, the process gone ${gone ? gone - t : '?'} ms and its pipes closed ${Date.now() - t} ms after the second`);
      expect(stuck, `rxtrace must still wait on its stuck stdout when the second SIGINT comes; stderr ${JSON.stringify(r.stderr)}`).toBe(true);
      // A notice that rxtrace mounted tracefs itself may come first (another test unmounted it),
      // and before 6.5 the one that it watches kfree_skb for IPv6 drops too (said once it traces).
      const notices = (/^rxtrace: tracefs was not mounted/m.test(r.stderr) ? 1 : 0) + (K.udp6Event ? 0 : 1);
      const msg = expectCleanError({ ...r, stdout: '' }, EXIT.INTERRUPTED, { notices });
      expect(msg).toMatch(/interrupted again during shutdown/);
      expect(Date.now() - t).toBeLessThan(3000 * TIME_SCALE);
    });

    // The final flush of stdout is bounded after a stop signal (docs/faults.md).
    it('SIGTERM while stdout is stuck (a reader that never reads): still exits within 10 s, saying output was cut short', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const cli = startCli(['trace', '--port', String(sink.port), '--ring-pages', '2048']);
      cli.child.stdout!.pause();
      await cli.waitForPerfFds(cpus);
      await send({ to: addrPort('127.0.0.1', sink.port), count: 20_000 });
      await stdoutBacklogged(cli);
      const t = Date.now();
      cli.signal('SIGTERM');
      let exited = false;
      void cli.exited.then(() => (exited = true));
      while (!exited && Date.now() - t < 10_000 * TIME_SCALE) await sleep(100);
      const inTime = exited;
      const took = Date.now() - t;
      if (!inTime) cli.child.kill('SIGKILL');
      const r = await cli.exited;
      console.log(`[faults-signals] SIGTERM, stdout stuck: ${inTime ? `exited after ${took} ms` : 'still running 10 s after SIGTERM (then SIGKILLed)'}; stderr ${JSON.stringify(cli.stderr())}`);
      expect(inTime, 'a service manager\'s SIGTERM must end rxtrace even when its stdout is stuck').toBe(true);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/stdout/);
      // One line says so, with how many records never reached stdout; the summary still comes,
      // and what it counts = the lines that arrived (read once rxtrace exited) + those not written.
      expectCleanExit(r);
      const cut = /^rxtrace: output cut short after SIGTERM: stdout .*?, (\d+) records not written/m.exec(r.stderr);
      expect(cut, `the cut-short line; stderr ${JSON.stringify(r.stderr)}`).not.toBeNull();
      expect(r.stderr.match(/output cut short/g)).toHaveLength(1);
      const m = SUMMARY.exec(r.stderr);
      expect(m, `no summary on stderr ${JSON.stringify(r.stderr)}`).not.toBeNull();
      const complete = r.stdout.split('\n').slice(0, -1); // a last line cut mid-way is not written
      for (const l of complete) JSON.parse(l);
      const notWritten = Number(cut![1]);
      expect(notWritten).toBeGreaterThan(0);
      if (Number(m![2]) === 0) expect(complete.length + notWritten, 'lines received + not written = events in the summary').toBe(Number(m![1]));
      else expect(complete.length + notWritten).toBeGreaterThanOrEqual(Number(m![1]) + records(complete.join('\n')).filter((e) => e.event === 'lost').length);
    });

    // Stop signals are caught before start-up, which they abort cleanly (docs/faults.md).
    it('SIGINT during start-up (tracefs unmounted: rxtrace reads it through its private mount): exit 0, and nothing is ever left mounted', async () => {
      const port = await freePort();
      // Fixed delays, from before rxtrace listens (node still booting) through the format reads,
      // the attributor's first /proc scan and session.start, to tracing; and kills aimed at the
      // start-up: `listening` the moment rxtrace's handlers are in. (Kills aimed at a visible
      // temporary mount went with it: the private mount is in no mount table, and the `mounted`
      // column below checks that none ever shows.)
      const runs = [0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0, 1.2, 'listening', 'listening', 'listening', 'listening', 'listening'];
      // Whether rxtrace listens yet: while node boots, before any rxtrace code runs, a SIGINT
      // takes the default action (node's own handler re-raises it). Node catches SIGINT and
      // SIGTERM itself from the start, SIGHUP only once a listener exists: SigCgt's SIGHUP bit
      // (1) says that rxtrace's handlers are in (lifecycle.ts).
      const r = await inMountNs(
        `for m in $(awk '$3 == "tracefs" { print $2 }' /proc/mounts | sort -r); do umount "$m" 2>/dev/null; done
        E=/tmp/rxt-startup-$$.err
        mounted() { local a b c rest; while read -r a b c rest; do [ "$c" = tracefs ] && return 0; done < /proc/mounts; return 1; }
        listening() { local k v rest; while read -r k v rest; do [ "$k" = SigCgt: ] && { (( 0x$v & 1 )); return; }; done < /proc/$P/status 2>/dev/null; return 1; }
        for d in ${runs.join(' ')}; do
          $RX trace --port ${port} -d 10 > /dev/null 2>$E & P=$!
          case $d in
            listening) i=0; until $d || [ ! -e /proc/$P/status ] || [ $i -ge 200000 ]; do i=$((i+1)); done ;;
            *) sleep $d ;;
          esac
          if listening; then l=1; else l=0; fi
          if mounted; then h=1; else h=0; fi
          kill -INT $P; wait $P; c=$?
          n=$(awk '$3 == "tracefs"' /proc/mounts | wc -l)
          echo "RUN $d $c $n $(grep -c '    at ' $E) $l $h $(wc -l < $E) $(grep -c '^rxtrace: stopped during start-up (SIGINT)$' $E) $(grep -cE '^rxtrace: [0-9]+ events in' $E) $(grep -vc '^rxtrace: ' $E)"
          [ "$n" = 0 ] || umount /sys/kernel/tracing
        done
        rm -f $E
        echo "RXEXIT 0"`,
        // 26 CLI start-ups: under emulation each node start alone takes 8-15 s.
        { timeoutMs: 240_000 },
      );
      const results = [...r.stdout.matchAll(/^RUN (\S+) (\d+) (\d+) (\d+) (\d) (\d) (\d+) (\d+) (\d+) (\d+)$/gm)].map((m) => ({
        run: m[1],
        code: Number(m[2]),
        mounts: Number(m[3]),
        stacks: Number(m[4]),
        listening: m[5] === '1',
        held: m[6] === '1',
        lines: Number(m[7]),
        startup: Number(m[8]),
        summary: Number(m[9]),
        foreign: Number(m[10]),
      }));
      type Run = (typeof results)[number];
      const what = (x: Run): string =>
        x.code !== 0 ? (x.listening ? 'KILLED' : 'before rxtrace listened') : x.startup ? 'stopped during start-up' : x.summary ? 'stopped tracing' : '?';
      console.log(
        `[faults-signals] SIGINT during start-up: ${results.map((x) => `${x.run}${/^\d/.test(x.run) ? 's' : ''}→exit ${x.code} (${what(x)}${x.held ? ', mount held' : ''})${x.mounts ? ' MOUNT LEFT' : ''}`).join(', ')}`,
      );
      expect(results).toHaveLength(runs.length);
      expect(results.filter((x) => x.mounts > 0), 'runs that left tracefs mounted').toEqual([]);
      expect(results.filter((x) => x.held), 'runs where a tracefs mount was visible').toEqual([]);
      expect(results.filter((x) => x.stacks > 0 || x.foreign > 0), 'runs with a stack trace, or a stderr line that is not "rxtrace: …"').toEqual([]);
      // A SIGINT that lands while node itself still boots (on a loaded machine, up to ~0.6 s)
      // takes the default action (130): no rxtrace code has run, so nothing was done and nothing
      // is left (stderr empty, no mount). Once rxtrace listens, every run exits 0.
      const early = (x: Run): boolean => x.code === 130 && !x.listening && x.lines === 0 && /^\d/.test(x.run);
      expect(results.filter((x) => x.code !== 0 && !early(x)), 'runs that did not exit 0 (130 = killed by SIGINT)').toEqual([]);
      // Each run that exits 0 says how it stopped, in one line: during start-up, or the summary.
      expect(results.filter((x) => x.code === 0 && x.startup + x.summary !== 1), 'runs without exactly one "stopped during start-up" or summary line').toEqual([]);
      // And the start-up was really interrupted (the aimed kills land there).
      expect(results.filter((x) => x.startup === 1).length, 'runs stopped during start-up').toBeGreaterThan(0);
    }, 300_000 * TIME_SCALE);
  });

  describe('top and serve', () => {
    it('top (not a TTY): SIGTERM exits 0 within 5 s, its tracer worker stopped', async () => {
      const cli = startCli(['top', '-i', '0.5']);
      await cli.waitForPerfFds(cpus, 30_000 * TIME_SCALE);
      await cli.waitForLines(3, 10_000 * TIME_SCALE);
      const t = Date.now();
      cli.signal('SIGTERM');
      const r = await cli.exited;
      console.log(`[faults-signals] top SIGTERM: exit ${r.code} after ${Date.now() - t} ms`);
      expectCleanExit(r);
      expect(Date.now() - t).toBeLessThan(5000 * TIME_SCALE);
    });

    it('serve: SIGTERM exits 0 and releases the port; a second SIGINT during shutdown is 130 or a clean 0', async () => {
      const port = await freePort();
      const listen = `127.0.0.1:${port}`;
      const cli = startCli(['serve', '--listen', listen]);
      await cli.waitForPerfFds(cpus, 30_000 * TIME_SCALE);
      const t = Date.now();
      cli.signal('SIGTERM');
      const r = await cli.exited;
      console.log(`[faults-signals] serve SIGTERM: exit ${r.code} after ${Date.now() - t} ms; ${r.stderr.trim().split('\n').pop()}`);
      expectCleanExit(r);
      expect(r.stderr).toMatch(/stopped \(SIGTERM\)/);
      // The port is free again: a second serve can bind it.
      const again = startCli(['serve', '--listen', listen, '--no-trace']);
      const deadline = Date.now() + 20_000 * TIME_SCALE;
      while (!/serving http/.test(again.stderr()) && again.child.exitCode === null && Date.now() < deadline) await sleep(50);
      expect(again.stderr()).toMatch(/serving http/);
      again.signal('SIGINT');
      again.signal('SIGINT');
      const r2 = await again.exited;
      expect([0, EXIT.INTERRUPTED]).toContain(r2.code);
      expect(r2.stderr).not.toMatch(/^\s+at /m);
    });
  });
});
