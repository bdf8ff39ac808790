// The checks of `rxtrace doctor`, one function each: every one reads or tries something real and
// changes nothing (the tracefs mount for the checks is runDoctor's, index.ts).
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseCpuList } from '../cpus.js';
import { compileSchema } from '../decode/compile.js';
import { fromNativeError, PRIVILEGE_HINT, RxtraceError } from '../errors.js';
import { portField } from '../filter.js';
import { parseFormat } from '../format/parse.js';
import { FormatParseError, payloadFields, type EventSchema } from '../format/schema.js';
import { getPageSize, loadNative, type NativeAddon } from '../native.js';
import { DEFAULT_EVENTS } from '../plan.js';
import { ProcParseError } from '../procnet/errors.js';
import { readLimit } from '../procnet/limits.js';
import { readSysctlNumber } from '../procnet/sysctl.js';
import { parseNetDev } from '../procnet/netdev.js';
import { scanSocketOwners } from '../procnet/owners.js';
import { parseSnmp, parseSnmp6 } from '../procnet/snmp.js';
import { parseSocketTable, SOCKET_TABLES, type SocketRow, type SocketTable } from '../procnet/sockets.js';
import { parseMemLimits, parseSockstat } from '../procnet/sockstat.js';
import { parseSoftnetStat } from '../procnet/softnet.js';
import { readAllDeviceStatsSync } from '../procnet/sysfs-stats.js';
import { defaultRingPages, openTracer, sessionOptions } from '../tracer.js';
import { readEventFiles } from '../tracefs/events.js';
import { DOCTOR_EVENTS, type DoctorCheck, type DoctorStatus } from './types.js';
import { CAP, classifyPointer, describeLayout, describeParanoid, hasCap, memlockVerdict, parseStatusCreds, perfmonCapable, sizeText, type CapName, type PointerKind, type ProcessCreds } from './facts.js';

export const MOUNT_POINT = '/sys/kernel/tracing';
/** The perf permission probe's ring: small enough for any locked-memory limit. */
const PROBE_RING_PAGES = 8;
/** A tracepoint id no kernel hands out in practice (ids are assigned upward from a few hundred). */
const PLACEHOLDER_ID = 65535;

// ---------------------------------------------------------------------------------------------
// Reading

type Read = { text: string } | { error: string; message: string };

function read(path: string): Read {
  try {
    return { text: readFileSync(path, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    return { error: code, message: (e as Error).message };
  }
}

const DENIED = new Set(['EACCES', 'EPERM']);
const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const firstLine = (s: string): string => s.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? s;


// ---------------------------------------------------------------------------------------------
// The checks

export interface Context {
  creds?: ProcessCreds;
  isRoot: boolean;
  cpus: number[];
  addon?: NativeAddon;
  paranoid?: number;
  notice: (m: string) => void;
}

export function addonCheck(ctx: Context): DoctorCheck {
  try {
    ctx.addon = loadNative();
    return { check: 'addon', status: 'ok', detail: `the native addon (rxtrace.node) loads in Node ${process.versions.node} (N-API ${process.versions.napi})` };
  } catch (e) {
    return {
      check: 'addon',
      status: 'fail',
      code: 'ENOADDON',
      detail: `the native addon does not load: ${firstLine(errText(e))}`,
      hint: 'build it: npm rebuild rxtrace (or node-gyp rebuild in the package directory; needs g++, make and Python 3)',
    };
  }
}

export function cpusCheck(ctx: Context): DoctorCheck {
  const path = '/sys/devices/system/cpu/online';
  const r = read(path);
  if ('text' in r) {
    try {
      ctx.cpus = parseCpuList(r.text);
      return {
        check: 'cpus',
        status: 'info',
        detail: `${ctx.cpus.length} online CPU${ctx.cpus.length === 1 ? '' : 's'} (${r.text.trim()}): one perf ring and one fd per event per CPU`,
        data: { online: ctx.cpus },
      };
    } catch (e) {
      ctx.cpus = Array.from({ length: availableParallelism() }, (_, i) => i);
      return { check: 'cpus', status: 'warn', detail: `${path} does not parse (${errText(e)}); assuming CPUs 0-${ctx.cpus.length - 1}`, hint: 'trace explicit CPUs with the library option cpus' };
    }
  }
  ctx.cpus = Array.from({ length: availableParallelism() }, (_, i) => i);
  return { check: 'cpus', status: 'warn', detail: `cannot read ${path} (${r.error}); assuming CPUs 0-${ctx.cpus.length - 1}`, hint: 'mount sysfs at /sys' };
}

export function privilegesCheck(ctx: Context): DoctorCheck {
  const r = read('/proc/self/status');
  ctx.creds = 'text' in r ? parseStatusCreds(r.text) : undefined;
  ctx.isRoot = process.getuid?.() === 0;
  const uid = process.getuid?.() ?? -1;
  if (!ctx.creds) return { check: 'privileges', status: 'warn', detail: `uid ${uid}; cannot read capabilities from /proc/self/status`, hint: 'mount procfs at /proc' };
  const names = Object.keys(CAP) as CapName[];
  const have = names.filter((n) => hasCap(ctx.creds, CAP[n])).map((n) => `CAP_${n}`);
  const lack = names.filter((n) => !hasCap(ctx.creds, CAP[n])).map((n) => `CAP_${n}`);
  // Capabilities held in a child user namespace do not count for perf_event_open or mount.
  const uidMap = read('/proc/self/uid_map');
  const initialNs = !('text' in uidMap) || /^\s*0\s+0\s+4294967295\s*$/.test(uidMap.text.trim());
  const detail = `uid ${ctx.creds.uid}${ctx.creds.euid !== ctx.creds.uid ? ` (effective ${ctx.creds.euid})` : ''}; ${
    lack.length === 0 ? `has ${have.join(', ')}` : have.length === 0 ? `has none of ${lack.join(', ')}` : `has ${have.join(', ')}; lacks ${lack.join(', ')}`
  }${initialNs ? '' : '; in a user namespace, where these capabilities do not reach perf_event_open or tracefs'}`;
  return {
    check: 'privileges',
    status: initialNs ? 'info' : 'warn',
    detail,
    hint: initialNs ? undefined : 'run rxtrace in the initial user namespace (on the host, or in a container that shares it)',
    data: { uid: ctx.creds.uid, euid: ctx.creds.euid, capabilities: have, userNamespace: initialNs ? 'initial' : 'child' },
  };
}

interface TracepointResult {
  check: DoctorCheck;
  schema?: EventSchema;
}

export function tracepointCheck(root: string, available: Set<string>, name: string): TracepointResult {
  const check = `tracepoint ${name}`;
  const isDefault = DEFAULT_EVENTS.includes(name);
  const [system, event] = name.split(':');
  if (!available.has(name)) {
    return {
      check: {
        check,
        status: 'warn',
        detail: `this kernel has no ${name} (${root}/events/${system}/${event} is absent)`,
        hint: isDefault ? 'rxtrace traces the other tracepoints without it' : 'drop reasons (-e skb:kfree_skb, --reason) are unavailable on this kernel',
        data: { event: name, present: false },
      },
    };
  }
  try {
    const files = readEventFiles(root, { system, name: event });
    const schema = parseFormat(files.format, system, `${root}/events/${system}/${event}/format`);
    compileSchema(schema);
    const layout = describeLayout(schema);
    const port = portField(schema);
    return {
      schema,
      check: {
        check,
        status: layout.status,
        detail: `id ${files.id}; ${layout.detail}`,
        hint: layout.hint,
        data: { event: name, present: true, id: files.id, layout: layout.layout, fields: payloadFields(schema).map((f) => f.name), portField: port ?? null },
      },
    };
  } catch (e) {
    const code = e instanceof FormatParseError ? 'EFORMAT' : e instanceof RxtraceError ? e.code : 'EIO';
    let detail = errText(e);
    let hint = e instanceof RxtraceError && e.hint ? e.hint : 'check the tracefs mount';
    if (e instanceof FormatParseError) {
      detail = `its format file cannot be read as a layout: ${detail}`;
      hint = 'the format file is malformed or truncated; check it with cat, and report the kernel version';
    } else if (code === 'EFORMAT') {
      // A bad id file (readEventFiles): its own hint points here.
      hint = 'the tracefs tree is damaged or not a tracefs: check the tree the tracefs check names (RXTRACE_TRACEFS set to a stale copy?)';
    }
    return {
      check: {
        check,
        // Tracing this event would fail; for kfree_skb (not traced by default) that is less.
        status: isDefault ? 'fail' : 'warn',
        code,
        detail,
        hint,
        data: { event: name, present: true },
      },
    };
  }
}

/** The perf permission probe through openTracer: one event, one CPU, a small ring. */
export async function perfProbe(ctx: Context, root: string, event: string): Promise<DoctorCheck> {
  const cpu = ctx.cpus[0] ?? 0;
  try {
    const tracer = await openTracer({ events: [event], only: true, resolve: false, cpus: [cpu], ringPages: PROBE_RING_PAGES, tracefs: { root }, notice: ctx.notice });
    await tracer.close();
    return {
      check: 'perf_event_open',
      status: 'ok',
      detail: `opened ${event} on cpu ${cpu} with a ring of ${PROBE_RING_PAGES} pages, started the reader and closed it again`,
      data: { event, cpu, opened: true },
    };
  } catch (e) {
    return perfFailure(ctx, e, event, cpu);
  }
}

function perfFailure(ctx: Context, e: unknown, event: string, cpu: number): DoctorCheck {
  const err = e instanceof RxtraceError ? e : new RxtraceError('EIO', errText(e));
  const denied = DENIED.has(err.code);
  const paranoid = ctx.paranoid !== undefined ? `; kernel.perf_event_paranoid is ${ctx.paranoid}: ${describeParanoid(ctx.paranoid)}` : '';
  return {
    check: 'perf_event_open',
    status: 'fail',
    code: err.code,
    detail: denied
      ? `perf_event_open on ${event} (cpu ${cpu}) was denied (${err.code})${paranoid}`
      : `opening ${event} on cpu ${cpu} failed: ${err.message}`,
    hint: denied ? PRIVILEGE_HINT : err.hint,
    data: { event, cpu, opened: false, errno: err.code },
  };
}

/**
 * Without tracefs there is no tracepoint id to open. perf_event_open checks the privilege to
 * trace the kernel before it looks the id up, so a placeholder id still answers EACCES when
 * tracing is denied; EINVAL means it got past that check (raw samples are checked later, from
 * the capabilities and perf_event_paranoid).
 */
export async function placeholderProbe(ctx: Context, why: string): Promise<DoctorCheck> {
  const cpu = ctx.cpus[0] ?? 0;
  const addon = ctx.addon!;
  let raw: unknown;
  try {
    // The tracer's own session options (ring checks and derived sizes), not a hand-made copy.
    const s = new addon.PerfSession(sessionOptions([{ id: PLACEHOLDER_ID }], [cpu], PROBE_RING_PAGES, { maxQueuedBatches: 1 }), () => undefined);
    await s.close();
  } catch (e) {
    raw = e;
  }
  const code = (raw as { code?: string } | undefined)?.code;
  const paranoid = ctx.paranoid;
  if (code !== undefined && DENIED.has(code)) {
    const err = fromNativeError(raw, { eventName: () => 'a tracepoint', filterFor: () => undefined, fieldsOf: () => [], fdCount: 1 });
    return {
      check: 'perf_event_open',
      status: 'fail',
      code: err.code,
      detail: `perf_event_open was denied (${code}; tried with a placeholder tracepoint id because ${why})${paranoid !== undefined ? `; kernel.perf_event_paranoid is ${paranoid}: ${describeParanoid(paranoid)}` : ''}`,
      hint: PRIVILEGE_HINT,
      data: { cpu, opened: false, errno: code, placeholder: true },
    };
  }
  if (code !== undefined && code !== 'EINVAL' && code !== 'ENOENT') {
    const err = fromNativeError(raw, { eventName: () => 'a tracepoint', filterFor: () => undefined, fieldsOf: () => [], fdCount: 1 });
    return { check: 'perf_event_open', status: 'fail', code: err.code, detail: `perf_event_open failed: ${err.message}`, hint: err.hint, data: { cpu, opened: false, errno: code, placeholder: true } };
  }
  if (!perfmonCapable(ctx.creds) && (paranoid === undefined || paranoid > -1)) {
    return {
      check: 'perf_event_open',
      status: 'fail',
      code: 'EACCES',
      detail: `not tried with a real tracepoint (${why}); without CAP_PERFMON or CAP_SYS_ADMIN raw tracepoint samples are denied unless kernel.perf_event_paranoid is -1${paranoid !== undefined ? ` (it is ${paranoid})` : ''}`,
      hint: PRIVILEGE_HINT,
      data: { cpu, opened: false, placeholder: true },
    };
  }
  return {
    check: 'perf_event_open',
    status: 'ok',
    detail: `allowed: a probe with a placeholder tracepoint id got past the permission checks (${why}, so no real tracepoint was opened)`,
    data: { cpu, opened: false, placeholder: true },
  };
}

export function paranoidCheck(ctx: Context): DoctorCheck {
  const v = ctx.paranoid;
  if (v === undefined) return { check: 'perf_event_paranoid', status: 'warn', detail: 'cannot read /proc/sys/kernel/perf_event_paranoid: is perf_events built into this kernel?', hint: 'rxtrace needs CONFIG_PERF_EVENTS' };
  const capable = perfmonCapable(ctx.creds);
  const needsCap = v > -1;
  return {
    check: 'perf_event_paranoid',
    status: needsCap && !capable ? 'warn' : 'info',
    detail: `kernel.perf_event_paranoid = ${v}: ${describeParanoid(v)}${needsCap ? (capable ? '; this process has it' : '; this process has neither') : ''}`,
    hint:
      needsCap && !capable
        ? 'grant CAP_PERFMON (setcap cap_perfmon+ep "$(command -v node)") or run as root; lowering perf_event_paranoid to -1 opens perf to every user, so rxtrace leaves it alone'
        : undefined,
    data: { value: v },
  };
}

export async function ringCheck(ctx: Context, root: string | undefined, event: string | undefined, perfOk: boolean): Promise<DoctorCheck> {
  const pageSize = getPageSize();
  const ringPages = defaultRingPages(ctx.cpus.length, pageSize);
  const mlockKb = readSysctlNumber('kernel.perf_event_mlock_kb');
  const memlock = readLimit('Max locked memory');
  const ipcLock = hasCap(ctx.creds, CAP.IPC_LOCK);
  const rings = `${ctx.cpus.length} × ${sizeText(ringPages * pageSize)} (${ringPages} pages per CPU)`;
  const limitText = `kernel.perf_event_mlock_kb ${mlockKb ?? '?'} KiB per CPU + ulimit -l ${memlock === undefined ? '?' : memlock === 'unlimited' ? 'unlimited' : sizeText(memlock)}`;
  const data: Record<string, unknown> = { ringPages, cpus: ctx.cpus.length, pageSize, perfEventMlockKb: mlockKb ?? null, memlock: memlock ?? null, capIpcLock: ipcLock };
  if (mlockKb === undefined || memlock === undefined || ctx.paranoid === undefined) {
    return { check: 'ring memory', status: 'warn', detail: `the default rings are ${rings}; cannot read the limits (${limitText})`, hint: 'if tracing fails with "cannot lock", use --ring-pages 64', data };
  }
  const v = memlockVerdict({ ncpus: ctx.cpus.length, onlineCpus: ctx.cpus.length, ringPages, pageSize, mlockKb, memlock, ipcLock, paranoid: ctx.paranoid });
  data.needBytes = v.needBytes;
  if (v.exempt) {
    return { check: 'ring memory', status: 'ok', detail: `the default rings, ${rings}, are not limited here: ${v.exempt} (${limitText})`, data };
  }
  data.allowBytes = v.allowBytes;
  data.maxRingPages = v.maxRingPages ?? null;
  // A limit applies: when the probe could open events, map the real default rings to be sure,
  // and if they do not fit, halve them until a size maps: the per-user allowance is shared with
  // every other perf ring of this uid, which no file shows.
  let tried: string | undefined;
  let triedOk: boolean | undefined;
  let works: number | undefined;
  if (root && event && perfOk) {
    const attempt = async (pages?: number): Promise<RxtraceError | undefined> => {
      try {
        const t = await openTracer({ events: [event], only: true, resolve: false, cpus: ctx.cpus, ringPages: pages, tracefs: { root }, notice: ctx.notice });
        await t.close();
        return undefined;
      } catch (e) {
        return e instanceof RxtraceError ? e : new RxtraceError('EIO', errText(e));
      }
    };
    const err = await attempt();
    triedOk = err === undefined;
    if (err) {
      tried = `mapping them failed: ${err.code}`;
      if (err.code !== 'EMEMLOCK') {
        return { check: 'ring memory', status: 'fail', code: err.code, detail: `the default rings, ${rings}, cannot be mapped: ${err.message}`, hint: err.hint, data: { ...data, tried: false } };
      }
      for (let p = ringPages / 2; p >= 1 && works === undefined; p /= 2) if ((await attempt(p)) === undefined) works = p;
    }
    data.tried = triedOk;
    data.worksRingPages = works ?? null;
  }
  const fits = triedOk ?? v.fits;
  const about = `the default rings, ${rings} = ${sizeText(v.needBytes)}, against ${limitText} = ${sizeText(v.allowBytes!)} without CAP_IPC_LOCK (the first part is shared by every perf ring of this uid)`;
  if (fits) return { check: 'ring memory', status: 'ok', detail: `${about}${tried ? `; ${tried}` : triedOk ? '; mapping them worked' : ''}`, data };
  const smaller =
    works !== undefined
      ? `trace with --ring-pages ${works} (the largest that mapped just now), `
      : triedOk === false
        ? ''
        : v.maxRingPages
          ? `trace with --ring-pages ${v.maxRingPages} at most (less while other perf rings of this uid are mapped), `
          : '';
  return {
    check: 'ring memory',
    status: 'fail',
    code: 'EMEMLOCK',
    detail: `${about}: the rings do not fit${tried ? ` (${tried}${works !== undefined ? `; --ring-pages ${works} mapped` : triedOk === false ? '; no smaller ring mapped either' : ''})` : ''}`,
    hint: `${smaller}raise ulimit -l (or LimitMEMLOCK= in a systemd unit), or grant CAP_IPC_LOCK`,
    data,
  };
}

export function openFilesCheck(ctx: Context): DoctorCheck {
  const soft = readLimit('Max open files');
  // Every event on every CPU is an fd; add Node's own and the /proc reads.
  const need = DOCTOR_EVENTS.length * ctx.cpus.length + 64;
  if (soft === undefined) return { check: 'open files', status: 'warn', detail: 'cannot read the open-files limit from /proc/self/limits', hint: 'check ulimit -n' };
  const text = soft === 'unlimited' ? 'unlimited' : String(soft);
  if (soft !== 'unlimited' && soft < need) {
    return {
      check: 'open files',
      status: 'warn',
      detail: `ulimit -n is ${text}: tracing ${DOCTOR_EVENTS.length} events on ${ctx.cpus.length} CPUs needs about ${need}`,
      hint: `raise it: ulimit -n ${Math.max(4096, need * 2)}`,
      data: { soft, need },
    };
  }
  return { check: 'open files', status: 'ok', detail: `ulimit -n is ${text}; ${DOCTOR_EVENTS.length} events on ${ctx.cpus.length} CPUs need about ${need}`, data: { soft, need } };
}

export function kptrCheck(): { check: DoctorCheck; value?: number } {
  const value = readSysctlNumber('kernel.kptr_restrict');
  if (value === undefined) return { check: { check: 'kptr_restrict', status: 'warn', detail: 'cannot read /proc/sys/kernel/kptr_restrict' } };
  const meaning =
    value === 0
      ? 'kernel pointers in /proc are printed hashed'
      : value === 1
        ? 'kernel pointers in /proc are printed as real addresses to readers with CAP_SYSLOG, as zeros to others'
        : 'kernel pointers in /proc are printed as zeros to everyone';
  return { value, check: { check: 'kptr_restrict', status: 'info', detail: `kernel.kptr_restrict = ${value}: ${meaning}; rxtrace only reads it`, data: { value } } };
}

/** The `pointer` column of our own sockets, or of a UDP socket made for the purpose. */
async function samplePointer(): Promise<{ kind: PointerKind; from: string } | undefined> {
  for (const table of SOCKET_TABLES) {
    const r = read(`/proc/net/${table}`);
    if (!('text' in r)) continue;
    let rows: SocketRow[];
    try {
      rows = parseSocketTable(r.text, table);
    } catch {
      continue;
    }
    if (rows.length > 0) return { kind: classifyPointer(rows[0].pointer), from: `/proc/net/${table}` };
  }
  // No socket at all in this netns: bind one on loopback for a moment and read its row.
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve());
    });
    const port = sock.address().port;
    const r = read('/proc/net/udp');
    if (!('text' in r)) return undefined;
    const row = parseSocketTable(r.text, 'udp').find((x) => x.local.port === port);
    return row ? { kind: classifyPointer(row.pointer), from: 'a UDP socket bound to 127.0.0.1 for this check' } : undefined;
  } catch {
    return undefined;
  } finally {
    sock.close();
  }
}

export async function pointerCheck(ctx: Context, kptr: number | undefined, kfree: EventSchema | undefined | null): Promise<DoctorCheck> {
  const check = 'pointer attribution';
  const rxSk = kfree ? payloadFields(kfree).some((f) => f.name === 'rx_sk') : undefined;
  const sample = await samplePointer();
  const data = { rxSk: rxSk ?? null, pointerColumn: sample?.kind ?? null };
  const enable = `to allow it: sysctl -w kernel.kptr_restrict=1, and run rxtrace as root; it is a system-wide security setting (kernel addresses become visible to CAP_SYSLOG holders), so rxtrace never changes it; sysctl -w kernel.kptr_restrict=${kptr ?? 0} puts it back`;
  if (kfree === null || rxSk === false) {
    return {
      check,
      status: 'info',
      detail: `not possible: ${kfree === null ? 'this kernel has no skb:kfree_skb' : "this kernel's skb:kfree_skb has no rx_sk (Linux 6.11+)"}; the default tracepoints are matched by address and by drops, which need no pointers`,
      data,
    };
  }
  const column =
    sample === undefined
      ? 'the pointer column could not be sampled'
      : `the pointer column ${
          sample.kind === 'address'
            ? 'shows real socket addresses'
            : sample.kind === 'hashed'
              ? 'is hashed'
              : sample.kind === 'zero'
                ? 'shows zeros'
                : 'cannot be told apart from hashes'
        } (sampled from ${sample.from}${kptr !== undefined ? `; kptr_restrict ${kptr}` : ''}${ctx.creds && !hasCap(ctx.creds, CAP.SYSLOG) ? ', no CAP_SYSLOG' : ''})`;
  const prefix = rxSk === undefined ? 'skb:kfree_skb not checked; ' : 'skb:kfree_skb has rx_sk, but ';
  if (sample?.kind === 'address') {
    const has = rxSk === undefined ? 'skb:kfree_skb not checked; ' : 'skb:kfree_skb has rx_sk and ';
    return { check, status: rxSk ? 'ok' : 'info', detail: `${has}${column}: -e skb:kfree_skb drops are matched to sockets exactly ("pointer")`, data };
  }
  let hint: string | undefined;
  if (sample?.kind === 'zero' && kptr === 1) hint = 'kptr_restrict is 1 but this process lacks CAP_SYSLOG: run rxtrace as root';
  else if (sample?.kind === 'hashed' || sample?.kind === 'zero') hint = enable;
  return {
    check,
    status: 'info',
    detail: `${prefix}${column}, so rx_sk matches no socket: -e skb:kfree_skb drops are "none"; the default tracepoints need no pointers`,
    hint,
    data,
  };
}

export async function ownersCheck(ctx: Context): Promise<DoctorCheck> {
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
      hint: ctx.isRoot
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
