// Gate for live tests: they need root (perf_event_open on tracepoints, tracefs, netns).
// With CI=true they never skip: a CI run that cannot trace must fail loudly, not pass quietly.
import { describe } from 'vitest';

export function liveSkipReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'live tests need root (perf_event_open on tracepoints, tracefs, network namespaces)';
  }
  if (process.platform !== 'linux') return 'live tests need Linux';
  return undefined;
}

/** describe() for live tests: skips with a reason on a laptop, throws under CI. */
export function describeLive(name: string, fn: () => void): void {
  const reason = liveSkipReason();
  if (reason && process.env.CI === 'true') {
    describe(name, () => {
      throw new Error(`CI=true but live tests cannot run: ${reason}`);
    });
    return;
  }
  if (reason) {
    console.warn(`[rxtrace] skipping live suite "${name}": ${reason}`);
    describe.skipIf(true)(name, fn);
    return;
  }
  describe(name, fn);
}
