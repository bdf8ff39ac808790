// Issue 14, live: `rxtrace explain --verify` as a person uses it, and as a script does.
// - On a TTY (a real pty, from python3's pty module): a tiny-rcvbuf sink drops under a flood;
//   explain prints its socket_rcvbuf finding and waits ("press Enter"); it does not go on by
//   itself; the test stops the flood (the "change"), presses Enter, and the second window says
//   before = the first window's drops, after 0, `stopped`.
// - Without a TTY (stdin /dev/null): --verify waits for SIGUSR1, says so with its pid, ignores
//   stdin (its EOF starts nothing), and SIGUSR1 starts the second window.
import { spawn } from 'node:child_process';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { assertBuilt, CLI, startCli, stopAllCli, TIME_SCALE } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { settledUdpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';

interface Line {
  [k: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Runs argv under a new pty: relays the pty's output to stdout, and writes a carriage return
// (the Enter key) to the pty for each line read on stdin. Prints "PTYEXIT n" at the end.
const PTY_DRIVER = `
import os, pty, sys, json, select
argv = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
open_in = True
while True:
    rl = [fd] + ([0] if open_in else [])
    r, _, _ = select.select(rl, [], [], 0.1)
    if 0 in r:
        if os.read(0, 1024): os.write(fd, b"\\r")
        else: open_in = False
    if fd in r:
        try: data = os.read(fd, 65536)
        except OSError: data = b""
        if not data: break
        sys.stdout.buffer.write(data); sys.stdout.flush()
_, status = os.waitpid(pid, 0)
print("PTYEXIT %d" % os.waitstatus_to_exitcode(status), flush=True)
`;

/** The JSON lines in a pty's output (the pty turns \n into \r\n, and stderr is interleaved). */
const jsonLines = (out: string): Line[] =>
  out
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);

describeLive('rxtrace explain --verify (live)', () => {
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    await stopAllCli();
    await stopAllRxflood();
  });

  it('on a TTY: the finding, then it waits for Enter; the flood stops, Enter, and the second window says stopped', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxverify' });
    const child = spawn('python3', ['-c', PTY_DRIVER, JSON.stringify([process.execPath, CLI, 'explain', '--duration', String(2 * TIME_SCALE), '--format', 'ndjson', '--port', String(sink.port), '--verify'])], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    try {
      const before = await settledUdpSocketDrops(sink.inode);
      // The flood runs until explain asks for the change: the first window sees drops throughout.
      let sent = 0;
      const prompt = /press Enter to watch again/;
      const deadline = Date.now() + 60_000 * TIME_SCALE;
      while (!prompt.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no prompt; pty output: ${out}`);
        await send({ to: addrPort('127.0.0.1', sink.port), count: 300 });
        sent += 300;
        await sleep(50);
      }
      // The change: the flood has stopped (the last send has returned). Drops settle.
      const drops = (await settledUdpSocketDrops(sink.inode)) - before;
      expect(drops).toBeGreaterThan(0);
      const finding = jsonLines(out).find((l) => !l.verify && l.socket?.inode === sink.inode);
      expect(finding, out).toMatchObject({ place: 'socket', cause: 'socket_rcvbuf' });
      expect(finding!.drops).toBeGreaterThan(0);
      expect(finding!.drops).toBeLessThanOrEqual(drops);
      // It waits: nothing more comes until Enter, however long the user takes.
      const at = out.length;
      await sleep(2 * TIME_SCALE * 1000 + 500);
      expect(out.slice(at), 'output before Enter').toBe('');
      expect(child.exitCode).toBeNull();
      child.stdin.write('\n'); // Enter
      const code = await Promise.race([exited, sleep(60_000 * TIME_SCALE).then(() => 'timeout' as const)]);
      expect(code, out).toBe(0);
      expect(out).toMatch(/PTYEXIT 0/);
      const v = jsonLines(out).filter((l) => l.verify && l.socket?.inode === sink.inode);
      expect(v, out).toEqual([expect.objectContaining({ cause: 'socket_rcvbuf', result: 'stopped', before: expect.objectContaining({ drops: finding!.drops }), after: { drops: 0, per_s: 0 } })]);
      // And the kernel agrees: no drops after the change.
      expect((await settledUdpSocketDrops(sink.inode)) - before).toBe(drops);
      console.log(`[explain-verify] tty: ${sent} sent, ${drops} dropped, first window ${finding!.drops}; after Enter: ${v[0].result}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await sink.stop();
    }
  }, 180_000);

  it('without a TTY: waits for SIGUSR1 (named with its pid on stderr), not for stdin; SIGUSR1 starts the second window', async () => {
    const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
    try {
      const before = await settledUdpSocketDrops(sink.inode);
      const run = startCli(['explain', '--duration', String(1 * TIME_SCALE), '--format', 'ndjson', '--port', String(sink.port), '--verify']);
      await run.waitForPerfFds(1);
      // The flood runs through the whole first window (under TCG a single burst can miss it),
      // and stops when explain asks for the change.
      const notice = /send SIGUSR1 \(kill -USR1 \d+\) to watch again/;
      const deadline = Date.now() + 60_000 * TIME_SCALE;
      while (!notice.test(run.stderr())) {
        if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`no SIGUSR1 notice; stderr: ${run.stderr()}`);
        await send({ to: addrPort('127.0.0.1', sink.port), count: 300 });
        await sleep(50);
      }
      const drops = (await settledUdpSocketDrops(sink.inode)) - before;
      expect(run.stderr()).toContain(`kill -USR1 ${run.pid}`);
      expect(run.stderr()).not.toMatch(/press Enter/);
      // stdin is /dev/null (startCli's): not a TTY, and at EOF from the start; that starts
      // nothing, it keeps waiting.
      const at = run.lines.length;
      await sleep(1 * TIME_SCALE * 1000 + 1500);
      expect(run.lines.slice(at)).toEqual([]);
      expect(run.child.exitCode).toBeNull();
      run.signal('SIGUSR1');
      const r = await run.exited;
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
      const f = lines.find((l) => !l.verify && l.socket?.inode === sink.inode);
      expect(f, r.stdout).toMatchObject({ cause: 'socket_rcvbuf' });
      expect(f!.drops).toBeGreaterThan(0);
      expect(f!.drops).toBeLessThanOrEqual(drops);
      expect(lines.filter((l) => l.verify && l.socket?.inode === sink.inode)).toEqual([expect.objectContaining({ result: 'stopped', after: { drops: 0, per_s: 0 } })]);
    } finally {
      await sink.stop();
    }
  }, 120_000);
});
