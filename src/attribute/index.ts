export type { Attributor, AttributionStats } from './types.js';
export type { OwnerStats } from './owner-cache.js';
export { ProcAttributor, pointersAreReal, type ProcAttributorOptions } from './proc-attributor.js';
export * from './strategies.js';
export type { NsRow, TableRead } from './history.js';
