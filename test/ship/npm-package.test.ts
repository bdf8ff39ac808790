// The packed tarball (npm pack) installed into an empty prefix on a host with no compiler and no
// Python for node-gyp: the install must take the prebuilt addon and say so, and the installed
// rxtrace must run doctor and trace real drops. Built by scripts/ship/test.sh (npm run test:ship).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { runCli, stopAllCli } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { stopAllRxflood } from '../helpers/rxflood.js';
import { artifact, ndjson, traceRealDrops } from './shared.js';

describeLive('the npm tarball on a host without a compiler', () => {
  let work: string;
  let prefix: string;
  let pkg: string;
  let env: NodeJS.ProcessEnv;
  let installOut = '';

  beforeAll(() => {
    const tarball = artifact('RXTRACE_TARBALL');
    work = mkdtempSync(join(tmpdir(), 'rxtrace-ship-npm-'));
    prefix = join(work, 'prefix');
    pkg = join(prefix, 'lib', 'node_modules', 'rxtrace');
    // PATH holds node, npm and sh, nothing else: no cc, g++, make or python3 to find.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(execFileSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' }).trim(), join(bin, 'npm'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const npmConfig = (key: string) => execFileSync('npm', ['config', 'get', key], { encoding: 'utf8' }).trim();
    const cache = npmConfig('cache');
    // --prefix would move npm's global config (cafile, nodedir) to <prefix>/etc/npmrc: keep it.
    const globalconfig = npmConfig('globalconfig');
    env = {
      PATH: bin,
      HOME: work,
      CC: '/bin/false',
      CXX: '/bin/false',
      PYTHON: '/nonexistent/python3',
      npm_config_python: '/nonexistent/python3',
      npm_config_cache: cache,
      npm_config_globalconfig: globalconfig,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    };
    // --foreground-scripts: npm shows the install script's line instead of hiding it.
    // npm >= 11.19 runs a package's install script only when allowed (--allow-scripts); a
    // test below installs without running it.
    installOut = npmInstall(prefix, [`--allow-scripts=file:${tarball}`, tarball]);
  }, 300_000);

  function npmInstall(into: string, args: string[]): string {
    return execFileSync('npm', ['install', '-g', '--prefix', into, '--foreground-scripts', ...args], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 240_000,
    });
  }

  afterEach(async () => {
    await stopAllCli();
    await stopAllRxflood();
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the tarball holds both prebuilt addons and the install script, and not the single executable', () => {
    const files = execFileSync('tar', ['-tzf', artifact('RXTRACE_TARBALL')], { encoding: 'utf8' }).split('\n');
    for (const f of ['package/prebuilds/linux-x64/rxtrace.node', 'package/prebuilds/linux-arm64/rxtrace.node', 'package/scripts/install.mjs', 'package/dist/build-info.json', 'package/CHANGELOG.md']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /rxtrace-linux-/.test(f))).toEqual([]);
  });

  it('installs without compiling: the prebuilt addon, said in one line, and no build/', () => {
    const lines = installOut.split('\n').filter((l) => l.startsWith('rxtrace: '));
    console.log(`[ship] npm install: ${lines.join(' | ')}`);
    expect(lines).toEqual([`rxtrace: using the prebuilt addon prebuilds/linux-${process.arch}/rxtrace.node (no compiler needed)`]);
    expect(existsSync(join(pkg, 'build'))).toBe(false);
    expect(existsSync(join(prefix, 'bin', 'rxtrace'))).toBe(true);
  });

  it('with the install script not run (--ignore-scripts; npm >= 11.19 asks first), the prebuilt addon is found all the same', async () => {
    const other = join(work, 'prefix-no-scripts');
    const out = npmInstall(other, ['--ignore-scripts', artifact('RXTRACE_TARBALL')]);
    expect(out).not.toMatch(/^rxtrace: /m);
    const r = await runCli(['doctor', '--format', 'ndjson'], { command: [join(other, 'bin', 'rxtrace')], env });
    const addon = ndjson(r.stdout).find((c) => c.check === 'addon');
    expect(addon?.status, r.stderr).toBe('ok');
  });

  it('the host really cannot compile: a build from source fails there, in one line', () => {
    let code = 0;
    let stderr = '';
    try {
      execFileSync('node', ['scripts/install.mjs'], { cwd: pkg, env: { ...env, RXTRACE_BUILD_FROM_SOURCE: '1' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    } catch (e) {
      code = (e as { status: number }).status;
      stderr = String((e as { stderr: string }).stderr);
    }
    expect(code).toBe(1);
    expect(stderr).toMatch(/^rxtrace: no prebuilt addon fits \(building from source as asked\) and building it with node-gyp failed/m);
    expect(existsSync(join(pkg, 'build', 'Release', 'rxtrace.node'))).toBe(false);
  });

  it('--version: the npm package, with a commit', async () => {
    const r = await runCli(['--version', '--format', 'ndjson'], { command: [join(prefix, 'bin', 'rxtrace')], env });
    expect(r.code, r.stderr).toBe(0);
    const [v] = ndjson(r.stdout);
    expect(v).toMatchObject({ event: 'version', runtime: 'npm', platform: `linux-${process.arch}` });
    expect(v.commit).toMatch(/^[0-9a-f]{12}$/);
  });

  it('doctor: the prebuilt addon loads and opens a real perf session', async () => {
    const r = await runCli(['doctor', '--format', 'ndjson'], { command: [join(prefix, 'bin', 'rxtrace')], env });
    expect(r.stderr).not.toContain('    at ');
    const checks = ndjson(r.stdout);
    const byName = (n: string) => checks.find((c) => c.check === n);
    expect(byName('addon')?.status, JSON.stringify(byName('addon'))).toBe('ok');
    expect(byName('perf_event_open')?.status, JSON.stringify(byName('perf_event_open'))).toBe('ok');
    const fails = checks.filter((c) => c.status === 'fail');
    expect(r.code, JSON.stringify(fails)).toBe(fails.length === 0 ? 0 : r.code);
  });

  it('trace: every drop the kernel counts on our socket is a line, then a clean exit on SIGINT', async () => {
    const t = await traceRealDrops([join(prefix, 'bin', 'rxtrace')], { env, cwd: dirname(pkg) });
    console.log(`[ship] npm package trace: ${t.ours} lines for ${t.delta} socket drops, ${t.lost} lost; exit ${t.code}`);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).not.toContain('    at ');
    expect(t.lost).toBe(0);
    expect(t.ours).toBe(t.delta);
  });
});
