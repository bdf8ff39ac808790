// `rxtrace doctor` for real, checked against the machine: tracefs as /proc/mounts has it (and
// nothing left mounted, including after a SIGTERM in the middle of the temporary mount), the
// tracepoints it reports present exist under tracefs with its ids and fields, kptr_restrict and
// the pointer column as /proc shows them, the processes whose fds it could not read, and the
// failures it reports with fewer privileges (uid 65534, root without CAP_PERFMON/CAP_SYS_ADMIN,
// without CAP_SYS_ADMIN and tracefs unmounted, without CAP_IPC_LOCK under ulimit -l 64).
// Mount games happen only in private mount namespaces; the host's mount table is checked
// unchanged at the end.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { classifyPointer, DOCTOR_EVENTS, type DoctorCheck } from '../../src/doctor/index.js';
import { parseSocketTable } from '../../src/procnet/sockets.js';
import { assertBuilt, cliCommand, runCli, runShell, shellQuote, stopAllCli, type CliResult } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { sysAdminRequired } from '../helpers/kernel.js';
import { inMountNs, NOBODY, nobodyCannotRun, rxExit, tracefsMounts, withoutCaps } from './faults-shared.js';

/** Unmount every tracefs in this (private) namespace. */
const UNMOUNT_TRACEFS = `for m in $(awk '$3 == "tracefs" { print $2 }' /proc/mounts | sort -r); do umount "$m" 2>/dev/null; done
[ "$(awk '$3 == "tracefs"' /proc/mounts | wc -l)" = 0 ] || { echo "could not unmount tracefs" >&2; exit 99; }`;
const ENSURE_TRACEFS = '[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing';
const COUNT_TRACEFS = `$(awk '$3 == "tracefs"' /proc/mounts | wc -l)`;

function parseChecks(stdout: string): DoctorCheck[] {
  const lines = stdout.split('\n').filter((l) => l.length > 0);
  expect(lines.length, `doctor printed nothing; stdout ${JSON.stringify(stdout)}`).toBeGreaterThan(10);
  return lines.map((l) => {
    const c = JSON.parse(l) as DoctorCheck;
    expect(typeof c.check, l).toBe('string');
    expect(['ok', 'warn', 'fail', 'info'], l).toContain(c.status);
    expect(typeof c.detail, l).toBe('string');
    expect(c.detail.length, l).toBeGreaterThan(0);
    if (c.status === 'fail') {
      expect(c.hint, `a failed check says what to do: ${l}`).toBeTruthy();
      expect(c.code, l).toBeTruthy();
    }
    return c;
  });
}

function get(checks: DoctorCheck[], name: string): DoctorCheck {
  const c = checks.find((x) => x.check === name);
  if (!c) throw new Error(`no "${name}" check among ${checks.map((x) => x.check).join(', ')}`);
  return c;
}

function expectNoCrash(r: CliResult): void {
  expect(r.timedOut, `timed out; stderr ${r.stderr}`).toBe(false);
  expect(r.signal, `killed; stderr ${r.stderr}`).toBeNull();
  expect(r.stderr, 'no stack trace').not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(r.stderr, 'no internal error').not.toMatch(/internal error|node:internal/);
  for (const l of r.stderr.split('\n').filter(Boolean)) expect(l, 'every stderr line starts with "rxtrace: "').toMatch(/^rxtrace: /);
}

const nsLine = (stdout: string, key: string): string | undefined => new RegExp(`^${key} (.*)$`, 'm').exec(stdout)?.[1];

/** Kernel major.minor from uname -r. */
function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release());
  if (!m) return false;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}

describeLive('rxtrace doctor, against this machine', () => {
  let mountsAtStart: string[];
  let dir: string;

  beforeAll(() => {
    assertBuilt();
    mountsAtStart = tracefsMounts();
    dir = mkdtempSync(join(tmpdir(), 'rxt-doctor-'));
  });
  afterEach(async () => {
    await stopAllCli();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    expect(tracefsMounts()).toEqual(mountsAtStart);
  });

  /** Run doctor (NDJSON to a file) in a private mount namespace after `setup`. */
  async function doctorInNs(setup: string, out: string, opts: { prefix?: string; args?: string[]; teardown?: string } = {}): Promise<{ r: CliResult; code: number; checks: DoctorCheck[] }> {
    const file = join(dir, out);
    const cmd = `${cliCommand(['doctor', '--format', 'ndjson', ...(opts.args ?? [])])} > ${shellQuote(file)}`;
    const r = await inMountNs(
      `${setup}
      echo "MOUNTS_BEFORE ${COUNT_TRACEFS}"
      ${opts.prefix ? `${opts.prefix} ${shellQuote(cmd)}` : cmd}; echo "RXEXIT $?"
      echo "MOUNTS_AFTER ${COUNT_TRACEFS}"
      ${opts.teardown ?? ''}`,
      { timeoutMs: 90_000 },
    );
    const code = rxExit(r.stdout);
    if (code === undefined) throw new Error(`the namespace script did not finish (exit ${r.code}); stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
    expectNoCrash({ ...r, code });
    return { r, code, checks: parseChecks(readFileSync(file, 'utf8')) };
  }

  it('as root: one JSON object per check, nothing failed (exit 0); tracefs as /proc/mounts says before and after, nothing left mounted', async () => {
    const before = tracefsMounts();
    const r = await runCli(['doctor', '--format', 'ndjson'], { timeoutMs: 60_000 });
    expect(tracefsMounts()).toEqual(before);
    expectNoCrash(r);
    const checks = parseChecks(r.stdout);
    console.log(`[doctor] as root: exit ${r.code}; ${checks.map((c) => `${c.check}=${c.status}`).join(' ')}`);
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(r.code).toBe(EXIT.OK);
    // Every check the brief asks for is there, once.
    const names = checks.map((c) => c.check);
    expect(new Set(names).size).toBe(names.length);
    for (const n of ['addon', 'cpus', 'privileges', 'tracefs', 'perf_event_open', 'perf_event_paranoid', 'ring memory', 'kptr_restrict', 'pointer attribution', 'socket owners']) expect(names).toContain(n);
    for (const e of DOCTOR_EVENTS) expect(names).toContain(`tracepoint ${e}`);
    for (const f of ['udp', 'udp6', 'raw', 'raw6', 'icmp', 'icmp6', 'snmp', 'snmp6', 'softnet_stat', 'dev', 'sockstat']) expect(names).toContain(`/proc/net/${f}`);

    const tracefs = get(checks, 'tracefs');
    const dirs = before.map((l) => l.split(' ')[1]);
    if (dirs.length > 0) {
      expect(tracefs).toMatchObject({ status: 'ok', data: { mounted: 'already' } });
      expect(dirs).toContain((tracefs.data as { path: string }).path);
      expect(r.stderr).not.toMatch(/mounted it/);
    } else {
      expect(tracefs).toMatchObject({ status: 'ok', data: { mounted: 'private' } });
      expect(r.stderr).toMatch(/^rxtrace: tracefs was not mounted: reading event formats through a private mount/m);
    }
    // A real session was opened: on a tracepoint, on one CPU.
    expect(get(checks, 'perf_event_open')).toMatchObject({ status: 'ok', data: { opened: true, cpu: 0 } });
    expect(DOCTOR_EVENTS).toContain((get(checks, 'perf_event_open').data as { event: string }).event);
    expect(get(checks, 'perf_event_paranoid').data).toEqual({ value: Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8')) });
    const cpus = get(checks, 'cpus').data as { online: number[] };
    expect(cpus.online.length).toBe(readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',').reduce((n, part) => {
      const [lo, hi] = part.split('-').map(Number);
      return n + (hi ?? lo) - lo + 1;
    }, 0));
  });

  it('tracefs not mounted (a private mount namespace): read through a private detached mount for the checks, said so on stderr, nothing mounted', async () => {
    const { r, code, checks } = await doctorInNs(UNMOUNT_TRACEFS, 'unmounted.ndjson');
    expect(nsLine(r.stdout, 'MOUNTS_BEFORE')).toBe('0');
    expect(nsLine(r.stdout, 'MOUNTS_AFTER')).toBe('0');
    expect(code).toBe(EXIT.OK);
    expect(r.stderr).toMatch(/^rxtrace: tracefs was not mounted: reading event formats through a private mount/m);
    const tracefs = get(checks, 'tracefs');
    expect(tracefs).toMatchObject({ status: 'ok', data: { mounted: 'private' } });
    expect(tracefs.detail).toMatch(/private mount .*nothing was mounted on the host/);
    // The checks ran through it.
    expect(get(checks, 'tracepoint udp:udp_fail_queue_rcv_skb').status).toBe('ok');
    expect(get(checks, 'perf_event_open').data).toMatchObject({ opened: true });
  });

  it('--no-mount with tracefs not mounted: nothing is mounted at all, tracefs is a warning, and no notice', async () => {
    const { r, code, checks } = await doctorInNs(
      `${UNMOUNT_TRACEFS}
      ( while :; do [ "${COUNT_TRACEFS}" = 0 ] || echo "SEEN_MOUNT"; sleep 0.01; done ) & WATCH=$!`,
      'nomount.ndjson',
      { args: ['--no-mount'], teardown: 'kill $WATCH; wait $WATCH 2>/dev/null' },
    );
    expect(r.stdout).not.toMatch(/SEEN_MOUNT/);
    expect(nsLine(r.stdout, 'MOUNTS_AFTER')).toBe('0');
    expect(r.stderr).not.toMatch(/mounted it/);
    expect(get(checks, 'tracefs')).toMatchObject({ status: 'warn', data: { mounted: 'no' } });
    expect(get(checks, 'tracefs').hint).toMatch(/mount -t tracefs/);
    expect(get(checks, 'tracepoint udp:udp_fail_queue_rcv_skb').detail).toMatch(/not checked/);
    expect(code).toBe(EXIT.OK);
  });

  it('SIGKILL while doctor holds its private tracefs mount: nothing is left mounted (the mount dies with its fd)', async () => {
    const script = `RX=${shellQuote(cliCommand([]))}
      ${UNMOUNT_TRACEFS}
      $RX doctor --format ndjson > /dev/null & PID=$!
      echo "PID $PID"
      wait $PID; echo "RXEXIT $?"
      echo "MOUNTS_AFTER ${COUNT_TRACEFS}"`;
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      const deadline = Date.now() + 30_000;
      let pid: number | undefined;
      let seen = false;
      // The private mount is in no mount table: it shows as the doctor's O_PATH fd on a "/"
      // (fdinfo flags 010000000) whose mnt_id is not its root's.
      const rootMnt = (p: number): string | undefined => /^\d+ /.exec(readFileSync(`/proc/${p}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/') ?? '')?.[0].trim();
      while (Date.now() < deadline && !seen) {
        pid ??= Number(/^PID (\d+)$/m.exec(out)?.[1]) || undefined;
        if (pid) {
          try {
            const root = rootMnt(pid);
            for (const fd of readdirSync(`/proc/${pid}/fd`)) {
              try {
                if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== '/') continue;
                const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
                const flags = parseInt(/^flags:\s+(\d+)/m.exec(info)?.[1] ?? '0', 8);
                if (flags & 0o10000000 && /^mnt_id:\s+(\d+)/m.exec(info)?.[1] !== root) seen = true;
              } catch {
                /* closed meanwhile */
              }
            }
          } catch {
            break; // exited already
          }
        }
        if (!seen) await new Promise((r) => setTimeout(r, 2));
      }
      expect(seen, `never saw doctor's private tracefs mount; stdout ${out}, stderr ${err}`).toBe(true);
      process.kill(pid!, 'SIGKILL');
      await exited;
    } finally {
      clearTimeout(kill);
    }
    // Killed outright (128 + 9): no handler ran, and still nothing is mounted.
    expect(nsLine(out, 'RXEXIT')).toBe('137');
    expect(nsLine(out, 'MOUNTS_AFTER')).toBe('0');
  });

  it('the tracepoints it reports present exist under tracefs, with the same ids and fields; their layouts are this kernel\'s', async () => {
    const r = await runCli(['doctor', '--format', 'ndjson'], { timeoutMs: 60_000 });
    const checks = parseChecks(r.stdout);
    // This kernel's tracefs, read in a private namespace (mounted there if the host has not).
    const listing = await runShell(
      `exec unshare --mount --propagation private bash -c ${shellQuote(`${ENSURE_TRACEFS}
        for e in ${DOCTOR_EVENTS.map((e) => e.replace(':', '/')).join(' ')}; do
          d=/sys/kernel/tracing/events/$e
          if [ -d "$d" ]; then echo "EVENT $e $(cat "$d/id") $(grep -o 'field:[^;]*' "$d/format" | awk '{ print $NF }' | grep -v '^common_' | sed 's/\\[.*//' | tr '\\n' ',')"; else echo "EVENT $e MISSING"; fi
        done`)}`,
    );
    expect(listing.code, listing.stderr).toBe(0);
    const truth = new Map<string, { id: number; fields: string[] } | null>();
    for (const m of listing.stdout.matchAll(/^EVENT (\S+) (\S+)(?: (\S*))?$/gm)) {
      truth.set(m[1].replace('/', ':'), m[2] === 'MISSING' ? null : { id: Number(m[2]), fields: (m[3] ?? '').split(',').filter(Boolean) });
    }
    expect([...truth.keys()].sort()).toEqual([...DOCTOR_EVENTS].sort());
    for (const e of DOCTOR_EVENTS) {
      const c = get(checks, `tracepoint ${e}`);
      const t = truth.get(e);
      const data = c.data as { present: boolean; id?: number; fields?: string[]; layout?: string };
      expect(data.present, e).toBe(t !== null);
      if (t) {
        expect(data.id, e).toBe(t.id);
        expect(data.fields, e).toEqual(t.fields);
      }
    }
    const udp = get(checks, 'tracepoint udp:udp_fail_queue_rcv_skb').data as { layout: string; portField: string };
    expect(udp).toMatchObject(kernelAtLeast(6, 10) ? { layout: '6.10+', portField: 'dport' } : { layout: 'before 6.10', portField: 'lport' });
    const kfree = get(checks, 'tracepoint skb:kfree_skb').data as { layout: string; fields: string[] };
    expect(kfree.layout).toBe(kernelAtLeast(6, 11) ? '6.11+' : kernelAtLeast(5, 17) ? '5.17-6.10' : 'before 5.17');
  });

  it('kptr_restrict as /proc/sys/kernel/kptr_restrict has it, and pointer attribution as the pointer column of a socket shows it', async () => {
    // A socket of our own, so the pointer column has a row to read.
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    try {
      const r = await runCli(['doctor', '--format', 'ndjson'], { timeoutMs: 60_000 });
      const checks = parseChecks(r.stdout);
      const kptr = Number(readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8').trim());
      expect(get(checks, 'kptr_restrict')).toMatchObject({ status: 'info', data: { value: kptr } });
      expect(get(checks, 'kptr_restrict').detail).toContain(`= ${kptr}`);
      const row = parseSocketTable(readFileSync('/proc/net/udp', 'utf8'), 'udp').find((x) => x.local.port === sock.address().port);
      expect(row).toBeDefined();
      const kind = classifyPointer(row!.pointer);
      const ptr = get(checks, 'pointer attribution');
      expect((ptr.data as { pointerColumn: string }).pointerColumn).toBe(kind);
      const rxSk = (get(checks, 'tracepoint skb:kfree_skb').data as { fields?: string[] }).fields?.includes('rx_sk') ?? false;
      if (!rxSk) {
        // before 6.11 no kptr_restrict makes kfree_skb name a socket: no hint to change it
        expect(ptr.status).toBe('info');
        expect(ptr.detail).toMatch(/has no rx_sk \(Linux 6\.11\+\)/);
        expect(ptr.hint).toBeUndefined();
      } else if (kind === 'address') {
        expect(ptr.status).toBe('ok');
      } else {
        expect(ptr.status).toBe('info');
        // It says how the user could enable it, and never did it itself.
        if (kind === 'hashed') expect(ptr.hint).toMatch(/kptr_restrict=1.*never changes it/);
      }
      expect(Number(readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8').trim())).toBe(kptr);
    } finally {
      sock.close();
    }
  });

  it('socket owners: the pids it could not read are the ones /proc/PID/fd denies; as uid 65534, this test process is among them', async () => {
    const r = await runCli(['doctor', '--format', 'ndjson'], { timeoutMs: 60_000 });
    const owners = get(parseChecks(r.stdout), 'socket owners');
    const denied = (owners.data as { denied: number[] }).denied;
    // Unreadable: the directory (hidepid, not root), or its links (ptrace access, as for a
    // sandbox's pid 1 even to root).
    for (const pid of denied) {
      let code: string | undefined;
      try {
        for (const fd of readdirSync(`/proc/${pid}/fd`)) readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch (e) {
        code = (e as NodeJS.ErrnoException).code;
      }
      if (code === 'ENOENT' && !existsSync(`/proc/${pid}`)) continue; // exited since
      expect(code, `pid ${pid} was reported unreadable, but root reads every link in /proc/${pid}/fd`).toMatch(/^(EACCES|EPERM)$/);
    }
    expect(owners.status).toBe(denied.length > 0 ? 'warn' : 'ok');
  });

  it('as uid 65534: perf_event_open fails with a hint (exit 77), tracefs fails, owners of root processes unknown; nothing mounted', async () => {
    const why = nobodyCannotRun();
    if (why) throw new Error(`${why}: make the checkout readable by others to run this case`);
    const before = tracefsMounts();
    const r = await runCli(['doctor', '--format', 'ndjson'], { prefix: NOBODY, timeoutMs: 60_000 });
    expect(tracefsMounts()).toEqual(before);
    expectNoCrash(r);
    const checks = parseChecks(r.stdout);
    console.log(`[doctor] as nobody: exit ${r.code}; ${checks.filter((c) => c.status === 'fail').map((c) => `${c.check}=${c.code}`).join(' ')}`);
    expect(r.code).toBe(EXIT.NOPERM);
    const perf = get(checks, 'perf_event_open');
    expect(perf.status).toBe('fail');
    expect(perf.code).toMatch(/^(EACCES|EPERM)$/);
    expect(perf.hint).toMatch(/root|CAP_PERFMON/);
    expect(perf.detail).toMatch(/perf_event_paranoid/);
    const tracefs = get(checks, 'tracefs');
    expect(tracefs.status).toBe('fail');
    expect(tracefs.code).toBe(before.length > 0 ? 'EACCES' : 'ENOTRACEFS');
    expect(get(checks, 'privileges').data).toMatchObject({ uid: 65534, capabilities: [] });
    expect((get(checks, 'socket owners').data as { denied: number[] }).denied).toContain(process.pid);
    expect(get(checks, 'perf_event_paranoid').status).toBe(Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8')) > -1 ? 'warn' : 'info');
  });

  it('root without CAP_PERFMON and CAP_SYS_ADMIN, tracefs readable: a real tracepoint is refused (exit 77, hint naming CAP_PERFMON)', async () => {
    const { code, checks } = await doctorInNs(ENSURE_TRACEFS, 'noperfmon.ndjson', { prefix: `${withoutCaps('perfmon', 'sys_admin').map(shellQuote).join(' ')} -c` });
    expect(get(checks, 'tracefs').status).toBe('ok');
    const perf = get(checks, 'perf_event_open');
    expect(perf).toMatchObject({ status: 'fail', data: { opened: false } });
    expect(DOCTOR_EVENTS).toContain((perf.data as { event: string }).event); // not the placeholder
    expect(perf.code).toMatch(/^(EACCES|EPERM)$/);
    expect(perf.hint).toMatch(/CAP_PERFMON/);
    expect(code).toBe(EXIT.NOPERM);
  });

  it('root without CAP_SYS_ADMIN and tracefs not mounted: tracefs fails (cannot mount, exit 69); perf is still allowed', async () => {
    const { r, code, checks } = await doctorInNs(UNMOUNT_TRACEFS, 'nosysadmin.ndjson', { prefix: `${withoutCaps('sys_admin').map(shellQuote).join(' ')} -c` });
    expect(nsLine(r.stdout, 'MOUNTS_AFTER')).toBe('0');
    const tracefs = get(checks, 'tracefs');
    expect(tracefs).toMatchObject({ status: 'fail', code: 'ENOTRACEFS' });
    expect(tracefs.detail).toMatch(/mounting it at \/sys\/kernel\/tracing failed/);
    expect(tracefs.hint).toMatch(/CAP_SYS_ADMIN/);
    if (sysAdminRequired()) {
      // Debian's perf_event_paranoid 3: without CAP_SYS_ADMIN even the placeholder probe is refused
      expect(get(checks, 'perf_event_open')).toMatchObject({ status: 'fail', code: 'EACCES', data: { placeholder: true } });
      expect(get(checks, 'perf_event_open').hint).toMatch(/CAP_SYS_ADMIN.*sysctl kernel\.perf_event_paranoid=2/);
      expect(code).toBe(EXIT.NOPERM);
    } else {
      expect(get(checks, 'perf_event_open')).toMatchObject({ status: 'ok', data: { placeholder: true } });
      expect(code).toBe(EXIT.UNAVAILABLE);
    }
  });

  it('root without CAP_IPC_LOCK under ulimit -l 64: ring memory fails (exit 71) with a ring size that maps; trace agrees', async () => {
    const caps = withoutCaps('ipc_lock').map(shellQuote).join(' ');
    const r = await runShell(`${caps} -c ${shellQuote(`ulimit -l 64; exec ${cliCommand(['doctor', '--format', 'ndjson'])}`)}`, { timeoutMs: 90_000 });
    expectNoCrash(r);
    const checks = parseChecks(r.stdout);
    const ring = get(checks, 'ring memory');
    const data = ring.data as { memlock: number; capIpcLock: boolean; tried: boolean; worksRingPages: number | null; maxRingPages: number };
    expect(ring).toMatchObject({ status: 'fail', code: 'EMEMLOCK' });
    expect(data).toMatchObject({ memlock: 64 * 1024, capIpcLock: false, tried: false });
    expect(data.worksRingPages).toBeGreaterThanOrEqual(1);
    expect(data.worksRingPages!).toBeLessThanOrEqual(data.maxRingPages);
    expect(ring.hint).toContain(`--ring-pages ${data.worksRingPages}`);
    expect(get(checks, 'perf_event_open').status).toBe('ok');
    expect(r.code).toBe(EXIT.OSERR);
    // What doctor predicts is what trace does: the default rings fail the same way.
    const t = await runShell(`${caps} -c ${shellQuote(`ulimit -l 64; exec ${cliCommand(['trace', '-d', '1'])} > /dev/null`)}`, { timeoutMs: 60_000 });
    expect(t.code, t.stderr).toBe(EXIT.OSERR);
    expect(t.stderr).toMatch(/locked-memory limit/);
  });

  it('--format text: a header, one line per check in the order of NDJSON, hints on the same line, and a count that adds up', async () => {
    const json = await runCli(['doctor', '--format', 'ndjson'], { timeoutMs: 60_000 });
    const text = await runCli(['doctor', '--format', 'text'], { timeoutMs: 60_000 });
    expectNoCrash(text);
    const checks = parseChecks(json.stdout);
    const lines = text.stdout.replace(/\n$/, '').split('\n');
    expect(lines.length).toBe(checks.length + 3);
    expect(lines[0]).toMatch(/^STATUS\s+CHECK\s+DETAIL$/);
    const body = lines.slice(1, 1 + checks.length);
    const detailAt = lines[0].indexOf('DETAIL');
    const statuses = body.map((l, i) => {
      const m = /^(ok|warn|fail|info) +(.+?) {2,}/.exec(l);
      expect(m, l).not.toBeNull();
      expect(m![2], l).toBe(checks[i].check);
      expect(l[detailAt - 1], `DETAIL column lines up: ${l}`).toBe(' ');
      expect(l[detailAt], `DETAIL column lines up: ${l}`).not.toBe(' ');
      return m![1];
    });
    expect(lines[checks.length + 1]).toBe('');
    const n = (s: string): number => statuses.filter((x) => x === s).length;
    expect(lines[checks.length + 2]).toBe(`${checks.length} checks: ${n('ok')} ok, ${n('warn')} warn, ${n('fail')} fail, ${n('info')} info`);
    // A hint that does not change between runs is on its check's line.
    const ptr = checks.find((c) => c.check === 'pointer attribution');
    if (ptr?.hint) expect(body.find((l) => / pointer attribution /.test(l))).toContain(`→ ${ptr.hint}`);
  });
});
