// Fault matrix (docs/faults.md), tracefs and privileges: tracefs not mounted (rxtrace reads it
// through a private detached mount, says so, leaves nothing mounted; two at once), not mountable,
// a tracepoint missing on this kernel, malformed, truncated or empty format files, bad ids, not
// root, no CAP_PERFMON; and the security rules: nothing under /proc or /sys is ever opened for
// writing, and the only mount is a private, detached, read-only tracefs.
// Mount games happen only in private mount namespaces (unshare --mount --propagation private):
// the host's mount table is checked unchanged at the end. Fixture trees are copied from this
// kernel's tracefs into temp dirs (the ids must be real: perf_event_open takes them).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { assertBuilt, onlineCpuCount, runCli, stopAllCli, type CliResult } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { kernelLayout, perfParanoid } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';
import { udpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, rxfloodPath, runningRxflood, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';
import {
  expectCleanError,
  expectCleanExit,
  inMountNs,
  liveTracefsCopy,
  NOBODY,
  nobodyCannotRun,
  removeTree,
  runWithoutCaps,
  rxExit,
  shellQuote,
  sleep,
  startShellCli,
  stopAllShellCli,
  SUMMARY,
  tracefsMounts,
  waitForStdoutLines,
  withoutCaps,
} from './faults-shared.js';

/** What this kernel's tracepoints can show (lport before 6.10, dport after…). */
const K = await kernelLayout();

/** Unmount every tracefs in this (private) namespace, quietly. */
const UNMOUNT_TRACEFS = `for m in $(awk '$3 == "tracefs" { print $2 }' /proc/mounts | sort -r); do umount "$m" 2>/dev/null; done
[ "$(awk '$3 == "tracefs"' /proc/mounts | wc -l)" = 0 ] || { echo "could not unmount tracefs" >&2; exit 99; }`;

/** A mount-namespace run whose script echoed `RXEXIT n`: the CLI's result, stdout left out. */
function nsResult(r: CliResult): CliResult {
  const code = rxExit(r.stdout);
  if (code === undefined) throw new Error(`the namespace script did not finish (exit ${r.code}); stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
  return { ...r, code, stdout: '' };
}

function nsLine(stdout: string, key: string): string | undefined {
  return new RegExp(`^${key} (.*)$`, 'm').exec(stdout)?.[1];
}

describeLive('fault matrix: tracefs, privileges and the security rules', () => {
  let mountsAtStart: string[];
  const trees: string[] = [];
  const tree = (events?: string[]): string => {
    const t = liveTracefsCopy(events);
    trees.push(t);
    return t;
  };

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
    for (const t of trees) removeTree(t);
    expect(runningRxflood()).toEqual([]);
    // Everything below mounts only in private namespaces: the host never changed.
    expect(tracefsMounts()).toEqual(mountsAtStart);
  });

  describe('tracefs not mounted, not mountable', () => {
    it('not mounted: rxtrace reads it through a private mount, says so on stderr, mounts nothing visible, traces real drops, exit 0', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const before = udpSocketDrops(sink.inode)!.drops;
      const r = await inMountNs(
        `${UNMOUNT_TRACEFS}
        echo "MOUNTS_BEFORE $(awk '$3 == "tracefs"' /proc/mounts | wc -l)"
        $RX trace --port ${sink.port} -c 50 -d 60 > /dev/null & PID=$!
        # Drops until rxtrace has seen 50 of them; note whether tracefs is mounted meanwhile.
        while kill -0 $PID 2>/dev/null; do
          ${shellQuote(rxfloodPath())} send --to 127.0.0.1:${sink.port} -n 20 > /dev/null
          echo "MOUNTS_WHILE_TRACING $(awk '$3 == "tracefs"' /proc/mounts | wc -l)"
          sleep 0.2
        done
        wait $PID; echo "RXEXIT $?"
        echo "MOUNTS_AFTER $(awk '$3 == "tracefs"' /proc/mounts | wc -l)"`,
        { timeoutMs: 90_000 },
      );
      const res = nsResult(r);
      console.log(`[faults-tracefs] not mounted: exit ${res.code}; ${r.stderr.trim().replace(/\n/g, ' | ')}`);
      expectCleanExit(res);
      expect(nsLine(r.stdout, 'MOUNTS_BEFORE')).toBe('0');
      expect(r.stderr).toMatch(/^rxtrace: tracefs was not mounted: reading event formats through a private mount of it .*nothing is mounted on the host/m);
      // The private mount is detached: the namespace's mount table never lists it, at any moment.
      const during = [...r.stdout.matchAll(/^MOUNTS_WHILE_TRACING (\d+)$/gm)].map((m) => m[1]);
      expect(during.length).toBeGreaterThan(0);
      expect(during.filter((n) => n !== '0'), 'tracefs mounts seen while tracing').toEqual([]);
      expect(nsLine(r.stdout, 'MOUNTS_AFTER')).toBe('0');
      // (The summary counts what the tracer delivered; -c stops printing at 50.)
      const m = SUMMARY.exec(r.stderr);
      expect(Number(m?.[1])).toBeGreaterThanOrEqual(50);
      expect(udpSocketDrops(sink.inode)!.drops - before).toBeGreaterThanOrEqual(50);
    });

    it('not mounted, two traces started together (and a third that exits while they read): each reads tracefs on its own, both trace real drops, nothing left mounted', async () => {
      // The race a shared temporary mount had: one process unmounting /sys/kernel/tracing while
      // another still reads formats there, or both mounting and stacking. Each private mount
      // belongs to its own process, so neither can happen: every run must start and trace.
      const a = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const b = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const before = [udpSocketDrops(a.inode)!.drops, udpSocketDrops(b.inode)!.drops];
      const F = shellQuote(rxfloodPath());
      const r = await inMountNs(
        `${UNMOUNT_TRACEFS}
        E=/tmp/rxt-two-$$
        for round in 1 2 3; do
          $RX trace --port ${a.port} -c 20 -d 60 > $E.a.out 2> $E.a.err & A=$!
          $RX trace --port ${b.port} -c 20 -d 60 > $E.b.out 2> $E.b.err & B=$!
          $RX trace -e udp:nosuch -d 1 > /dev/null 2>&1 & C=$!
          while kill -0 $A 2>/dev/null || kill -0 $B 2>/dev/null; do
            ${F} send --to 127.0.0.1:${a.port} -n 10 > /dev/null; ${F} send --to 127.0.0.1:${b.port} -n 10 > /dev/null
            echo "MOUNTS_WHILE $(awk '$3 == "tracefs"' /proc/mounts | wc -l)"
            sleep 0.2
          done
          wait $A; ea=$?; wait $B; eb=$?; wait $C
          echo "ROUND $round $ea $eb $(wc -l < $E.a.out) $(wc -l < $E.b.out) $(grep -c 'private mount' $E.a.err) $(grep -c 'private mount' $E.b.err) $(grep -vc '^rxtrace: ' $E.a.err) $(grep -vc '^rxtrace: ' $E.b.err)"
        done
        rm -f $E.*
        echo "MOUNTS_AFTER $(awk '$3 == "tracefs"' /proc/mounts | wc -l)"
        echo "RXEXIT 0"`,
        { timeoutMs: 180_000 },
      );
      nsResult(r);
      const rounds = [...r.stdout.matchAll(/^ROUND (\d) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$/gm)].map((m) => m.slice(1).map(Number));
      console.log(`[faults-tracefs] two at once: ${rounds.map((x) => `round ${x[0]}: exits ${x[1]}/${x[2]}, events ${x[3]}/${x[4]}`).join('; ')}`);
      expect(rounds).toHaveLength(3);
      // [round, exit a, exit b, events a, events b, notice a, notice b, foreign lines a, b]
      for (const x of rounds) expect(x.slice(1)).toEqual([0, 0, 20, 20, 1, 1, 0, 0]);
      expect([...r.stdout.matchAll(/^MOUNTS_WHILE (\d+)$/gm)].map((m) => m[1]).filter((n) => n !== '0')).toEqual([]);
      expect(nsLine(r.stdout, 'MOUNTS_AFTER')).toBe('0');
      // The kernel saw what the traces saw (each printed 20 of its own socket's drops, 3 times).
      expect(udpSocketDrops(a.inode)!.drops - before[0]).toBeGreaterThanOrEqual(60);
      expect(udpSocketDrops(b.inode)!.drops - before[1]).toBeGreaterThanOrEqual(60);
    });

    it('not mounted, and tracing then fails (unknown event; a filter the kernel rejects): the mount rxtrace made is still undone', async () => {
      const r = await inMountNs(
        `${UNMOUNT_TRACEFS}
        $RX trace -e udp:nosuch -d 1 > /dev/null; echo "RXEXIT1 $?"
        echo "MOUNTS_AFTER_1 $(awk '$3 == "tracefs"' /proc/mounts | wc -l)"
        $RX trace --filter '${K.udp.portField} == == 3' -d 1 > /dev/null; echo "RXEXIT2 $?"
        echo "MOUNTS_AFTER_2 $(awk '$3 == "tracefs"' /proc/mounts | wc -l)"
        echo "RXEXIT 0"`,
        { timeoutMs: 60_000 },
      );
      nsResult(r);
      expect(nsLine(r.stdout, 'RXEXIT1')).toBe(String(EXIT.USAGE));
      expect(nsLine(r.stdout, 'RXEXIT2')).toBe(String(EXIT.USAGE));
      expect(nsLine(r.stdout, 'MOUNTS_AFTER_1')).toBe('0');
      expect(nsLine(r.stdout, 'MOUNTS_AFTER_2')).toBe('0');
      expect(r.stderr).not.toMatch(/^\s+at /m);
    });

    it('not mountable (root without CAP_SYS_ADMIN, as in a container): exit 69, one line saying the mount failed and why', async () => {
      const r = nsResult(
        await inMountNs(
          `${UNMOUNT_TRACEFS}
          ${withoutCaps('sys_admin').join(' ')} -c "$RX trace -d 1 > /dev/null"; echo "RXEXIT $?"`,
          { timeoutMs: 60_000 },
        ),
      );
      const msg = expectCleanError(r, EXIT.UNAVAILABLE);
      // Both ways need CAP_SYS_ADMIN: the private mount (fsopen) and the fallback mount(8).
      expect(msg).toMatch(/tracefs is not mounted and mounting it at \/sys\/kernel\/tracing failed/);
      expect(msg).toMatch(/permission denied/i);
      expect(msg).toMatch(/a private mount failed too: fsopen/);
    });

    it('no mount point (/sys/kernel hidden under an empty read-only tmpfs): the private mount needs none, exit 0', async () => {
      const r = nsResult(
        await inMountNs(
          `${UNMOUNT_TRACEFS}
          mount -t tmpfs -o size=16k,mode=0555 rxt-empty /sys/kernel
          $RX trace -d 1 > /dev/null; echo "RXEXIT $?"`,
          { timeoutMs: 60_000 },
        ),
      );
      expectCleanExit(r);
      expect(r.stderr).toMatch(/^rxtrace: tracefs was not mounted: reading event formats through a private mount/m);
    });

    it('RXTRACE_TRACEFS pointing at a directory that is not tracefs: exit 69, one line', async () => {
      const r = await runCli(['trace', '-d', '1'], { env: { ...process.env, RXTRACE_TRACEFS: '/tmp' } });
      const msg = expectCleanError(r, EXIT.UNAVAILABLE);
      expect(msg).toMatch(/\/tmp is not a tracefs root/);
    });
  });

  describe('tracepoints and format files (fixture tracefs trees from this kernel)', () => {
    it('a default tracepoint missing (sock_exceed_buf_limit): traces the others, says which is missing, every drop counted, exit 0', async () => {
      const root = tree();
      rmSync(`${root}/events/sock/sock_exceed_buf_limit`, { recursive: true });
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const cli = startShellCli(['trace', '--port', String(sink.port), '-d', '60'], '', { env: { ...process.env, RXTRACE_TRACEFS: root } });
      await cli.waitForPerfFds(2 * onlineCpuCount());
      const before = udpSocketDrops(sink.inode)!.drops;
      await send({ to: addrPort('127.0.0.1', sink.port), count: 2000 });
      // The socket's drops counter once it stops moving (the flood has been delivered), then
      // readiness: every one of those drops is printed.
      let delta = -1;
      for (let i = 0; i < 100; i++) {
        const d = udpSocketDrops(sink.inode)!.drops - before;
        if (d === delta) break;
        delta = d;
        await sleep(100);
      }
      await waitForStdoutLines(cli, delta);
      cli.signal('SIGINT');
      const r = await cli.exited;
      expectCleanExit(r);
      expect(r.stderr).toMatch(/^rxtrace: this kernel lacks sock:sock_exceed_buf_limit; tracing the others$/m);
      const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
      expect(new Set(recs.map((e) => e.event))).toEqual(new Set(['udp:udp_fail_queue_rcv_skb']));
      expect(recs).toHaveLength(delta);
      expect(Number(SUMMARY.exec(r.stderr)?.[1])).toBe(delta);
    });

    it('every default tracepoint missing: exit 69 (tracing unavailable), naming them', async () => {
      const root = tree(['skb/kfree_skb']);
      const r = await runCli(['trace', '-d', '1'], { env: { ...process.env, RXTRACE_TRACEFS: root } });
      const msg = expectCleanError(r, EXIT.UNAVAILABLE, { notices: 1 });
      expect(msg).toMatch(/udp:udp_fail_queue_rcv_skb/);
    });

    it('a tracepoint named with -e that this kernel lacks: exit 2 (unknown event)', async () => {
      const root = tree(DEFAULT_ONLY);
      const r = await runCli(['trace', '-e', 'skb:kfree_skb', '-d', '1'], { env: { ...process.env, RXTRACE_TRACEFS: root } });
      const msg = expectCleanError(r, EXIT.USAGE);
      expect(msg).toMatch(/unknown tracepoint "skb:kfree_skb"/);
    });

    const broken: [string, (text: string) => string, RegExp][] = [
      ['truncated (cut in the middle of a field line)', (t) => t.slice(0, t.indexOf('field:', t.indexOf('field:int') + 1) + 14), /unreadable field line|truncated/],
      ['truncated (no print fmt line)', (t) => t.slice(0, t.indexOf('print fmt:')), /truncated: no "print fmt:" line/],
      ['malformed (a field line without offset)', (t) => t.replace(/(field:int rc;\s*)offset:\d+;/, '$1'), /unreadable field line/],
      ['malformed (a field size out of range)', (t) => t.replace(/(field:int rc;\s*offset:\d+;\s*)size:\d+;/, '$1size:999999;'), /size 999999 out of range/],
      ['malformed (a field twice)', (t) => t.replace(/(\tfield:int rc;[^\n]*\n)/, '$1$1'), /appears twice/],
      ['empty', () => '', /no "name:" line/],
      ['binary garbage', () => '\u0000\u0001\u00ff'.repeat(100), /no "name:" line/],
    ];
    for (const [what, mangle, reason] of broken) {
      it(`format file ${what}: exit 69, one line naming the event and the file`, async () => {
        const root = tree(DEFAULT_ONLY);
        const f = `${root}/events/udp/udp_fail_queue_rcv_skb/format`;
        writeFileSync(f, mangle(readFileSync(f, 'latin1')), 'latin1');
        const r = await runCli(['trace', '-d', '1'], { env: { ...process.env, RXTRACE_TRACEFS: root } });
        const msg = expectCleanError(r, EXIT.UNAVAILABLE);
        expect(msg).toMatch(/cannot read the layout of udp:udp_fail_queue_rcv_skb/);
        expect(msg).toContain(f);
        expect(msg).toMatch(reason);
      });
    }

    it('an id file that is not a number, or above 65535 (samples carry the id as a u16): exit 69, one line naming the file', async () => {
      for (const id of ['abc', '999999']) {
        const root = tree(DEFAULT_ONLY);
        writeFileSync(`${root}/events/udp/udp_fail_queue_rcv_skb/id`, `${id}\n`);
        const r = await runCli(['trace', '-d', '1'], { env: { ...process.env, RXTRACE_TRACEFS: root } });
        const msg = expectCleanError(r, EXIT.UNAVAILABLE);
        expect(msg, id).toMatch(/udp_fail_queue_rcv_skb\/id is not a tracepoint id/);
      }
    });

    it('an id this kernel does not know (stale tracefs copy): exit 69, one line naming the event, with a hint', async () => {
      // A well-formed id (0-65535) that no event of this kernel has: perf_event_open refuses it.
      // (An id above 65535 never gets that far: the case above.)
      const id = unusedTracepointId();
      const root = tree(DEFAULT_ONLY);
      writeFileSync(`${root}/events/udp/udp_fail_queue_rcv_skb/id`, `${id}\n`);
      const r = await runCli(['trace', '-d', '1'], { env: { ...process.env, RXTRACE_TRACEFS: root } });
      const msg = expectCleanError(r, EXIT.UNAVAILABLE);
      expect(msg).toContain(`tracepoint udp:udp_fail_queue_rcv_skb (id ${id}) is not known to this kernel`);
      expect(msg).toMatch(/\(.*RXTRACE_TRACEFS.*\)$/); // the hint
    });
  });

  describe('privileges', () => {
    it('not root (uid 65534 via setpriv) while tracefs is mounted: exit 77, one line that does not claim tracefs is unmounted', async () => {
      const why = nobodyCannotRun();
      if (why) throw new Error(`${why}: make the checkout readable by others to run this case`);
      const r = await runCli(['trace', '-d', '1'], { prefix: NOBODY, timeoutMs: 30_000 });
      console.log(`[faults-tracefs] as nobody: exit ${r.code}: ${r.stderr.trim()}`);
      const msg = expectCleanError(r, EXIT.NOPERM);
      expect(msg).toMatch(/root|CAP_PERFMON/);
      expect(msg).not.toMatch(/not mounted/);
      expect(msg).toMatch(/\(.+\)$/); // the hint
    });

    it('root without CAP_PERFMON and CAP_SYS_ADMIN: exit 77, one line naming CAP_PERFMON, with the setcap hint', async () => {
      const port = await freePort();
      const r2 = await runWithoutCaps(['perfmon', 'sys_admin'], ['trace', '--port', String(port), '-d', '1']);
      const msg = expectCleanError(r2, EXIT.NOPERM);
      if (perfParanoid() >= 3) {
        // Debian's level 3: CAP_SYS_ADMIN, and how to lower the level (test/live/paranoid.test.ts)
        expect(msg).toMatch(/perf_event_open .* was denied: tracing tracepoints needs CAP_SYS_ADMIN at kernel\.perf_event_paranoid \d/);
        expect(msg).toMatch(/sysctl kernel\.perf_event_paranoid=2/);
      } else {
        expect(msg).toMatch(/perf_event_open .* was denied: tracing tracepoints needs root or CAP_PERFMON/);
        expect(msg).toMatch(/setcap cap_perfmon/);
      }
    });
  });

  describe('security: files are read, never written, under /proc and /sys; the only mount is a private tracefs', () => {
    it('strace of `trace` (tracefs unmounted first, real drops): no open for writing under /proc or /sys, no mount(2) at all, one private read-only tracefs', async () => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1 });
      const log = `/tmp/rxt-strace-${process.pid}-${Date.now()}`;
      try {
        const r = await inMountNs(
          `${UNMOUNT_TRACEFS}
          strace -f -qq -o ${log} -e trace=open,openat,openat2,creat,truncate,mount,umount2,fsopen,fsmount,move_mount,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat $RX trace --port ${sink.port} -c 30 -d 60 > /dev/null & PID=$!
          while kill -0 $PID 2>/dev/null; do ${shellQuote(rxfloodPath())} send --to 127.0.0.1:${sink.port} -n 20 > /dev/null; sleep 0.3; done
          wait $PID; echo "RXEXIT $?"`,
          { timeoutMs: 120_000 },
        );
        expectCleanExit(nsResult(r));
        const lines = readFileSync(log, 'utf8').split('\n');
        const writes = lines.filter((l) => /\bopen(at2?)?\(.*"\/(proc|sys)\//.test(l) && /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/.test(l));
        const creates = lines.filter((l) => /\b(creat|truncate|unlink|unlinkat|rename\w*|mkdir\w*)\(.*"\/(proc|sys)\//.test(l));
        const mounts = lines.filter((l) => /\b(mount|umount2|fsopen|fsmount|move_mount)\(/.test(l) && !/= -1 /.test(l));
        console.log(`[faults-tracefs] strace: ${lines.length} lines, writes under /proc|/sys: ${writes.length}, mounts: ${mounts.map((l) => l.replace(/^\d+\s+/, '')).join(' ; ')}`);
        expect(writes, 'opens for writing under /proc or /sys').toEqual([]);
        expect(creates, 'creates/renames/unlinks under /proc or /sys').toEqual([]);
        // One fsopen of tracefs and one read-only fsmount, never attached anywhere (no
        // move_mount); no mount(2) or umount2 at all.
        expect(mounts.filter((l) => /\bfsopen\(/.test(l)).map((l) => /fsopen\("([^"]*)"/.exec(l)?.[1])).toEqual(['tracefs']);
        expect(mounts.filter((l) => /\bfsmount\(/.test(l)).map((l) => /MOUNT_ATTR_RDONLY/.test(l))).toEqual([true]);
        expect(mounts.filter((l) => /\b(mount|umount2|move_mount)\(/.test(l))).toEqual([]);
      } finally {
        rmSync(log, { force: true });
      }
    });
  });
});

const DEFAULT_ONLY = ['udp/udp_fail_queue_rcv_skb', 'sock/sock_rcvqueue_full', 'sock/sock_exceed_buf_limit'];

/** The highest id in 0-65535 that no event of this kernel has (tracefs read in a private mount namespace). */
function unusedTracepointId(): number {
  const T = '/sys/kernel/tracing';
  const ids = execFileSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', `[ -d ${T}/events ] || mount -t tracefs nodev ${T}; cat ${T}/events/*/*/id`], { encoding: 'utf8' });
  const used = new Set(ids.split('\n').filter(Boolean).map(Number));
  if (used.size < 100) throw new Error(`only ${used.size} tracepoint ids found under ${T}/events`);
  for (let id = 0xffff; id > 0; id--) if (!used.has(id)) return id;
  throw new Error('every tracepoint id is in use');
}
