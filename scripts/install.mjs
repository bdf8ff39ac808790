#!/usr/bin/env node
// npm's install step. Uses the prebuilt addon shipped in the tarball when it loads on this host
// (prebuilds/<platform>-<arch>/rxtrace.node: glibc >= 2.28, x64 or arm64); otherwise builds
// from source with node-gyp, which needs a C++ compiler, make and Python. Says which, in one line.
// `npm install --build-from-source` (or RXTRACE_BUILD_FROM_SOURCE=1) always builds.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = `${process.platform}-${process.arch}`;
const prebuilt = join(root, 'prebuilds', target, 'rxtrace.node');
const fromSource = /^(1|true)$/.test(process.env.npm_config_build_from_source ?? process.env.RXTRACE_BUILD_FROM_SOURCE ?? '');

/** Why the prebuilt binary does not fit here, or undefined when it loads and answers. */
function prebuiltProblem() {
  if (fromSource) return 'building from source as asked';
  if (!existsSync(prebuilt)) return `none for ${target}`;
  // In a child, so that a binary that crashes on load cannot take the install with it.
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(prebuilt)}).clockOffsetNs()`], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (probe.status === 0) return undefined;
  const why = (probe.stderr || '').split('\n').find((l) => /Error|error:/.test(l)) ?? `exit ${probe.status ?? probe.signal}`;
  return `the ${target} one does not load (${why.trim()})`;
}

const problem = prebuiltProblem();
if (problem === undefined) {
  console.log(`rxtrace: using the prebuilt addon ${relative(root, prebuilt)} (no compiler needed)`);
  process.exit(0);
}
// Our own node-gyp dependency, else the one npm bundles.
let gyp;
try {
  gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = process.env.npm_config_node_gyp;
}
if (!gyp) {
  console.error(`rxtrace: no prebuilt addon fits (${problem}) and node-gyp is not installed: reinstall with npm, or build from a source checkout`);
  process.exit(1);
}
const build = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (build.status !== 0) {
  process.stderr.write(build.stderr ?? '');
  console.error(`rxtrace: no prebuilt addon fits (${problem}) and building it with node-gyp failed (output above; it needs g++, make, python3 and the Node headers)`);
  process.exit(1);
}
console.log(`rxtrace: no prebuilt addon fits (${problem}); built it from source with node-gyp`);
