// `rxtrace sockets`: an ss-like snapshot of UDP, raw and ICMP sockets in every namespace,
// with owners, sorted by drops.
import type { Command } from 'commander';
import { SOCKET_TABLES, type SocketTable } from '../procnet/sockets.js';
import { readSockets, type SocketSnapshotRow } from '../sockets.js';
import { EXIT } from './exit-codes.js';
import { collectList, defaultFormat, formatOption, type Format } from './options.js';
import { LineWriter } from './output.js';
import { RxtraceError } from '../errors.js';
import { ownersText } from '../render/units.js';

export function registerSockets(program: Command): void {
  program
    .command('sockets')
    .description('snapshot of UDP, raw and ICMP sockets in every network namespace, with owners, sorted by drops')
    .option('--table <name...>', `tables to read (${SOCKET_TABLES.join(', ')})`, collectList)
    .option('--dropping', 'only sockets with drops > 0')
    .option('--no-owners', 'skip the /proc/PID/fd scan for owners (fast on hosts with many open files)')
    .option('--format <fmt>', 'ndjson or text (default: ndjson when stdout is not a TTY)', formatOption)
    .action(async (opts: { table?: string[]; dropping?: boolean; owners?: boolean; format?: Format }) => {
      const tables = (opts.table ?? [...SOCKET_TABLES]).map((t) => {
        if (!(SOCKET_TABLES as readonly string[]).includes(t)) {
          throw new RxtraceError('EUSAGE', `unknown table "${t}"`, { hint: `tables are ${SOCKET_TABLES.join(', ')}` });
        }
        return t as SocketTable;
      });
      let rows = await readSockets({ tables, withOwners: opts.owners !== false });
      if (opts.dropping) rows = rows.filter((r) => (r.drops ?? 0) > 0);
      const out = new LineWriter();
      if (defaultFormat(opts.format) === 'ndjson') {
        for (const r of rows) await out.line(JSON.stringify(r));
      } else {
        for (const line of socketsTable(rows)) await out.line(line);
      }
      await out.end();
      process.exitCode = EXIT.OK;
    });
}

export function socketsTable(rows: SocketSnapshotRow[]): string[] {
  const head = ['TABLE', 'LOCAL', 'REMOTE', 'RX_QUEUE', 'DROPS', 'INODE', 'NETNS', 'OWNERS'];
  const body = rows.map((r) => [
    r.table,
    r.local,
    r.remote,
    String(r.rx_queue),
    r.drops === null ? '?' : String(r.drops),
    String(r.inode),
    r.netns === null ? '?' : String(r.netns),
    ownersText(r.owners),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (cols: string[]): string => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [fmt(head), ...body.map(fmt)];
}
