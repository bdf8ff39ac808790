// Ring sizing: how big each per-CPU perf ring is, and the wakeup and batch sizes that follow from
// it. One place, so that the tracer, doctor's probes and every error about a ring size agree.
import { RxtraceError } from './errors.js';
import { getPageSize, type NativeEventSpec, type NativeSessionOptions } from './native.js';

/**
 * The rings are the cheapest buffer against a consumer that falls behind (a GC pause, a busy
 * machine): the kernel writes them directly, nothing is copied until the reader drains them, and
 * their pages are not in our RSS. At a million drops a second a 2 MiB ring holds 15 ms; 8 MiB
 * holds 60 ms. 64 MiB of locked kernel memory in total, 2–8 MiB per CPU.
 */
export function defaultRingPages(ncpus: number, page = getPageSize()): number {
  const perCpu = Math.min(8 << 20, Math.max(2 << 20, (64 << 20) / Math.max(1, ncpus)));
  let pages = 1;
  while (pages * 2 * page <= perCpu) pages *= 2;
  return pages;
}

/**
 * A batch of an eighth of a ring (at least 256 KiB): the addon's final drain at close() makes a
 * bounded number of passes of one batch per ring, which empties a ring of up to 12 batches.
 */
function defaultBatchBytes(ringPages: number): number {
  return Math.max(256 * 1024, Math.floor((ringPages * getPageSize()) / 8));
}

/** Every ring size passes here, before anything is opened: a power of two, at most 2^20 pages. */
export function checkRingPages(ringPages: number): void {
  if (!Number.isInteger(ringPages) || ringPages < 1 || (ringPages & (ringPages - 1)) !== 0) {
    throw new RxtraceError('EINVAL', `ring size ${ringPages} pages is not a power of two`, { hint: 'use e.g. 64, 512 or 2048 pages' });
  }
  // The addon refuses more than 2^20 pages (4 GiB per CPU with 4 KiB pages); say it in our words.
  if (ringPages > 2 ** 20) {
    throw new RxtraceError('EINVAL', `ring size ${ringPages} pages is above the limit of ${2 ** 20} pages per CPU`, {
      hint: 'use a smaller --ring-pages, e.g. 64, 512 or 2048 pages',
    });
  }
}

/**
 * The addon's session options for `events` on `cpus`: the one place where the ring size is
 * checked and the sizes that follow from it (wakeup, batch) are derived. doctor's probes use it too.
 */
export function sessionOptions(
  events: NativeEventSpec[],
  cpus: number[],
  ringPages: number,
  o: { flushMs?: number; batchBytes?: number; maxQueuedBatches?: number } = {},
): NativeSessionOptions {
  checkRingPages(ringPages);
  return {
    events,
    cpus,
    ringPages,
    // Wake the reader when a ring is an eighth full (a page at least).
    wakeupBytes: Math.max(getPageSize(), Math.floor((ringPages * getPageSize()) / 8)),
    flushMs: o.flushMs ?? 20,
    batchBytes: o.batchBytes ?? defaultBatchBytes(ringPages),
    maxQueuedBatches: o.maxQueuedBatches ?? 8,
  };
}
