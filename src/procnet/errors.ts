// ProcParseError: a /proc or /sys file whose text rxtrace cannot read as the kernel's layout.
// Every parser in src/procnet throws only this for bad input (never a TypeError), so callers
// can tell "unknown layout, report it" apart from I/O errors and bugs.
import { RxtraceError } from '../errors.js';

export class ProcParseError extends RxtraceError {
  /** The file the text came from, e.g. `/proc/net/udp` (the conventional path for pure parsers). */
  readonly file: string;
  /** 1-based line number of the offending line; 0 when the error is not tied to one line. */
  readonly line: number;

  constructor(file: string, line: number, message: string, text?: string) {
    const where = line > 0 ? `${file}:${line}: ` : file ? `${file}: ` : '';
    const shown = text === undefined ? '' : `: ${JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text)}`;
    super('EPARSE', `${where}${message}${shown}`, {
      path: file || undefined,
      hint: `rxtrace does not know this layout of ${file || 'the file'}; please report it with the file's contents and \`uname -r\``,
    });
    this.name = 'ProcParseError';
    this.file = file;
    this.line = line;
  }
}

export function isProcParseError(e: unknown): e is ProcParseError {
  return e instanceof ProcParseError;
}
