// Fake /proc and /sys trees for the counters' unit tests: test/fixtures/counters/<kernel>/<a|b>
// holds the text files; links.json lists the symlinks (/proc/PID/fd/N → socket:[INODE],
// /proc/PID/ns/net → net:[INODE]) that are made in a temporary copy, since the kernel's links
// point nowhere a checkout could hold.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../fixtures/counters/', import.meta.url));

export interface ProcTree {
  procRoot: string;
  sysRoot: string;
}

/** Copies fixtures/counters/<kernel>/<which> to `dir` and makes its links. */
export function materialize(kernel: string, which: string, dir: string): ProcTree {
  const src = join(FIXTURES, kernel, which);
  cpSync(src, dir, { recursive: true });
  const links = JSON.parse(readFileSync(join(src, 'links.json'), 'utf8')) as Record<string, string>;
  for (const [path, target] of Object.entries(links)) {
    const at = join(dir, 'proc', path);
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(target, at);
  }
  return { procRoot: join(dir, 'proc'), sysRoot: join(dir, 'sys') };
}

/** A temporary directory for the test, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rxt-counters-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
