// The checks of `rxtrace doctor`, one function each: every one reads or tries something real and
// changes nothing (the tracefs mount for the checks is runDoctor's, index.ts).
// Split by subject; this file gathers them for index.ts.
export const MOUNT_POINT = '/sys/kernel/tracing';
export type { HostFacts } from './context.js';
export * from './checks-process.js';
export * from './checks-tracing.js';
export * from './checks-pointers.js';
export * from './checks-proc.js';
