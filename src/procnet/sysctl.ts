// Numeric sysctls under /proc/sys (kernel.perf_event_paranoid, kernel.perf_event_mlock_kb,
// kernel.kptr_restrict…). The one reader: the tracer's errors, doctor and the tests ask here.
import { readFileSync } from 'node:fs';

/** `kernel.perf_event_mlock_kb` → /proc/sys/kernel/perf_event_mlock_kb. */
export function sysctlPath(name: string, procRoot = '/proc'): string {
  return `${procRoot}/sys/${name.replace(/\./g, '/')}`;
}

/** A sysctl holding one integer; undefined when it is absent, unreadable or not a number. */
export function readSysctlNumber(name: string, procRoot = '/proc'): number | undefined {
  let text: string;
  try {
    text = readFileSync(sysctlPath(name, procRoot), 'utf8').trim();
  } catch {
    return undefined;
  }
  const n = Number(text);
  return text !== '' && Number.isFinite(n) ? n : undefined;
}
