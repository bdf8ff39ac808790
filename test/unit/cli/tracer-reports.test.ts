import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { reportTracerProblems } from '../../../src/cli/tracer-reports.js';
import { RxtraceError } from '../../../src/errors.js';
import type { RxTracer } from '../../../src/tracer.js';

describe('reportTracerProblems (the CLI side of the tracer\'s error and warning events)', () => {
  it('one line per distinct problem, with its hint; errors say tracing goes on', () => {
    const t = new EventEmitter();
    const lines: string[] = [];
    reportTracerProblems(t as unknown as RxTracer, (l) => lines.push(l));
    const parse = new RxtraceError('EPARSE', '/proc/net/udp:2: expected at least 12 columns', { hint: 'please report it' });
    t.emit('error', parse);
    t.emit('error', parse);
    t.emit('warning', new RxtraceError('EACCES', 'no owner found for udp 127.0.0.1:5000', { hint: 'run as root' }));
    expect(lines).toEqual([
      'rxtrace: /proc/net/udp:2: expected at least 12 columns (please report it); tracing goes on',
      'rxtrace: warning: no owner found for udp 127.0.0.1:5000 (run as root)',
    ]);
  });

  it('a storm of different failures is cut off after a handful, saying so once', () => {
    const t = new EventEmitter();
    const lines: string[] = [];
    reportTracerProblems(t as unknown as RxTracer, (l) => lines.push(l));
    for (let i = 0; i < 50; i++) t.emit('error', new Error(`failure ${i}`));
    expect(lines).toHaveLength(9);
    expect(lines[8]).toMatch(/more problems follow; not shown/);
  });
});
