// What this copy of rxtrace is: its version, the commit it was built from, how it runs (the npm
// package, or the single executable with everything inside it) and the versions of its output
// contracts. `rxtrace --version` prints it; CHANGELOG.md says what each contract version means.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Semantic versions of what consumers parse. MAJOR: a key removed or its meaning changed; MINOR:
 * keys, events or series added (consumers must accept unknown ones); PATCH: fixes only.
 */
export const CONTRACTS = {
  /** The NDJSON lines of trace, sockets, stats, doctor and the library's event objects. */
  ndjson: '1.1.0',
  /** The Prometheus series of `rxtrace serve` (names, labels, meaning). */
  metrics: '1.1.0',
} as const;

export interface BuildInfo {
  version: string;
  /** Short commit hash, 'unknown' when built outside git. */
  commit: string;
  /** The tree had uncommitted changes when this was built. */
  dirty: boolean;
  /** 'npm': dist/ and an addon file on disk; 'sea': the single executable. */
  runtime: 'npm' | 'sea';
}

/** Set by the single executable's bundle (esbuild define); absent in the npm package. */
declare const __RXTRACE_SEA_BUILD__: Omit<BuildInfo, 'runtime'> | undefined;

export function buildInfo(): BuildInfo {
  if (typeof __RXTRACE_SEA_BUILD__ !== 'undefined') return { ...__RXTRACE_SEA_BUILD__, runtime: 'sea' };
  // src/version.ts and dist/version.js both sit one level below the package root.
  const require = createRequire(import.meta.url);
  const { version } = require('../package.json') as { version: string };
  let commit = 'unknown';
  let dirty = false;
  try {
    // Written by `npm run build` (scripts/ship/build-info.mjs), so it ships in the tarball.
    const info = JSON.parse(readFileSync(new URL('./build-info.json', import.meta.url), 'utf8')) as { commit?: string; dirty?: boolean };
    commit = info.commit ?? commit;
    dirty = info.dirty === true;
  } catch {
    // Not built by the build script (tests run from src/): the commit is unknown.
  }
  return { version, commit, dirty, runtime: 'npm' };
}
