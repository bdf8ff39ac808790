export type { Attributor } from './types.js';
export { ProcAttributor, pointersAreReal, type ProcAttributorOptions } from './proc-attributor.js';
export * from './strategies.js';
export type { NsRow, TableRead } from './history.js';
