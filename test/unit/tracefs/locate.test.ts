// src/tracefs/locate.ts: the one line rxtrace quotes when mount(8) fails, and the one reader of
// /proc/mounts (tracefsMountPoints), which doctor shares.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mountFailure, tracefsMountPoints } from '../../../src/tracefs/locate.js';

describe('tracefsMountPoints', () => {
  it('every tracefs mount, octal escapes undone; [] without a mounts table', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxt-mounts-'));
    try {
      const file = join(dir, 'mounts');
      writeFileSync(
        file,
        'proc /proc proc rw 0 0\ntracefs /sys/kernel/tracing tracefs rw 0 0\nnone /tmp/a\\040b tracefs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\n',
      );
      expect(tracefsMountPoints(file)).toEqual(['/sys/kernel/tracing', '/tmp/a b']);
      expect(tracefsMountPoints(join(dir, 'absent'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('mountFailure', () => {
  it('keeps only mount(8)\'s first line, without the "dmesg(1)" line that follows', () => {
    const stderr = Buffer.from('mount: /sys/kernel/tracing: permission denied.\n       dmesg(1) may have more information after failed mount system call.\n');
    expect(mountFailure(Object.assign(new Error('Command failed'), { status: 32, stderr }))).toBe('mount: /sys/kernel/tracing: permission denied');
    expect(mountFailure({ status: 32, stderr: '\n  mount: /sys/kernel/tracing: mount point does not exist.\n' })).toBe('mount: /sys/kernel/tracing: mount point does not exist');
  });

  it('says what happened when mount(8) printed nothing', () => {
    expect(mountFailure(Object.assign(new Error('spawnSync mount ENOENT'), { code: 'ENOENT' }))).toBe('mount(8) could not be run: ENOENT');
    expect(mountFailure({ status: null, signal: 'SIGKILL', stderr: Buffer.alloc(0) })).toBe('mount(8) was killed by SIGKILL');
    expect(mountFailure({ status: 1, stderr: Buffer.alloc(0) })).toBe('mount(8) exited with status 1');
  });
});
