// The single executable's addon file (src/sea/addon-file.ts): an unnamed file that a loader can
// open as /proc/self/fd/N, nothing left in the directory, and every fd closed when all fail.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { loadFromUnnamedFile } from '../../../src/sea/addon-file.js';

let dir: string;
let savedTmpdir: string | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rxtrace-addon-file-'));
  savedTmpdir = process.env.TMPDIR;
  process.env.TMPDIR = dir;
});

afterEach(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  rmSync(dir, { recursive: true, force: true });
});

it('the loader reads the bytes through /proc/self/fd/N; the file has no name in $TMPDIR', () => {
  const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  const { file, value } = loadFromUnnamedFile(bytes, (path) => {
    expect(path).toMatch(/^\/proc\/self\/fd\/\d+$/);
    return readFileSync(path);
  });
  expect(Buffer.compare(value, Buffer.from(bytes))).toBe(0);
  expect(readlinkSync(file.path)).toMatch(new RegExp(`^${dir}/#\\d+ \\(deleted\\)$`));
  expect(readdirSync(dir)).toEqual([]);
});

it('when no directory works, one error names each and every fd it opened is closed', () => {
  const fds = () => readdirSync('/proc/self/fd').length;
  const before = fds();
  let err: unknown;
  try {
    loadFromUnnamedFile(new Uint8Array([1, 2, 3]), () => {
      throw new Error('failed to map segment from shared object');
    });
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ code: 'EADDONLOAD' });
  expect((err as Error).message).toContain(`${dir}: failed to map segment`);
  expect((err as Error).message).toContain('/dev/shm');
  expect(fds()).toBe(before);
  expect(readdirSync(dir)).toEqual([]);
});
