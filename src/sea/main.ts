// Entry point of the single executable (npm run build:sea): Node's single executable application
// with this bundle as its main script, and two assets: rxtrace.node (the addon for this arch) and
// top-feed-worker.js (the bundle of src/sea/worker.ts). Nothing is read from disk: the addon is
// written to an unnamed file on first use, and workers start from their source with eval.
import { getAsset, getRawAsset } from 'node:sea';
import { Worker } from 'node:worker_threads';
import { loadNative, useEmbeddedNative } from '../native.js';
import { useEmbeddedWorkers } from '../workers.js';
import { loadFromUnnamedFile, type AddonFile } from './addon-file.js';
import { dlopenAddon } from './dlopen.js';

let addonFile: AddonFile | undefined;

// Lazily: `--version`, `--help` and usage errors never write the addon anywhere.
useEmbeddedNative(() => {
  const { file, value } = loadFromUnnamedFile(new Uint8Array(getRawAsset('rxtrace.node') as ArrayBuffer), dlopenAddon);
  addonFile = file;
  return value;
});

useEmbeddedWorkers((name) => {
  // The worker dlopens the same unnamed file (same process, same fd): load it here first, so
  // that it exists, and a failure is reported as for any command.
  loadNative();
  return new Worker(getAsset(`${name}.js`, 'utf8'), { eval: true, workerData: { rxtraceAddon: addonFile!.path } });
});

void import('../cli/main.js');
