// The rxtrace command line: commander program, subcommands, and the one place that turns
// errors into a clear line and an exit code.
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { registerDoctor } from './doctor.js';
import { EXIT, reportError } from './exit-codes.js';
import { outputFailed } from './output.js';
import { registerServe } from './serve.js';
import { registerSockets } from './sockets.js';
import { registerStats } from './stats.js';
import { registerTop } from './top.js';
import { registerTrace } from './trace.js';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

export function buildProgram(): Command {
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
    });
  registerTrace(program);
  registerSockets(program);
  registerServe(program);
  registerStats(program);
  registerTop(program);
  registerDoctor(program);
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    if (outputFailed()) return EXIT.OSERR;
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message; help and version are successes.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    return reportError(e);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.exitCode = reportError(e);
  },
);
