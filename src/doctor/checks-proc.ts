// doctor's checks of what rxtrace reads from /proc and /sys: socket owners, each /proc table
// through its parser, and the sysfs device statistics.
import { RxtraceError } from '../errors.js';
import { getPageSize } from '../native.js';
import { ProcParseError } from '../procnet/errors.js';
import { parseNetDev } from '../procnet/netdev.js';
import { scanSocketOwners } from '../procnet/owners.js';
import { parseSnmp, parseSnmp6 } from '../procnet/snmp.js';
import { parseSocketTable, SOCKET_TABLES, type SocketTable } from '../procnet/sockets.js';
import { parseMemLimits, parseSockstat } from '../procnet/sockstat.js';
import { parseSoftnetStat } from '../procnet/softnet.js';
import { readAllDeviceStatsSync } from '../procnet/sysfs-stats.js';
import { type DoctorCheck, type DoctorStatus } from './types.js';
import { sizeText } from './facts.js';
import { read, DENIED, errText, type HostFacts } from './context.js';

export async function ownersCheck(host: HostFacts): Promise<DoctorCheck> {
  const check = 'socket owners';
  try {
    const scan = await scanSocketOwners('/proc');
    const processes = scan.netnsByPid.size;
    const netns = scan.pidsByNetns.size;
    // Kernel threads have no fd table to read and hold no sockets: the scan leaves them out of
    // ownersDenied (they are not a loss) and counts them in skipped.denied.
    const kthreads = scan.kernelThreadsDenied;
    const users = scan.ownersDenied.map((d) => `${d.pid}${d.comm ? ` ${d.comm}` : ''}${d.uid !== undefined ? ` (uid ${d.uid})` : ''}`);
    const data: Record<string, unknown> = { sockets: scan.byInode.size, netns, denied: scan.ownersDenied.map((d) => d.pid), kernelThreadsDenied: kthreads };
    const kt = kthreads ? `; ${kthreads} kernel thread${kthreads === 1 ? '' : 's'} (no sockets) could not be read either` : '';
    if (users.length === 0) {
      return { check, status: 'ok', detail: `read /proc/PID/fd of every process (${processes}): ${scan.byInode.size} sockets with known owners, in ${netns} network namespace${netns === 1 ? '' : 's'}${kt}`, data };
    }
    const more = users.length > 5 ? `, and ${users.length - 5} more` : '';
    return {
      check,
      status: 'warn',
      detail: `cannot read /proc/PID/fd of ${users.length} process${users.length === 1 ? '' : 'es'}: ${users.slice(0, 5).join(', ')}${more}; their sockets show "owners_unknown"${kt}`,
      hint: host.isRoot
        ? '/proc hides them even from root: /proc mounted with hidepid=, or a security module (Yama, AppArmor, SELinux) denying ptrace-read access'
        : 'run rxtrace as root, or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH',
      data,
    };
  } catch (e) {
    return { check, status: 'warn', detail: `cannot scan /proc for socket owners: ${errText(e)}`, hint: e instanceof RxtraceError ? e.hint : undefined };
  }
}

interface ProcFileSpec {
  check: string;
  path: string;
  /** Absent is normal here (no IPv6): info, not warn. */
  optional?: string;
  summarize: (text: string, path: string) => { detail: string; status?: DoctorStatus; hint?: string; data?: Record<string, unknown> };
}

const IPV6_OFF = 'IPv6 is disabled (ipv6.disable=1) or not built in';

function socketTableSpec(table: SocketTable): ProcFileSpec {
  const v6 = table.endsWith('6');
  return {
    check: `/proc/net/${table}`,
    path: `/proc/net/${table}`,
    optional: v6 ? IPV6_OFF : undefined,
    summarize: (text, path) => {
      const rows = parseSocketTable(text, table, { file: path });
      const dropping = rows.filter((r) => (r.drops ?? 0) > 0);
      const drops = dropping.reduce((s, r) => s + (r.drops ?? 0), 0);
      const noDrops = rows.some((r) => r.drops === undefined);
      return {
        status: noDrops ? 'warn' : 'ok',
        detail: `${rows.length} socket${rows.length === 1 ? '' : 's'} in this network namespace, ${dropping.length} with drops (${drops} in all)${noDrops ? '; no drops column' : ''}`,
        hint: noDrops ? 'this kernel prints no per-socket drops: attribution by drops is unavailable' : undefined,
        data: { sockets: rows.length, dropping: dropping.length, drops },
      };
    },
  };
}

export const PROC_FILES: ProcFileSpec[] = [
  ...SOCKET_TABLES.map(socketTableSpec),
  {
    check: '/proc/net/snmp',
    path: '/proc/net/snmp',
    summarize: (text, path) => {
      const udp = parseSnmp(text, { file: path }).Udp;
      if (!udp) return { status: 'warn', detail: 'no Udp counters', hint: 'the funnel has no UDP row; please report the file and uname -r' };
      const mem = udp.MemErrors === undefined ? '; no MemErrors (before 5.11: protocol-memory drops are only in InErrors)' : `, MemErrors ${udp.MemErrors}`;
      return { detail: `Udp InDatagrams ${udp.InDatagrams}, InErrors ${udp.InErrors}, RcvbufErrors ${udp.RcvbufErrors}${mem}`, data: { RcvbufErrors: udp.RcvbufErrors, MemErrors: udp.MemErrors ?? null } };
    },
  },
  {
    check: '/proc/net/snmp6',
    path: '/proc/net/snmp6',
    optional: IPV6_OFF,
    summarize: (text, path) => {
      const s = parseSnmp6(text, { file: path });
      if (s.Udp6RcvbufErrors === undefined) return { status: 'warn', detail: 'no Udp6RcvbufErrors counter', hint: 'please report the file and uname -r' };
      return { detail: `Udp6InDatagrams ${s.Udp6InDatagrams}, Udp6RcvbufErrors ${s.Udp6RcvbufErrors}${s.Udp6MemErrors !== undefined ? `, Udp6MemErrors ${s.Udp6MemErrors}` : ''}` };
    },
  },
  {
    check: '/proc/net/softnet_stat',
    path: '/proc/net/softnet_stat',
    summarize: (text, path) => {
      const rows = parseSoftnetStat(text, { file: path });
      const columns = text.trim().split('\n')[0]?.trim().split(/\s+/).length ?? 0;
      const dropped = rows.reduce((s, r) => s + r.dropped, 0);
      const squeezed = rows.reduce((s, r) => s + r.time_squeeze, 0);
      return { detail: `${rows.length} CPU row${rows.length === 1 ? '' : 's'} of ${columns} columns; backlog dropped ${dropped}, time_squeeze ${squeezed}`, data: { cpus: rows.length, columns, dropped } };
    },
  },
  {
    check: '/proc/net/dev',
    path: '/proc/net/dev',
    summarize: (text, path) => {
      const devs = parseNetDev(text, { file: path });
      const names = Object.keys(devs);
      const dropped = names.reduce((s, n) => s + devs[n].rx_dropped, 0);
      return { detail: `${names.length} interface${names.length === 1 ? '' : 's'} (${names.join(', ')}); rx drop ${dropped}`, data: { interfaces: names } };
    },
  },
  {
    check: '/proc/net/sockstat',
    path: '/proc/net/sockstat',
    summarize: (text, path) => {
      const s = parseSockstat(text, { file: path });
      if (!s.UDP) return { status: 'warn', detail: 'no UDP line', hint: 'please report the file and uname -r' };
      return { detail: `UDP inuse ${s.UDP.inuse}, mem ${s.UDP.mem} pages (${sizeText((s.UDP.mem ?? 0) * getPageSize())})`, data: { inuse: s.UDP.inuse, mem: s.UDP.mem } };
    },
  },
  {
    check: '/proc/sys/net/ipv4/udp_mem',
    path: '/proc/sys/net/ipv4/udp_mem',
    optional: 'it exists only in the initial network namespace (the limits are global)',
    summarize: (text, path) => {
      const [min, pressure, max] = parseMemLimits(text, { file: path });
      return { detail: `min ${min}, pressure ${pressure}, max ${max} pages (max ${sizeText(max * getPageSize())}): UDP drops with rc -105 (MemErrors) beyond it`, data: { udp_mem: [min, pressure, max] } };
    },
  },
];

export function procFileCheck(spec: ProcFileSpec): DoctorCheck {
  const r = read(spec.path);
  if (!('text' in r)) {
    if (r.error === 'ENOENT' && spec.optional) return { check: spec.check, status: 'info', detail: `absent: ${spec.optional}` };
    const denied = DENIED.has(r.error);
    return {
      check: spec.check,
      status: 'warn',
      detail: `cannot read ${spec.path} (${r.error})`,
      hint: denied ? 'run as root, or check the mount options of /proc' : r.error === 'ENOENT' ? 'this kernel does not provide it (another kernel, or a module not loaded)' : undefined,
    };
  }
  try {
    const s = spec.summarize(r.text, spec.path);
    return { check: spec.check, status: s.status ?? 'ok', detail: s.detail, hint: s.hint, data: s.data };
  } catch (e) {
    if (e instanceof ProcParseError) {
      return { check: spec.check, status: 'fail', code: 'EPARSE', detail: `does not parse: ${e.message}`, hint: e.hint };
    }
    throw e;
  }
}

export function sysfsStatsCheck(): DoctorCheck {
  const check = '/sys/class/net/*/statistics';
  try {
    const stats = readAllDeviceStatsSync('/sys', (n) => n.startsWith('rx_'));
    const devs = Object.keys(stats);
    return { check, status: devs.length ? 'ok' : 'warn', detail: devs.length ? `${devs.length} device${devs.length === 1 ? '' : 's'} with receive counters (${devs.join(', ')})` : 'no devices', hint: devs.length ? undefined : 'mount sysfs at /sys' };
  } catch (e) {
    return { check, status: e instanceof ProcParseError ? 'fail' : 'warn', code: e instanceof ProcParseError ? 'EPARSE' : undefined, detail: errText(e), hint: e instanceof RxtraceError ? e.hint : undefined };
  }
}
