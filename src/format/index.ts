export * from './schema.js';
export { parseFormat } from './parse.js';
export { parsePrintFmt } from './print-fmt.js';
