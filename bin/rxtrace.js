#!/usr/bin/env node
// The rxtrace command. The program lives in dist/cli/main.js (built by `npm install`).
import('../dist/cli/main.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('rxtrace: not built yet: run `npm install` (or `npm run build`) in the rxtrace directory\n');
    process.exit(70);
  }
  throw e;
});
