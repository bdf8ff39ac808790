// The one reader of /proc/self/limits (procnet/limits.ts) and of numeric sysctls
// (procnet/sysctl.ts), against this machine's files and a fake /proc.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLimit } from '../../../src/procnet/limits.js';
import { readSysctlNumber, sysctlPath } from '../../../src/procnet/sysctl.js';

describe('readLimit', () => {
  it('this process: Max open files is what the shell says for node (ulimit -n)', () => {
    const shell = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    // The child shell inherits our soft limit.
    expect(String(readLimit('Max open files'))).toBe(shell === 'unlimited' ? 'unlimited' : String(Number(shell)));
  });

  it('a missing file or line is undefined, not 0', () => {
    expect(readLimit('Max open files', '/nonexistent/limits')).toBeUndefined();
    expect(readLimit('Max nothing')).toBeUndefined();
  });
});

describe('readSysctlNumber', () => {
  it('kernel.perf_event_paranoid as the file says', () => {
    expect(sysctlPath('kernel.perf_event_paranoid')).toBe('/proc/sys/kernel/perf_event_paranoid');
    expect(readSysctlNumber('kernel.perf_event_paranoid')).toBe(Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8')));
  });

  it('absent, empty or not a number → undefined', () => {
    const root = mkdtempSync(join(tmpdir(), 'rxt-sysctl-'));
    try {
      mkdirSync(join(root, 'sys', 'kernel'), { recursive: true });
      writeFileSync(join(root, 'sys', 'kernel', 'empty'), '\n');
      writeFileSync(join(root, 'sys', 'kernel', 'word'), 'abc\n');
      writeFileSync(join(root, 'sys', 'kernel', 'neg'), '-1\n');
      expect(readSysctlNumber('kernel.empty', root)).toBeUndefined();
      expect(readSysctlNumber('kernel.word', root)).toBeUndefined();
      expect(readSysctlNumber('kernel.absent', root)).toBeUndefined();
      expect(readSysctlNumber('kernel.neg', root)).toBe(-1);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
