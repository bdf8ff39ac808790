// A full-screen terminal session that always gives the terminal back: alternate screen, hidden
// cursor and raw keys on enter; restored on leave(), on process exit, on an uncaught exception
// or rejection (then the error is printed on the normal screen and the process exits 1), and
// before a signal that ends the process. Restoring writes synchronously, so it also works from
// the 'exit' handler.
import { writeSync } from 'node:fs';
import type { ReadStream, WriteStream } from 'node:tty';
import { EXIT, reportError } from './exit-codes.js';

const ENTER = '\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J';
const LEAVE = '\x1b[0m\x1b[?25h\x1b[?1049l';

export class FullScreen {
  private active = false;
  private readonly handlers: [string, (...args: never[]) => void][] = [];

  constructor(
    private readonly out: WriteStream = process.stdout as WriteStream,
    private readonly input: ReadStream | undefined = process.stdin.isTTY ? (process.stdin as ReadStream) : undefined,
  ) {}

  get columns(): number {
    return this.out.columns || 80;
  }

  get rows(): number {
    return this.out.rows || 24;
  }

  /** Takes over the terminal. `onKey` receives each key as a string ('\x03' is Ctrl-C in raw mode). */
  enter(onKey?: (key: string) => void): void {
    if (this.active) return;
    this.active = true;
    this.on('exit', () => this.leave());
    const crash = (e: unknown): void => {
      this.leave();
      process.exitCode = reportError(e);
      if (process.exitCode === EXIT.OK) process.exitCode = EXIT.INTERNAL;
      process.exit();
    };
    this.on('uncaughtException', crash);
    this.on('unhandledRejection', crash);
    writeSync(this.fd(), ENTER);
    if (this.input) {
      this.input.setRawMode(true);
      this.input.setEncoding('utf8');
      if (onKey) {
        const data = (chunk: string): void => {
          for (const key of splitKeys(chunk)) onKey(key);
        };
        this.input.on('data', data);
        this.handlers.push(['input-data', data as never]);
      }
      this.input.resume();
    }
  }

  private fd(): number {
    return (this.out as unknown as { fd?: number }).fd ?? 1;
  }

  private on(event: 'exit' | 'uncaughtException' | 'unhandledRejection', fn: (...args: never[]) => void): void {
    process.on(event, fn as never);
    this.handlers.push([event, fn]);
  }

  /** Replaces the screen with `lines` (already fitted to the width); `styled` adds escape codes per line. */
  draw(lines: readonly string[], styled?: (line: string, index: number) => string): void {
    if (!this.active) return;
    let s = '\x1b[H';
    for (let i = 0; i < lines.length; i++) s += `${styled ? styled(lines[i], i) : lines[i]}\x1b[K${i < lines.length - 1 ? '\r\n' : ''}`;
    s += '\x1b[J';
    this.out.write(s);
  }

  /** Gives the terminal back. Idempotent and synchronous. */
  leave(): void {
    if (!this.active) return;
    this.active = false;
    for (const [event, fn] of this.handlers) {
      if (event === 'input-data') this.input?.off('data', fn as never);
      else process.off(event, fn as never);
    }
    this.handlers.length = 0;
    if (this.input) {
      try {
        this.input.setRawMode(false);
      } catch {
        // stdin already closed: nothing to restore there
      }
      this.input.pause();
    }
    try {
      writeSync(this.fd(), LEAVE);
    } catch {
      // the terminal has gone (hangup): nothing left to restore
    }
  }
}

/** A chunk of raw input → keys: escape sequences (arrows…) stay whole, other characters one by one. */
export function splitKeys(chunk: string): string[] {
  const keys: string[] = [];
  let i = 0;
  while (i < chunk.length) {
    if (chunk[i] === '\x1b' && chunk[i + 1] === '[') {
      let j = i + 2;
      while (j < chunk.length && !/[A-Za-z~]/.test(chunk[j])) j++;
      keys.push(chunk.slice(i, j + 1));
      i = j + 1;
    } else {
      const cp = chunk.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      keys.push(ch);
      i += ch.length;
    }
  }
  return keys;
}

/** Whether the terminal takes UTF-8 (the locale says so), for the trend's block characters. */
export function terminalIsUtf8(env: NodeJS.ProcessEnv = process.env): boolean {
  const loc = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(loc);
}
