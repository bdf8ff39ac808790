// Worker threads, started from their compiled file next to the caller (the npm package), or
// from the source the single executable carries inside it (src/sea/): it has no files on disk.
import { Worker } from 'node:worker_threads';

/** The worker scripts rxtrace has (each is also an entry of the single executable's bundle). */
export type WorkerName = 'top-feed-worker';

let embedded: ((name: WorkerName) => Worker) | undefined;

/** The single executable starts its workers itself. */
export function useEmbeddedWorkers(start: (name: WorkerName) => Worker): void {
  embedded = start;
}

/** `file` is only called in the npm package (import.meta.url means nothing inside the bundle). */
export function startWorker(name: WorkerName, file: () => URL): Worker {
  return embedded ? embedded(name) : new Worker(file());
}
