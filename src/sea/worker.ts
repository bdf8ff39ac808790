// Entry point of a worker thread inside the single executable (bundled as the asset
// top-feed-worker.js): the addon is the unnamed file the main thread opened (workerData).
import { workerData } from 'node:worker_threads';
import { useEmbeddedNative } from '../native.js';
import { dlopenAddon } from './dlopen.js';

const { rxtraceAddon } = workerData as { rxtraceAddon: string };
useEmbeddedNative(() => dlopenAddon(rxtraceAddon));
void import('../cli/top-feed-worker.js');
