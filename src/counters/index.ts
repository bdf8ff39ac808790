// Counters: snapshots of every /proc and /sys source → deltas (wrap, reset, appear, vanish) →
// the receive funnel per interval, with the reconciliation of socket drops.
export * from './delta.js';
export * from './snapshot.js';
export * from './funnel.js';
export * from './rcvbuf.js';
