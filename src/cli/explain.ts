// `rxtrace explain`: watch the host for a few seconds with the tracer and the counters, then say
// where packets are dropped, whose socket it is, the numbers from this host, and what to change,
// most drops first. With --verify, a second window after the user's change says, per finding,
// whether the drops stopped. rxtrace changes nothing itself.
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import type { Finding } from '../explain/index.js';
import type { WindowOptions } from '../explain/gather.js';
import { cgroupOption, containerOption, unitOption, type OwnerSelector } from '../owner-match.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './lifecycle.js';
import { defaultFormat, formatOption, portNumber, positiveInt, positiveNumber, type Format } from './options.js';
import type { Outputs } from './output.js';

export interface ExplainCliOptions extends OwnerSelector {
  duration: number;
  format?: Format;
  port?: number;
  verify?: boolean;
  verifyAfter?: number;
  trace: boolean;
}

export function registerExplain(program: Command, outputs: Outputs): void {
  program
    .command('explain')
    .description('watch receive drops for a few seconds, then say where they happen, whose socket it is, and what to change (most drops first)')
    .option('-d, --duration <s>', 'seconds to watch', positiveNumber('--duration'), 5)
    .option('--format <fmt>', 'ndjson or text (default: ndjson when stdout is not a TTY)', formatOption)
    .option('-p, --port <n>', 'only sockets on this local port (host-wide findings still show)', portNumber)
    .option('--pid <pid>', 'only sockets owned by this process', positiveInt('--pid'))
    .option('--container <id>', 'only sockets owned by a process in this container (id prefix)', containerOption)
    .option('--unit <name>', 'only sockets owned by a process in this systemd unit', unitOption)
    .option('--cgroup <path>', 'only sockets owned by a process in this cgroup or below', cgroupOption)
    .option('--verify', 'after the findings, wait for your change (Enter on a TTY, else SIGUSR1), watch again and print before/after per finding')
    .option('--verify-after <s>', 'like --verify, but start the second window after this many seconds (for scripts)', positiveNumber('--verify-after'))
    .option('--no-trace', 'counters only: no tracepoints (drops are not split by cause per socket)')
    .addHelpText(
      'after',
      '\nNDJSON: one finding per line, {"place","cause","drops","socket","evidence","fixes":[{"kind":…}],"summary"};\n' +
        'with --verify, then one {"verify":true,"place","cause","socket","before","after","result"} per finding. Causes: see the README.',
    )
    .action(async (opts: ExplainCliOptions) => {
      process.exitCode = await runExplain(opts, outputs);
    });
}

/** Resolves when the user says the change is made, or on a stop signal (then false). */
function waitForChange(opts: ExplainCliOptions, stopped: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const cleanups: (() => void)[] = [];
    const done = (go: boolean): void => {
      for (const c of cleanups) c();
      resolve(go);
    };
    if (stopped.aborted) return done(false);
    const onAbort = (): void => done(false);
    stopped.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => stopped.removeEventListener('abort', onAbort));
    const onUsr1 = (): void => done(true);
    process.on('SIGUSR1', onUsr1);
    cleanups.push(() => process.off('SIGUSR1', onUsr1));
    // A signal listener does not keep node's event loop alive: without a TTY (nothing read) or a
    // timer, node would exit 0 right after the findings instead of waiting for SIGUSR1.
    const alive = setInterval(() => undefined, 1 << 30);
    cleanups.push(() => clearInterval(alive));
    if (opts.verifyAfter !== undefined) {
      process.stderr.write(`rxtrace: watching again in ${opts.verifyAfter} s (or on SIGUSR1 to pid ${process.pid})\n`);
      const t = setTimeout(() => done(true), opts.verifyAfter * 1000);
      cleanups.push(() => clearTimeout(t));
    } else if (process.stdin.isTTY) {
      process.stderr.write('rxtrace: make your change, then press Enter to watch again\n');
      const rl = createInterface({ input: process.stdin });
      rl.once('line', () => done(true));
      cleanups.push(() => rl.close());
    } else {
      process.stderr.write(`rxtrace: make your change, then send SIGUSR1 (kill -USR1 ${process.pid}) to watch again\n`);
    }
  });
}

export async function runExplain(opts: ExplainCliOptions, outputs: Outputs): Promise<number> {
  // Loaded when the command runs, not when the program is built: every module loaded at start-up
  // costs every other command its fds and time (the EMFILE sweep in faults-resources measures it).
  const [{ explain, verify }, { watchWindow }, { findingsText, verifyText }] = await Promise.all([
    import('../explain/index.js'),
    import('../explain/gather.js'),
    import('../render/explain-text.js'),
  ]);
  const format = defaultFormat(opts.format);
  const out = outputs.open();
  const stop = new AbortController();
  const unsignal = onStopSignals(() => stop.abort());
  out.onOutputEnded(() => stop.abort());
  const problems = new Set<string>();
  const win: WindowOptions = {
    seconds: opts.duration,
    port: opts.port,
    owners: { pid: opts.pid, container: opts.container, unit: opts.unit, cgroup: opts.cgroup },
    trace: opts.trace,
    signal: stop.signal,
    onProblem: (e) => {
      if (problems.has(e.message)) return;
      problems.add(e.message);
      process.stderr.write(`rxtrace: ${e.message}\n`);
    },
  };
  const print = async (lines: string[]): Promise<void> => {
    for (const l of lines) await out.line(l);
    await out.flush();
  };
  try {
    // Said when the window opens, not before start-up (seconds on a slow host), in every format
    // like trace's "tracing …" line: drops before it are outside the window's counter reads.
    const first = await watchWindow({ ...win, onOpen: () => process.stderr.write(`rxtrace: watching for ${opts.duration} s…\n`) });
    const before: Finding[] = explain(first);
    const s1 = first.interval.interval;
    await print(format === 'ndjson' ? before.map((f) => JSON.stringify(f)) : findingsText(before, s1));
    if ((opts.verify || opts.verifyAfter !== undefined) && !stop.signal.aborted) {
      if (await waitForChange(opts, stop.signal)) {
        const second = await watchWindow({ ...win, onOpen: () => process.stderr.write(`rxtrace: watching again for ${opts.duration} s…\n`) });
        const after = explain(second);
        const rows = verify(before, s1, after, second.interval.interval);
        await print(format === 'ndjson' ? rows.map((r) => JSON.stringify(r)) : ['', ...verifyText(rows)]);
      }
    }
  } finally {
    await out.end();
    unsignal();
  }
  return EXIT.OK;
}
