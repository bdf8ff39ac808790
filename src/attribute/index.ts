export type { Attributor, AttributionStats } from './types.js';
export type { OwnerStats } from '../procnet/owner-cache.js';
export { ProcAttributor, type ProcAttributorOptions } from './proc-attributor.js';
export { pointersAreReal } from './event-facts.js';
export * from './strategies.js';
export type { NsRow, TableRead } from './history.js';
