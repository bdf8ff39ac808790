// The rxtrace command line: commander program, subcommands, and the one place that turns
// errors into a clear line and an exit code.
//
// Stop signals are caught before anything else is even loaded (lifecycle.ts): a SIGINT or
// SIGTERM during start-up must not kill the process in the middle of it (with tracefs mounted,
// say). So this module imports only lifecycle.js statically, and the rest once that is done.
import type { Command } from 'commander';
import { installStopSignals, onFirstStopSignal, restoreDefaultSignals } from './lifecycle.js';
import type { Outputs } from './output.js';

installStopSignals();

/** The commands with a clean stop on SIGINT/SIGTERM/SIGHUP; the others get the default actions. */
const STOPPABLE = new Set(['trace', 'top', 'serve', 'stats', 'explain']);

export async function buildProgram(outputs: Outputs): Promise<Command> {
  const [{ Command }, { registerServe }, { registerSockets }, { registerStats }, { registerTop }, { registerTrace }, { registerDoctor }, { registerExplain }] = await Promise.all([
    import('commander'),
    import('./serve.js'),
    import('./sockets.js'),
    import('./stats.js'),
    import('./top.js'),
    import('./trace.js'),
    import('./doctor.js'),
    import('./explain.js'),
  ]);
  const { version } = (await import('../version.js')).buildInfo();
  const program = new Command('rxtrace')
    .description('Live tracer for Linux socket receive drops: where, which socket, which process, why')
    .version(version)
    .exitOverride()
    // Usage errors follow the rest of rxtrace: one line, prefixed, with the way out.
    .configureOutput({
      writeErr: (str) => {
        const lines = str.split('\n').filter((l) => l.trim().length > 0);
        if (lines.length > 0) process.stderr.write(`rxtrace: ${lines[0].replace(/^error: /, '')} (run rxtrace --help for usage)\n`);
      },
    })
    .hook('preAction', (_program, command) => {
      if (!STOPPABLE.has(command.name())) restoreDefaultSignals();
    });
  registerTrace(program, outputs);
  registerSockets(program, outputs);
  registerServe(program);
  registerStats(program, outputs);
  registerTop(program, outputs);
  registerDoctor(program, outputs);
  registerExplain(program, outputs);
  return program;
}

/**
 * Run the program. `outputs` holds the commands' writers: the first stop signal bounds their
 * final flush (a stuck stdout cannot hold the exit), and what they came to decides the exit
 * here (71 after a failed write) and in finish().
 */
export async function main(argv: string[], outputs: Outputs): Promise<number> {
  const [{ CommanderError }, { EXIT, reportError }] = await Promise.all([import('commander'), import('./exit-codes.js')]);
  onFirstStopSignal((signal) => outputs.boundFinalFlush(`after ${signal}`));
  try {
    // The program first: --version loads every module, as it always has (the EMFILE fault test
    // finds the lowest usable `ulimit -n` with it), and still touches no addon.
    const program = await buildProgram(outputs);
    const { versionRequest, versionText } = await import('./version.js');
    const versionFormat = versionRequest(argv.slice(2));
    if (versionFormat) {
      process.stdout.write(versionText(versionFormat));
      return EXIT.OK;
    }
    await program.parseAsync(argv);
    if (outputs.failed) return EXIT.OSERR;
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message; help and version are successes.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    return reportError(e);
  }
}

function finish(code: number, outputs: Outputs): void {
  process.exitCode = code;
  // Output given up after a stop signal (a stuck stdout): its pending write would keep the
  // process alive, so end it here, with the code the command chose.
  if (outputs.cutShort) process.exit(code);
}

void import('./output.js').then(async ({ Outputs }) => {
  const outputs = new Outputs();
  try {
    finish(await main(process.argv, outputs), outputs);
  } catch (e) {
    const { reportError } = await import('./exit-codes.js');
    finish(reportError(e), outputs);
  }
});
