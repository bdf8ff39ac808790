#!/usr/bin/env node
// Record the commit this build is from, for `rxtrace --version`: prints the JSON, and writes
// it to dist/build-info.json with --write (run by `npm run build`). Outside git: "unknown".
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const git = (...args) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
let commit = 'unknown';
let dirty = false;
try {
  commit = git('rev-parse', '--short=12', 'HEAD');
  dirty = git('status', '--porcelain', '--untracked-files=no').length > 0;
} catch {
  // A tarball or a copy without .git: keep whatever an earlier build recorded.
  try {
    ({ commit, dirty } = JSON.parse(readFileSync(join(root, 'dist', 'build-info.json'), 'utf8')));
  } catch {}
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const info = { version, commit, dirty };
if (process.argv.includes('--write')) {
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, 'dist', 'build-info.json'), JSON.stringify({ commit, dirty }) + '\n');
}
process.stdout.write(JSON.stringify(info) + '\n');
