// `rxtrace stats`: the receive funnel per interval, as NDJSON (one object per interval) or as
// a compact text funnel. Counters only: no tracing, no root needed (owners need it).
import type { Command } from 'commander';
import { buildInterval } from '../counters/funnel.js';
import { SnapshotReader } from '../counters/snapshot.js';
import { renderFunnelText } from '../render/funnel-text.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './lifecycle.js';
import { defaultFormat, formatOption, intervalOptions, type Format } from './options.js';
import { IntervalClock } from './interval-clock.js';
import type { Outputs } from './output.js';

export interface StatsCliOptions {
  interval: number;
  count?: number;
  format?: Format;
  all?: boolean;
  sockets: boolean;
}

export function registerStats(program: Command, outputs: Outputs): void {
  intervalOptions(
    program
      .command('stats')
      .description('the receive funnel per interval: NIC, softnet backlog, IP, UDP and socket drops, with the socket drops reconciled against RcvbufErrors + MemErrors'),
    'seconds per interval',
    'stop after this many intervals',
  )
    .option('--format <fmt>', 'ndjson or text (default: ndjson when stdout is not a TTY)', formatOption)
    .option('--all', 'text: also show counters and rows that are zero')
    .option('--no-sockets', 'do not read socket tables and owners (cheaper; no socket rows, no reconciliation per socket)')
    .addHelpText(
      'after',
      '\nNDJSON: {"time","interval","delta":{dev,statistics,softnet_stat,snmp,snmp6,sockets},"gauges","funnel","losing","reconcile"[,"notes","errors"]}\n' +
        'per interval, counters under the kernel\'s names. See docs/funnel.md.',
    )
    .action(async (opts: StatsCliOptions) => {
      process.exitCode = await runStats(opts, outputs);
    });
}

export async function runStats(opts: StatsCliOptions, outputs: Outputs): Promise<number> {
  const format = defaultFormat(opts.format);
  const out = outputs.open();
  const clock = new IntervalClock(opts.interval * 1000);
  const stop = (): void => clock.stop();
  const unsignal = onStopSignals(stop);
  out.onOutputEnded(stop);
  const reader = new SnapshotReader({ sockets: opts.sockets });
  try {
    let prev = await reader.read();
    clock.startAt(prev.monoMs);
    while (opts.count === undefined || clock.count < opts.count) {
      if (!(await clock.next())) break;
      const k = clock.count;
      const cur = await reader.read();
      const iv = buildInterval(prev, cur);
      prev = cur;
      if (format === 'ndjson') {
        await out.line(JSON.stringify(iv));
      } else {
        if (k > 1) await out.line('');
        for (const l of renderFunnelText(iv, { all: opts.all })) await out.line(l);
      }
      // Each interval reaches the reader at once: these are minutes apart, not a stream.
      await out.flush();
      if (out.outputEnded) break;
    }
  } finally {
    await out.end();
    unsignal();
  }
  return EXIT.OK;
}
