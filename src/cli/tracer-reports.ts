// What the tracer could not do while tracing goes on ('error': a socket table it cannot parse,
// attribution that failed; 'warning': owners it cannot read), as lines on stderr: each distinct
// message once, and at most a handful, so a storm of one failure cannot flood the terminal.
import { RxtraceError } from '../errors.js';
import type { RxTracer } from '../tracer.js';

const MAX_LINES = 8;

export function reportTracerProblems(tracer: RxTracer, say: (line: string) => void = (l) => void process.stderr.write(`${l}\n`)): void {
  const seen = new Set<string>();
  let quiet = false;
  const line = (kind: 'error' | 'warning', e: Error): void => {
    const hint = e instanceof RxtraceError && e.hint ? ` (${e.hint})` : '';
    const text = kind === 'error' ? `rxtrace: ${e.message}${hint}; tracing goes on` : `rxtrace: warning: ${e.message}${hint}`;
    if (seen.has(text) || quiet) return;
    if (seen.size >= MAX_LINES) {
      quiet = true;
      say(`rxtrace: more problems follow; not shown (${MAX_LINES} already)`);
      return;
    }
    seen.add(text);
    say(text);
  };
  tracer.on('error', (e) => line('error', e));
  tracer.on('warning', (e) => line('warning', e));
}
