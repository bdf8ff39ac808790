// Fault matrix (docs/faults.md), command line and output: bad usage of every kind, bad filters
// (checked before they reach the kernel), stdout closed, gone (EPIPE) or failing (ENOSPC), and
// serve's listen errors. Each case ends with its documented exit code and one `rxtrace:` line
// on stderr, without a stack trace. Runs the built CLI: `npm run build` first.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { MAX_FILTER_LENGTH } from '../../src/filter.js';
import { assertBuilt, runCli, runShell, startCli, stopAllCli, type CliResult, TIME_SCALE } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { kernelLayout } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';
import { addrPort, runningRxflood, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';
import { cliCommand, drizzle, expectCleanError, expectCleanExit, sleep, startShellCli, stopAllShellCli, SUMMARY, tracefsMounts } from './faults-shared.js';

/** What this kernel's tracepoints can show (lport before 6.10, dport after…). */
const K = await kernelLayout();

describeLive('fault matrix: command line and output', () => {
  let mountsAtStart: string[];

  beforeAll(() => {
    assertBuilt();
    mountsAtStart = tracefsMounts();
  });

  afterEach(async () => {
    await stopAllCli();
    await stopAllShellCli();
    await stopAllRxflood();
  });

  afterAll(() => {
    expect(runningRxflood()).toEqual([]);
    // No case mounts tracefs on the host, or leaves it unmounted.
    expect(tracefsMounts()).toEqual(mountsAtStart);
  });

  describe('usage', () => {
    it('unknown subcommand: exit 2, one line', async () => {
      const msg = expectCleanError(await runCli(['nosuchcommand']), EXIT.USAGE);
      expect(msg).toMatch(/nosuchcommand/);
    });

    it('unknown option: exit 2, one line naming it', async () => {
      const msg = expectCleanError(await runCli(['trace', '--bogus-option']), EXIT.USAGE);
      expect(msg).toMatch(/--bogus-option/);
    });

    it('bad option values (--port abc, --duration -1, --ring-pages x, --count 1.5): exit 2, one line naming the option', async () => {
      const cases = [
        ['--port', 'abc'],
        ['--duration', '-1'],
        ['--ring-pages', 'x'],
        ['--count', '1.5'],
      ];
      for (const args of cases) {
        const msg = expectCleanError(await runCli(['trace', ...args]), EXIT.USAGE);
        expect(msg, args.join(' ')).toContain(args[0]);
      }
    });

    it('unknown tracepoint (-e udp:udp_fail_queue_rcv): exit 2, and the line suggests the real name', async () => {
      const msg = expectCleanError(await runCli(['trace', '-e', 'udp:udp_fail_queue_rcv', '-d', '1']), EXIT.USAGE);
      expect(msg).toMatch(/unknown tracepoint "udp:udp_fail_queue_rcv"; did you mean .*udp:udp_fail_queue_rcv_skb/);
    });

    it('unknown drop reason (--reason NO_SUCH_REASON): exit 2', async () => {
      const msg = expectCleanError(await runCli(['trace', '--reason', 'NO_SUCH_REASON', '-d', '1']), EXIT.USAGE, { notices: 1 });
      expect(msg).toMatch(/unknown drop reason "NO_SUCH_REASON"/);
    });

    it('--ring-pages that is not a power of two (3): exit 2', async () => {
      const msg = expectCleanError(await runCli(['trace', '--ring-pages', '3', '-d', '1']), EXIT.USAGE);
      expect(msg).toMatch(/power of two/);
    });

    it('--ring-pages beyond what the addon accepts (2^21 pages): exit 2 with a line about --ring-pages', async () => {
      const msg = expectCleanError(await runCli(['trace', '--ring-pages', String(2 ** 21), '-d', '1']), EXIT.USAGE);
      expect(msg).toMatch(/ring size 2097152 pages is above the limit of 1048576/);
      expect(msg, 'names the option').toMatch(/--ring-pages/);
      expect(msg, 'names the option, not the addon\'s internals').not.toMatch(/options\.ringPages/);
    });
  });

  describe('filters: validated before they reach the kernel', () => {
    // RXTRACE_TRACEFS points nowhere: a filter rejected with EBADFILTER (and not ENOTRACEFS)
    // was refused before rxtrace even looked for tracefs, let alone opened a perf event.
    const nowhere = { env: { ...process.env, RXTRACE_TRACEFS: '/nonexistent/tracefs' } };

    it(`a filter the kernel rejects (${K.udp.portField} == == 3): exit 2, the line names the filter and the fields`, async () => {
      // A notice first: the other two default events have no port field, so they are left out.
      const bad = `${K.udp.portField} == == 3`;
      const msg = expectCleanError(await runCli(['trace', '--filter', bad, '-d', '1']), EXIT.USAGE, { notices: 1 });
      expect(msg).toMatch(/rejected by the kernel/);
      expect(msg).toContain(bad);
    });

    it('characters ftrace filters never use (; ` { # é): exit 2 before tracefs is looked at', async () => {
      for (const bad of ['dport == 5000; reboot', 'dport == `id`', 'dport == {1}', 'dport == 1 # x', 'comm == "é"']) {
        const msg = expectCleanError(await runCli(['trace', '--filter', bad, '-d', '1'], nowhere), EXIT.USAGE);
        expect(msg, bad).toMatch(/character/);
        expect(msg, bad).not.toMatch(/tracefs/);
      }
    });

    it(`a filter longer than ${MAX_FILTER_LENGTH} characters: exit 2 before tracefs is looked at`, async () => {
      const long = Array.from({ length: 600 }, (_, i) => `dport == ${i}`).join(' || ');
      expect(long.length).toBeGreaterThan(MAX_FILTER_LENGTH);
      const msg = expectCleanError(await runCli(['trace', '--filter', long, '-d', '1'], nowhere), EXIT.USAGE);
      expect(msg).toMatch(new RegExp(`${long.length} characters long; the limit is ${MAX_FILTER_LENGTH}`));
    });

    it('an empty filter: exit 2', async () => {
      const msg = expectCleanError(await runCli(['trace', '--filter', '', '-d', '1'], nowhere), EXIT.USAGE);
      expect(msg).toMatch(/empty/);
    });

    // the port field's name on the other side of 6.10: lport on 6.18, dport on 6.1
    const otherPort = K.udp.portField === 'dport' ? 'lport' : 'dport';
    it(`a filter on a field this kernel lacks (${otherPort}, the name ${otherPort === 'lport' ? 'before' : 'since'} 6.10): exit 2, the fields listed, the hint names lport/dport`, async () => {
      const msg = expectCleanError(await runCli(['trace', '--filter', `${otherPort} == 5000`, '-d', '1']), EXIT.USAGE);
      expect(msg).toMatch(new RegExp(otherPort));
      expect(msg).toMatch(new RegExp(`fields are: .*udp:udp_fail_queue_rcv_skb: .*${K.udp.portField}`));
      expect(msg).toMatch(/lport before 6\.10, dport after/);
    });
  });

  describe('stdout', () => {
    it('stdout closed (>&-): traces to nowhere, exit 0 at --duration with the summary on stderr', async () => {
      const port = await freePort();
      const r = await runShell(`${cliCommand(['trace', '--port', String(port), '-d', '1'])} >&-`, { timeoutMs: 30_000 });
      expectCleanExit(r);
      expect(r.stderr).toMatch(SUMMARY);
    });

    it('stdout reader gone (| head -1) during a drizzle of drops: exit 0 within 8 s (start-up included), one NDJSON line, no EPIPE text', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const d = drizzle('127.0.0.1', sink.port);
      try {
        const r = await runShell(`set -o pipefail; ${cliCommand(['trace', '--port', String(sink.port)])} | head -1`, { timeoutMs: 30_000 });
        console.log(`[faults-cli] trace | head -1: exit ${r.code} after ${r.ms} ms`);
        expectCleanExit(r);
        expect(r.ms).toBeLessThan(8000 * TIME_SCALE);
        const lines = r.stdout.trimEnd().split('\n');
        expect(lines).toHaveLength(1);
        expect(JSON.parse(lines[0])).toMatchObject({ event: 'udp:udp_fail_queue_rcv_skb' });
        expect(r.stderr).not.toMatch(/EPIPE/);
      } finally {
        await d.stop();
      }
    });

    it('top | head -1: exit 0 once the reader is gone, quietly', async () => {
      const r = await runShell(`set -o pipefail; ${cliCommand(['top', '-i', '1'])} | head -1`, { timeoutMs: 30_000 });
      console.log(`[faults-cli] top | head -1: exit ${r.code} after ${r.ms} ms`);
      expectCleanExit(r);
      expect(r.stdout).toMatch(/^rxtrace top/);
      expect(r.ms).toBeLessThan(10_000 * TIME_SCALE);
      expect(r.stderr).not.toMatch(/EPIPE/);
    });

    it('stdout fails (> /dev/full, ENOSPC) in trace, sockets, stats and top: exit 71 with one line, no stack trace', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      // trace needs something to write: drops on its port once it traces.
      const trace = startShellCli(['trace', '--port', String(sink.port), '-d', '20'], '> /dev/full');
      await trace.waitForPerfFds(1);
      await send({ to: addrPort('127.0.0.1', sink.port), count: 2000 });
      const results: [string, CliResult][] = [['trace', await trace.exited]];
      for (const args of [['sockets'], ['stats', '-n', '1', '-i', '0.5'], ['top', '-n', '1', '-i', '0.5', '--no-trace']]) {
        results.push([args[0], await runShell(`${cliCommand(args)} > /dev/full`, { timeoutMs: 30_000 })]);
      }
      for (const [cmd, r] of results) {
        console.log(`[faults-cli] ${cmd} > /dev/full: exit ${r.code} after ${r.ms} ms: ${r.stderr.trim().split('\n')[0]}`);
        // Before 6.5 trace says, once it traces, that it watches kfree_skb for IPv6 drops too.
        const msg = expectCleanError(r, EXIT.OSERR, { notices: cmd === 'trace' && !K.udp6Event ? 1 : 0 });
        expect(msg, cmd).toMatch(/stdout|write/i);
        expect(msg, cmd).toMatch(/ENOSPC|no space/i);
      }
    });
  });

  describe('serve', () => {
    it('a bad --listen address (no port, a name, port 99999, :9469): exit 2 (EBADLISTEN), one line', async () => {
      for (const listen of ['127.0.0.1', 'example.com:9469', '127.0.0.1:99999', ':9469']) {
        const msg = expectCleanError(await runCli(['serve', '--listen', listen], { timeoutMs: 30_000 }), EXIT.USAGE);
        expect(msg, listen).toMatch(/--listen/);
      }
    });

    it('a port already in use: exit 75 (EADDRINUSE) before any tracing; an address not on this host: exit 75 (EADDRNOTAVAIL)', async () => {
      const holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      const port = (holder.address() as { port: number }).port;
      try {
        const r = await runCli(['serve', '--listen', `127.0.0.1:${port}`], { timeoutMs: 30_000 });
        const msg = expectCleanError(r, EXIT.CANTBIND);
        expect(msg).toMatch(/EADDRINUSE/);
        expect(msg).toContain(`127.0.0.1:${port}`);
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
      // 192.0.2.0/24 is TEST-NET-1: never configured here.
      const msg = expectCleanError(await runCli(['serve', '--listen', '192.0.2.1:9469'], { timeoutMs: 30_000 }), EXIT.CANTBIND);
      expect(msg).toMatch(/EADDRNOTAVAIL/);
    });

    it('listens on loopback unless told otherwise (security)', async () => {
      // The default is 127.0.0.1:9469. If another test holds 9469 right now, the refusal still
      // names the loopback address it tried.
      const cli = startCli(['serve', '--no-trace'], { timeoutMs: 60_000 });
      const deadline = Date.now() + 20_000 * TIME_SCALE;
      let listening: string[] = [];
      while (Date.now() < deadline && listening.length === 0) {
        await sleep(100);
        if (/serving http:\/\//.test(cli.stderr())) listening = tcpListeners(cli.pid);
        if (cli.child.exitCode !== null) break;
      }
      cli.signal('SIGTERM');
      const r = await cli.exited;
      if (r.code === EXIT.CANTBIND) {
        expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:9469/);
        return;
      }
      expectCleanExit(r);
      expect(r.stderr).toMatch(/serving http:\/\/127\.0\.0\.1:9469\/metrics/);
      expect(listening).toEqual(['127.0.0.1:9469']);
    });
  });
});

/** Listening TCP sockets of a process, as addr:port, from its fds and /proc/PID/net/tcp{,6}. */
function tcpListeners(pid: number): string[] {
  const inodes = new Set<string>();
  for (const l of procFdLinks(pid)) {
    const m = /^socket:\[(\d+)\]$/.exec(l);
    if (m) inodes.add(m[1]);
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const t = line.trim().split(/\s+/);
      if (t.length < 10 || t[3] !== '0A' || !inodes.has(t[9])) continue; // 0A = LISTEN
      const [hex, portHex] = t[1].split(':');
      const port = parseInt(portHex, 16);
      if (hex.length === 8) {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(parseInt(hex, 16));
        out.push(`${[...b].join('.')}:${port}`);
      } else out.push(`[${hex}]:${port}`);
    }
  }
  return out;
}

function procFdLinks(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}
