#!/usr/bin/env node
// `npm run build:sea`: the single executable dist/sea/rxtrace-linux-<arch> (Node's single
// executable applications, Node >= 20.12 for assets). Steps:
//   1. esbuild bundles src/sea/main.ts (the CLI and everything it imports, npm dependencies
//      included) into one CommonJS script, and src/sea/worker.ts into top-feed-worker.js: a SEA
//      main script can require only Node's built-in modules, so the code must be in one file.
//   2. The addon is the release build (prebuilds/linux-<arch>/rxtrace.node, glibc 2.28 baseline,
//      made here by scripts/ship/prebuild.sh when missing) and goes in as an asset.
//   3. node --experimental-sea-config makes the blob; postject injects it into a copy of node.
// The running node's arch is the one built (a SEA is a copy of the node that builds it).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const arch = process.arch;
const work = join(root, 'build', 'sea');
const out = join(root, 'dist', 'sea', `rxtrace-linux-${arch}`);
const addon = join(root, 'prebuilds', `linux-${arch}`, 'rxtrace.node');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

if (!existsSync(addon)) run('bash', ['scripts/ship/prebuild.sh', arch]);
const info = JSON.parse(execFileSync(process.execPath, [join(root, 'scripts/ship/build-info.mjs')], { encoding: 'utf8' }));

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
mkdirSync(dirname(out), { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  define: { __RXTRACE_SEA_BUILD__: JSON.stringify(info) },
  // import.meta.url is only read on the npm package's paths (files next to the module); the
  // single executable takes the embedded ones first (useEmbeddedNative, useEmbeddedWorkers).
  logOverride: { 'empty-import-meta': 'silent' },
};
await build({ ...common, entryPoints: [join(root, 'src/sea/main.ts')], outfile: join(work, 'main.cjs') });
await build({ ...common, entryPoints: [join(root, 'src/sea/worker.ts')], outfile: join(work, 'top-feed-worker.js') });

const config = join(work, 'sea-config.json');
writeFileSync(
  config,
  JSON.stringify({
    main: join(work, 'main.cjs'),
    output: join(work, 'sea-prep.blob'),
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: false,
    assets: { 'rxtrace.node': addon, 'top-feed-worker.js': join(work, 'top-feed-worker.js') },
  }),
);
run(process.execPath, ['--experimental-sea-config', config]);
rmSync(out, { force: true });
copyFileSync(process.execPath, out);
chmodSync(out, 0o755);
run(process.execPath, [
  join(root, 'node_modules/postject/dist/cli.js'),
  out,
  'NODE_SEA_BLOB',
  join(work, 'sea-prep.blob'),
  '--sentinel-fuse',
  'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
]);
console.log(`build:sea: ${out.slice(root.length + 1)} (${(statSync(out).size / 2 ** 20).toFixed(0)} MiB, rxtrace ${info.version} commit ${info.commit}${info.dirty ? '-dirty' : ''})`);
