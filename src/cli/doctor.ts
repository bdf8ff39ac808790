// `rxtrace doctor`: what works here and why not, one check per line (src/doctor.ts does the
// checking). Exit 0 when no check failed; otherwise the code `rxtrace trace` would exit with:
// 77 when a failure is a missing privilege, else 69 (tracing unavailable) or 71 (OS resource).
import type { Command } from 'commander';
import { runDoctor, type DoctorCheck } from '../doctor/index.js';
import { RxtraceError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { defaultFormat, formatOption, type Format } from './options.js';
import type { Outputs } from './output.js';

export function registerDoctor(program: Command, outputs: Outputs): void {
  program
    .command('doctor')
    .description('what works here and why not: tracefs, tracepoints and their layouts, perf permissions, ring memory, kptr_restrict, /proc')
    .option('--format <fmt>', 'ndjson or text (default: ndjson when stdout is not a TTY)', formatOption)
    .option('--no-mount', 'do not mount tracefs for the checks when it is not mounted (by default it is read through a private detached mount, as trace does)')
    .action(async (opts: { format?: Format; mount: boolean }) => {
      const checks = await withSignalsDeferred(() => runDoctor({ tracefs: { mount: opts.mount } }));
      const out = outputs.open();
      if (defaultFormat(opts.format) === 'ndjson') {
        for (const c of checks) await out.line(JSON.stringify(c));
      } else {
        for (const line of doctorTable(checks)) await out.line(line);
      }
      await out.end();
      process.exitCode = doctorExitCode(checks);
    });
}

/**
 * Doctor may mount tracefs for a moment. Its private detached mount dies with the process
 * anyway, but on a kernel that refuses one it falls back to mounting at /sys/kernel/tracing: a
 * SIGINT/SIGTERM/SIGHUP meanwhile must not kill the process with that mount in place. Hold the
 * signal until the checks (and the unmount) are done, then let it take its default action.
 */
async function withSignalsDeferred<T>(fn: () => Promise<T>): Promise<T> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let received: NodeJS.Signals | undefined;
  const hold = (s: NodeJS.Signals): void => {
    received ??= s;
  };
  for (const s of signals) process.on(s, hold);
  try {
    return await fn();
  } finally {
    for (const s of signals) process.off(s, hold);
    if (received) {
      process.kill(process.pid, received);
      // The default action ends the process; nothing more is written meanwhile.
      await new Promise(() => undefined);
    }
  }
}

/** 0 when nothing failed; else 77 if a failure is a permission, else 69, else the first failure's code. */
export function doctorExitCode(checks: DoctorCheck[]): number {
  const codes = checks
    .filter((c) => c.status === 'fail')
    .map((c) => (c.code === undefined || c.code === 'ENOADDON' ? EXIT.UNAVAILABLE : exitCodeFor(new RxtraceError(c.code, c.detail))));
  if (codes.length === 0) return EXIT.OK;
  if (codes.includes(EXIT.NOPERM)) return EXIT.NOPERM;
  if (codes.includes(EXIT.UNAVAILABLE)) return EXIT.UNAVAILABLE;
  return codes[0];
}

/** STATUS  CHECK  DETAIL → hint, one line per check, then a count. */
export function doctorTable(checks: DoctorCheck[]): string[] {
  const width = Math.max('CHECK'.length, ...checks.map((c) => c.check.length));
  const row = (status: string, check: string, detail: string): string => `${status.padEnd(6)}  ${check.padEnd(width)}  ${detail}`;
  const lines = [row('STATUS', 'CHECK', 'DETAIL')];
  for (const c of checks) lines.push(row(c.status, c.check, c.hint ? `${c.detail} → ${c.hint}` : c.detail));
  const count = (s: DoctorCheck['status']): number => checks.filter((c) => c.status === s).length;
  lines.push('', `${checks.length} checks: ${count('ok')} ok, ${count('warn')} warn, ${count('fail')} fail, ${count('info')} info`);
  return lines;
}
