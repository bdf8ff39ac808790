// The single executable (npm run build:sea) on a "host without Node": run with `env -i
// PATH=/usr/sbin:/sbin`, it must run doctor, trace real drops, start top's worker, exit cleanly
// on SIGINT, and leave nothing in /tmp (the addon is an unnamed file: mapped, but "(deleted)").
import { accessSync, constants, readdirSync } from 'node:fs';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { runCli, startCli, stopAllCli } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { stopAllRxflood } from '../helpers/rxflood.js';
import { artifact, fdTargets, ndjson, traceRealDrops } from './shared.js';

const PATH = '/usr/sbin:/sbin';
const env = { PATH };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tmpEntries(): Set<string> {
  return new Set(readdirSync('/tmp'));
}

/** /tmp entries that appeared since `before` and are ours (under CI: any at all). */
function leftInTmp(before: Set<string>): string[] {
  const fresh = [...tmpEntries()].filter((e) => !before.has(e));
  // Other engineers' runs share /tmp on a dev box; in CI nothing else runs.
  return process.env.CI === 'true' ? fresh : fresh.filter((e) => /rxtrace|\.node$/.test(e));
}

describeLive('the single executable on a host without Node', () => {
  let sea: string;

  beforeAll(() => {
    sea = artifact('RXTRACE_SEA');
    for (const dir of PATH.split(':')) {
      expect(() => accessSync(`${dir}/node`, constants.X_OK), `${dir}/node exists: PATH must not find node`).toThrow();
    }
  });

  afterEach(async () => {
    await stopAllCli();
    await stopAllRxflood();
  });

  it('--version: the single executable, the commit, the contract versions', async () => {
    const r = await runCli(['--version', '--format', 'ndjson'], { command: [sea], env });
    expect(r.code, r.stderr).toBe(0);
    const [v] = ndjson(r.stdout);
    expect(v).toMatchObject({ event: 'version', runtime: 'sea', contracts: { ndjson: expect.any(String), metrics: expect.any(String) } });
    expect(v.commit).toMatch(/^[0-9a-f]{12}$/);
    const text = await runCli(['--version'], { command: [sea], env });
    expect(text.stdout).toMatch(/^rxtrace \S+ \(commit [0-9a-f]{12}(-dirty)?, single executable, /);
  });

  it('doctor: the embedded addon loads and opens a real perf session; nothing left in /tmp', async () => {
    const before = tmpEntries();
    const r = await runCli(['doctor', '--format', 'ndjson'], { command: [sea], env });
    expect(r.stderr).not.toContain('    at ');
    const checks = ndjson(r.stdout);
    const byName = (n: string) => checks.find((c) => c.check === n);
    expect(byName('addon')?.status, JSON.stringify(byName('addon'))).toBe('ok');
    expect(byName('perf_event_open')?.status, JSON.stringify(byName('perf_event_open'))).toBe('ok');
    expect(leftInTmp(before)).toEqual([]);
  });

  it('trace: every drop counted, the addon mapped from an unnamed file, SIGINT exits 0, nothing left in /tmp', async () => {
    const before = tmpEntries();
    const t = await traceRealDrops([sea], { env, tempDirs: ['/tmp', '/dev/shm', '/var/tmp'] });
    console.log(`[ship] single executable trace: ${t.ours} lines for ${t.delta} socket drops, ${t.lost} lost; exit ${t.code}; mapped from temp dirs: ${JSON.stringify(t.mappedTemp)}`);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).not.toContain('    at ');
    expect(t.lost).toBe(0);
    expect(t.ours).toBe(t.delta);
    // The addon is mapped from a file with no name (O_TMPFILE shows as "/tmp/#<inode> (deleted)").
    expect(t.mappedTemp.length, 'the addon is mapped from a temp directory').toBeGreaterThan(0);
    for (const m of t.mappedTemp) expect(m).toMatch(/ \(deleted\)$/);
    expect(leftInTmp(before)).toEqual([]);
  });

  it('top (its worker thread loads the same addon): traces, then exits 0 on SIGINT', async () => {
    const before = tmpEntries();
    const cli = startCli(['top', '--mode', 'events', '-i', '0.5'], { command: [sea], env });
    await cli.waitForPerfFds(1, 30_000, 1500);
    const fds = fdTargets(cli.pid).filter((t) => t.endsWith(' (deleted)'));
    cli.signal('SIGINT');
    const r = await cli.exited;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('    at ');
    expect(r.stdout).toMatch(/tracing: udp_fail_queue_rcv_skb/);
    expect(r.stdout).not.toMatch(/the tracer stopped/);
    expect(fds.length, 'the unnamed addon file is held open for the worker').toBeGreaterThan(0);
    await sleep(100);
    expect(leftInTmp(before)).toEqual([]);
  });
});
