// The /proc and /sys parsers: one module per table, each a pure text → object parser plus a
// thin reader. Parsers throw only ProcParseError; readers map a missing file to an empty value.
export * from './errors.js';
export * from './addr.js';
export * from './sockets.js';
export * from './snmp.js';
export * from './softnet.js';
export * from './netdev.js';
export * from './sysfs-stats.js';
export * from './sockstat.js';
export * from './owners.js';
export * from './netstat.js';
