// Which source each socket table is read from, and why: sock_diag where the kernel answers it,
// /proc otherwise. RXTRACE_SOCKET_SOURCE=proc forces /proc (tests cover both; a way out if a
// kernel misbehaves), =sock_diag insists on it. A fallback is said once on stderr, never silently.
import { RxtraceError } from '../errors.js';
import type { SocketTable } from '../procnet/sockets.js';
import { SockDiagSource } from './source.js';
import { DIAG_TABLES, requestFor } from './tables.js';

export type TableSourceKind = 'sock_diag' | 'proc';

export interface SourceChoice {
  /** Per table: where it is read from. */
  tables: Record<SocketTable, TableSourceKind>;
  /** Per table: why (one short sentence). */
  why: Record<SocketTable, string>;
}

export const SOURCE_ENV = 'RXTRACE_SOCKET_SOURCE';

/** What the environment asks for: 'auto' unless RXTRACE_SOCKET_SOURCE says proc or sock_diag. */
export function requestedSource(env: NodeJS.ProcessEnv = process.env): 'auto' | TableSourceKind {
  const v = env[SOURCE_ENV]?.trim().toLowerCase();
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'proc') return 'proc';
  if (v === 'sock_diag' || v === 'sockdiag' || v === 'netlink') return 'sock_diag';
  throw new RxtraceError('EUSAGE', `${SOURCE_ENV}=${JSON.stringify(env[SOURCE_ENV])} is not one of auto, sock_diag, proc`, { hint: `unset ${SOURCE_ENV}, or set it to proc to read /proc/net tables` });
}

let warned = false;
/** Said once per process: the first fallback only (a library user may silence it by forcing proc). */
function sayOnce(msg: string): void {
  if (warned) return;
  warned = true;
  process.stderr.write(`rxtrace: ${msg}\n`);
}

export interface OpenedSource {
  /** Open when some table uses sock_diag; the caller closes it. */
  diag?: SockDiagSource;
  choice: SourceChoice;
}

/**
 * Probe sock_diag in our own namespace (one filtered request per table family: cheap at any
 * socket count) and decide per table. `quiet`: do not write the fallback line (doctor).
 */
export async function openSocketSource(opts: { env?: NodeJS.ProcessEnv; quiet?: boolean; procRoot?: string } = {}): Promise<OpenedSource> {
  const want = requestedSource(opts.env);
  const tables = {} as Record<SocketTable, TableSourceKind>;
  const why = {} as Record<SocketTable, string>;
  for (const t of ['icmp', 'icmp6'] as const) {
    tables[t] = 'proc';
    why[t] = 'ping sockets have no sock_diag handler; /proc/net/' + t + ' is small';
  }
  const diagTables = [...DIAG_TABLES];
  const allProc = (reason: string): OpenedSource => {
    for (const t of diagTables) {
      tables[t] = 'proc';
      why[t] = reason;
    }
    return { choice: { tables, why } };
  };
  if (want === 'proc') return allProc(`${SOURCE_ENV}=proc`);
  // Another /proc (a fixture tree): its tables are the truth, the kernel's are not.
  if (opts.procRoot !== undefined && opts.procRoot !== '/proc') return allProc(`procRoot is ${opts.procRoot}`);
  let src: SockDiagSource;
  try {
    src = SockDiagSource.open();
  } catch (e) {
    if (want === 'sock_diag') throw e;
    const msg = e instanceof Error ? e.message : String(e);
    if (!opts.quiet) sayOnce(`sock_diag unavailable (${msg}); reading /proc/net tables instead, which is slow with many sockets`);
    return allProc(`sock_diag unavailable: ${msg}`);
  }
  const failed: string[] = [];
  // One probe per table: a port filter on 0 makes the kernel walk its table and send nothing.
  const probes = await Promise.allSettled(diagTables.map((t) => src.query({ inode: 0, pids: [], self: true }, [requestFor(t, [0])])));
  // The probe's netlink socket was cached under key 0: release it (real keys are netns inodes).
  src.forget(0);
  probes.forEach((p, i) => {
    const t = diagTables[i];
    if (p.status === 'fulfilled') {
      tables[t] = 'sock_diag';
      why[t] = 'NETLINK_SOCK_DIAG answers (the kernel filters by port)';
    } else {
      const e = p.reason as RxtraceError;
      tables[t] = 'proc';
      why[t] = `sock_diag refused: ${e.code} ${e.message}`;
      failed.push(`${t} (${e.code})`);
    }
  });
  if (failed.length > 0) {
    if (want === 'sock_diag') {
      src.close();
      throw new RxtraceError('ENODEV', `${SOURCE_ENV}=sock_diag, but sock_diag cannot list ${failed.join(', ')}`, { hint: 'load the modules (modprobe udp_diag raw_diag), or unset the variable' });
    }
    if (!opts.quiet) sayOnce(`sock_diag cannot list ${failed.join(', ')}; reading those from /proc/net instead, which is slow with many sockets`);
  }
  if (diagTables.every((t) => tables[t] === 'proc')) {
    src.close();
    return { choice: { tables, why } };
  }
  return { diag: src, choice: { tables, why } };
}
