// Option parsers shared by the subcommands: each rejects bad input with a usage error that
// names the option and what it wanted.
import { InvalidArgumentError, type Command } from 'commander';

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${v}"`);
    return n;
  };
}

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

export function portNumber(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError(`a port is a number 0-65535, got "${v}"`);
  return n;
}

/** -e a,b -e c → [a, b, c] */
export function collectList(v: string, prev: string[] = []): string[] {
  return prev.concat(v.split(',').map((s) => s.trim()).filter(Boolean));
}

export type Format = 'ndjson' | 'text';

export function formatOption(v: string): Format {
  if (v !== 'ndjson' && v !== 'text') throw new InvalidArgumentError(`--format is ndjson or text, got "${v}"`);
  return v;
}

/** NDJSON when stdout is a pipe or file, text on a TTY (DESIGN.md). */
export function defaultFormat(explicit: Format | undefined): Format {
  return explicit ?? (process.stdout.isTTY ? 'text' : 'ndjson');
}

/** How serve and top learn drop counts: kernel counters (the default) or one event per drop. */
export type DropMode = 'counting' | 'events';

export function modeOption(v: string): DropMode {
  if (v !== 'counting' && v !== 'events') throw new InvalidArgumentError(`--mode is counting or events, got "${v}"`);
  return v;
}

/** `-i, --interval` and `-n, --count`: stats and top repeat on the same clock, in the same words. */
export function intervalOptions(cmd: Command, interval: string, count: string): Command {
  return cmd.option('-i, --interval <s>', interval, positiveNumber('--interval'), 1).option('-n, --count <n>', count, positiveInt('--count'));
}
