// The release addons against the baseline (glibc 2.28, only libc/libm/libpthread/libdl), and
// scripts/check-abi itself: it must fail on binaries that break the baseline.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const CHECK = join(ROOT, 'scripts', 'check-abi');
const prebuilt = (arch: string) => join(ROOT, 'prebuilds', `linux-${arch}`, 'rxtrace.node');
const work = mkdtempSync(join(tmpdir(), 'rxtrace-ship-abi-'));

function checkAbi(file: string) {
  const r = spawnSync('bash', [CHECK, file], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

function needed(file: string): string[] {
  return [...execFileSync('readelf', ['-d', '-W', file], { encoding: 'utf8' }).matchAll(/\(NEEDED\).*\[(.*)\]/g)].map((m) => m[1]);
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('release addons', () => {
  for (const [arch, machine, fileSays, loader] of [
    ['x64', 'Advanced Micro Devices X86-64', 'x86-64', 'ld-linux-x86-64.so.2'],
    ['arm64', 'AArch64', 'ARM aarch64', 'ld-linux-aarch64.so.1'],
  ] as const) {
    it(`linux-${arch}: check-abi passes; ${machine}; needs only libc and the loader`, () => {
      const r = checkAbi(prebuilt(arch));
      console.log(`[ship] ${r.out.trim()}`);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(machine);
      expect(execFileSync('file', ['-b', prebuilt(arch)], { encoding: 'utf8' })).toContain(fileSays);
      expect(needed(prebuilt(arch)).sort()).toEqual([loader, 'libc.so.6'].sort());
      // Only the N-API entry points are exported: the static libstdc++ stays private.
      const exported = execFileSync('readelf', ['--dyn-syms', '-W', prebuilt(arch)], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[4] === 'GLOBAL' && f[6] !== 'UND')
        .map((f) => f[7]);
      expect(exported.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
    });
  }
});

describe('the x64 release addon in this node', () => {
  it('C++ exceptions unwind (libgcc through our _dl_find_object): option errors and a failed perf_event_open reach JS as errors', () => {
    if (process.arch !== 'x64') return expect(process.arch).toBe('arm64');
    const script = `
      const a = require(${JSON.stringify(prebuilt('x64'))});
      const out = [];
      const base = { cpus: [0], ringPages: 4, wakeupBytes: 1, flushMs: 10, batchBytes: 4096, maxQueuedBatches: 1 };
      try { new a.PerfSession({ ...base, events: [{ id: -5 }] }, () => {}); } catch (e) { out.push(e.code); }
      try { new a.PerfSession({ ...base, events: [{ id: 4294967295 }] }, () => {}); } catch (e) { out.push(e.code); }
      out.push(typeof a.clockOffsetNs(), a.openSessionCount());
      console.log(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [optErr, openErr, clock, sessions] = JSON.parse(r.stdout);
    expect(optErr).toBe('ERR_OUT_OF_RANGE');
    // No tracepoint has that id: the kernel says ENOENT or EINVAL (as root; EACCES otherwise).
    expect(['ENOENT', 'EINVAL', 'EACCES', 'EPERM']).toContain(openErr);
    expect(clock).toBe('bigint');
    expect(sessions).toBe(0);
  });
});

describe('the arm64 release addon under qemu', () => {
  it('loads in Debian\'s arm64 Node (qemu-user-static) and answers; its C++ exceptions unwind', () => {
    const dir = process.env.RXTRACE_ARM64_NODE;
    if (!dir) throw new Error('RXTRACE_ARM64_NODE is not set: run npm run test:ship (scripts/ship/arm64-node.sh fetches the arm64 Node)');
    const script = `
      const a = require(${JSON.stringify(prebuilt('arm64'))});
      const out = [process.arch, typeof a.clockOffsetNs(), a.openSessionCount()];
      try { new a.PerfSession({ events: [{ id: -5 }], cpus: [0], ringPages: 4, wakeupBytes: 1, flushMs: 10, batchBytes: 4096, maxQueuedBatches: 1 }, () => {}); } catch (e) { out.push(e.code); }
      console.log(JSON.stringify(out));`;
    const r = spawnSync(join(dir, 'qemu-aarch64-static'), ['-L', join(dir, 'root'), join(dir, 'root', 'usr', 'bin', 'node'), '-e', script], {
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['arm64', 'bigint', 0, 'ERR_OUT_OF_RANGE']);
  });
});

describe('scripts/check-abi fails on what breaks the baseline', () => {
  it('a library built against glibc 2.36 that calls arc4random (GLIBC_2.36)', () => {
    const src = join(work, 'bad.c');
    const so = join(work, 'bad.so');
    writeFileSync(src, '#include <stdlib.h>\nunsigned f(void) { return arc4random(); }\n');
    execFileSync('gcc', ['-shared', '-fPIC', '-o', so, src]);
    const r = checkAbi(so);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/needs GLIBC_2\.36 \(arc4random\)/);
  });
  it('a C++ library linked to libstdc++ dynamically', () => {
    const src = join(work, 'cxx.cc');
    const so = join(work, 'cxx.so');
    writeFileSync(src, '#include <string>\nstd::string g(const char* s) { return std::string(s) + "x"; }\n');
    execFileSync('g++', ['-shared', '-fPIC', '-o', so, src]);
    const r = checkAbi(so);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/needs libstdc\+\+\.so\.6/);
    expect(r.out).toMatch(/needs version GLIBCXX_/);
  });
  it('a missing file and no file at all', () => {
    expect(checkAbi(join(work, 'absent.node')).code).toBe(1);
    const r = spawnSync('bash', [CHECK], { encoding: 'utf8' });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/^check-abi: no file given/);
  });
});
