// `rxtrace sockets`: an ss-like snapshot of UDP, raw and ICMP sockets in every namespace,
// with owners, sorted by drops.
import { InvalidArgumentError, type Command } from 'commander';
import { SOCKET_TABLES, type SocketTable } from '../procnet/sockets.js';
import { readSockets, type SocketSnapshotRow } from '../sockets.js';
import { EXIT } from './exit-codes.js';
import { collectList, defaultFormat, formatOption, type Format } from './options.js';
import { LineWriter } from './output.js';
import { RxtraceError } from '../errors.js';
import { scanSocketOwners } from '../procnet/owners.js';
import { readTcpSockets, type TcpSocketRow } from '../tcp-sockets.js';
import { ownersText } from '../render/units.js';

export function registerSockets(program: Command): void {
  program
    .command('sockets')
    .description('snapshot of UDP, raw and ICMP (or, with --proto tcp, TCP) sockets in every network namespace, with owners, sorted by drops')
    .option('--table <name...>', `tables to read (${SOCKET_TABLES.join(', ')})`, collectList)
    .option('--proto <proto>', 'udp (UDP, raw and ICMP tables; the default), tcp (every TCP socket, as ss -tam, through sock_diag; /proc/net/tcp without drops when RXTRACE_SOCKET_SOURCE=proc) or all', protoOption)
    .option('--dropping', 'only sockets with drops > 0')
    .option('--no-owners', 'skip the /proc/PID/fd scan for owners (fast on hosts with many open files)')
    .option('--format <fmt>', 'ndjson or text (default: ndjson when stdout is not a TTY)', formatOption)
    .action(async (opts: { table?: string[]; dropping?: boolean; owners?: boolean; format?: Format; proto?: Proto }) => {
      const proto = opts.proto ?? 'udp';
      if (proto !== 'udp' && opts.table) throw new RxtraceError('EUSAGE', '--table names UDP, raw and ICMP tables; it does not go with --proto tcp or all', { hint: 'drop --table, or use --proto udp' });
      // One scan for both readers (--no-owners: namespaces only, no /proc/PID/fd).
      const owners = await scanSocketOwners('/proc', { fds: opts.owners !== false });
      let tcp: TcpSocketRow[] = [];
      if (proto !== 'udp') {
        const r = await readTcpSockets(owners, '/proc', undefined, undefined, true);
        tcp = r.rows;
        // Said once: a null is "not known", never a count of 0.
        if (r.source === 'proc') process.stderr.write(`rxtrace: TCP sockets from /proc/net/tcp (${r.why}): that table has no drops counter, so their drops are null ("?")\n`);
        for (const e of r.errors) process.stderr.write(`rxtrace: ${e.message}\n`);
        tcp.sort((a, b) => (b.drops ?? 0) - (a.drops ?? 0) || a.table.localeCompare(b.table) || a.local.localeCompare(b.local) || a.inode - b.inode);
      }
      if (opts.dropping) tcp = tcp.filter((r) => (r.drops ?? 0) > 0);
      const tables = (opts.table ?? [...SOCKET_TABLES]).map((t) => {
        if (!(SOCKET_TABLES as readonly string[]).includes(t)) {
          throw new RxtraceError('EUSAGE', `unknown table "${t}"`, { hint: `tables are ${SOCKET_TABLES.join(', ')}` });
        }
        return t as SocketTable;
      });
      let rows = proto === 'tcp' ? [] : await readSockets({ tables, owners, withOwners: opts.owners !== false });
      if (opts.dropping) rows = rows.filter((r) => (r.drops ?? 0) > 0);
      const out = new LineWriter();
      if (defaultFormat(opts.format) === 'ndjson') {
        for (const r of rows) await out.line(JSON.stringify(r));
        for (const r of tcp) await out.line(JSON.stringify(r));
      } else {
        if (proto !== 'tcp') for (const line of socketsTable(rows)) await out.line(line);
        if (proto !== 'udp') for (const line of tcpSocketsTable(tcp)) await out.line(line);
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

type Proto = 'udp' | 'tcp' | 'all';

function protoOption(v: string): Proto {
  if (v !== 'udp' && v !== 'tcp' && v !== 'all') throw new InvalidArgumentError(`--proto is udp, tcp or all, got "${v}"`);
  return v;
}

/** Like `ss -tam`: for a listener Recv-Q is its accept queue and Send-Q its backlog. */
export function tcpSocketsTable(rows: TcpSocketRow[]): string[] {
  const head = ['TABLE', 'STATE', 'RECV-Q', 'SEND-Q', 'LOCAL', 'REMOTE', 'DROPS', 'INODE', 'NETNS', 'OWNERS'];
  const body = rows.map((r) => [
    r.table,
    r.state_name,
    String(r.rx_queue),
    String(r.tx_queue),
    r.local,
    r.remote,
    r.drops === null ? '?' : String(r.drops),
    String(r.inode),
    r.netns === null ? '?' : String(r.netns),
    r.owners.length ? r.owners.map((o) => `${o.comm}[${o.pid}]`).join(',') : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (cols: string[]): string => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [fmt(head), ...body.map(fmt)];
}
