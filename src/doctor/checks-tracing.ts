// doctor's checks of tracing: each tracepoint's format, perf_event_open (with a real event, or a
// placeholder id without tracefs), perf_event_paranoid and the ring memory.
import { compileSchema } from '../decode/compile.js';
import { fromNativeError, privilegeHint, RxtraceError } from '../errors.js';
import { portField } from '../filter.js';
import { parseFormat } from '../format/parse.js';
import { FormatParseError, payloadFields, type EventSchema } from '../format/schema.js';
import { getPageSize } from '../native.js';
import { DEFAULT_EVENTS } from '../plan.js';
import { readLimit } from '../procnet/limits.js';
import { readSysctlNumber } from '../procnet/sysctl.js';
import { defaultRingPages, openTracer, sessionOptions } from '../tracer.js';
import { readEventFiles } from '../tracefs/events.js';
import { type DoctorCheck } from './types.js';
import { CAP, describeLayout, describeParanoid, hasCap, memlockVerdict, perfmonCapable, sizeText } from './facts.js';
import { DENIED, errText, type HostFacts } from './context.js';

/** The perf permission probe's ring: small enough for any locked-memory limit. */
const PROBE_RING_PAGES = 8;
/** A tracepoint id no kernel hands out in practice (ids are assigned upward from a few hundred). */
const PLACEHOLDER_ID = 65535;

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
export async function perfProbe(host: HostFacts, root: string, event: string): Promise<DoctorCheck> {
  const cpu = host.cpus[0] ?? 0;
  try {
    const tracer = await openTracer({ events: [event], only: true, resolve: false, cpus: [cpu], ringPages: PROBE_RING_PAGES, tracefs: { root }, notice: host.notice });
    await tracer.close();
    return {
      check: 'perf_event_open',
      status: 'ok',
      detail: `opened ${event} on cpu ${cpu} with a ring of ${PROBE_RING_PAGES} pages, started the reader and closed it again`,
      data: { event, cpu, opened: true },
    };
  } catch (e) {
    return perfFailure(host, e, event, cpu);
  }
}

function perfFailure(host: HostFacts, e: unknown, event: string, cpu: number): DoctorCheck {
  const err = e instanceof RxtraceError ? e : new RxtraceError('EIO', errText(e));
  const denied = DENIED.has(err.code);
  const paranoid = host.paranoid !== undefined ? `; kernel.perf_event_paranoid is ${host.paranoid}: ${describeParanoid(host.paranoid)}` : '';
  return {
    check: 'perf_event_open',
    status: 'fail',
    code: err.code,
    detail: denied
      ? `perf_event_open on ${event} (cpu ${cpu}) was denied (${err.code})${paranoid}`
      : `opening ${event} on cpu ${cpu} failed: ${err.message}`,
    hint: denied ? privilegeHint(host.paranoid) : err.hint,
    data: { event, cpu, opened: false, errno: err.code },
  };
}

/**
 * Without tracefs there is no tracepoint id to open. perf_event_open checks the privilege to
 * trace the kernel before it looks the id up, so a placeholder id still answers EACCES when
 * tracing is denied; EINVAL means it got past that check (raw samples are checked later, from
 * the capabilities and perf_event_paranoid).
 */
export async function placeholderProbe(host: HostFacts, why: string): Promise<DoctorCheck> {
  const cpu = host.cpus[0] ?? 0;
  const addon = host.addon!;
  let raw: unknown;
  try {
    // The tracer's own session options (ring checks and derived sizes), not a hand-made copy.
    const s = new addon.PerfSession(sessionOptions([{ id: PLACEHOLDER_ID }], [cpu], PROBE_RING_PAGES, { maxQueuedBatches: 1 }), () => undefined);
    await s.close();
  } catch (e) {
    raw = e;
  }
  const code = (raw as { code?: string } | undefined)?.code;
  const paranoid = host.paranoid;
  if (code !== undefined && DENIED.has(code)) {
    const err = fromNativeError(raw, { eventName: () => 'a tracepoint', filterFor: () => undefined, fieldsOf: () => [], fdCount: 1 });
    return {
      check: 'perf_event_open',
      status: 'fail',
      code: err.code,
      detail: `perf_event_open was denied (${code}; tried with a placeholder tracepoint id because ${why})${paranoid !== undefined ? `; kernel.perf_event_paranoid is ${paranoid}: ${describeParanoid(paranoid)}` : ''}`,
      hint: privilegeHint(paranoid),
      data: { cpu, opened: false, errno: code, placeholder: true },
    };
  }
  if (code !== undefined && code !== 'EINVAL' && code !== 'ENOENT') {
    const err = fromNativeError(raw, { eventName: () => 'a tracepoint', filterFor: () => undefined, fieldsOf: () => [], fdCount: 1 });
    return { check: 'perf_event_open', status: 'fail', code: err.code, detail: `perf_event_open failed: ${err.message}`, hint: err.hint, data: { cpu, opened: false, errno: code, placeholder: true } };
  }
  if (!perfmonCapable(host.creds, paranoid) && (paranoid === undefined || paranoid > -1)) {
    return {
      check: 'perf_event_open',
      status: 'fail',
      code: 'EACCES',
      detail: `not tried with a real tracepoint (${why}); ${paranoid !== undefined && paranoid >= 3 ? `at kernel.perf_event_paranoid ${paranoid} perf_event_open needs CAP_SYS_ADMIN` : `without CAP_PERFMON or CAP_SYS_ADMIN raw tracepoint samples are denied unless kernel.perf_event_paranoid is -1${paranoid !== undefined ? ` (it is ${paranoid})` : ''}`}`,
      hint: privilegeHint(paranoid),
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

export function paranoidCheck(host: HostFacts, perf?: DoctorCheck): DoctorCheck {
  const v = host.paranoid;
  if (v === undefined) return { check: 'perf_event_paranoid', status: 'warn', detail: 'cannot read /proc/sys/kernel/perf_event_paranoid: is perf_events built into this kernel?', hint: 'rxtrace needs CONFIG_PERF_EVENTS' };
  // Level 3 is a distribution patch (Debian's): an upstream kernel treats it as 2. Without
  // CAP_SYS_ADMIN, a perf probe that got through shows this kernel does not enforce it.
  if (v >= 3 && !hasCap(host.creds, CAP.SYS_ADMIN) && perf?.status === 'ok' && perfmonCapable(host.creds)) {
    return {
      check: 'perf_event_paranoid',
      status: 'info',
      detail: `kernel.perf_event_paranoid = ${v}, but this kernel does not enforce levels above 2 (no distribution patch): perf_event_open worked with CAP_PERFMON and without CAP_SYS_ADMIN`,
      data: { value: v, enforced: false },
    };
  }
  const capable = perfmonCapable(host.creds, v);
  const needsCap = v > -1;
  const sysAdminOnly = v >= 3;
  return {
    check: 'perf_event_paranoid',
    status: needsCap && !capable ? 'warn' : 'info',
    detail: `kernel.perf_event_paranoid = ${v}: ${describeParanoid(v)}${needsCap ? (capable ? '; this process has it' : sysAdminOnly ? '; this process lacks CAP_SYS_ADMIN' : '; this process has neither') : ''}`,
    hint:
      needsCap && !capable
        ? sysAdminOnly
          ? privilegeHint(v)
          : 'grant CAP_PERFMON (setcap cap_perfmon+ep "$(command -v node)") or run as root; lowering perf_event_paranoid to -1 opens perf to every user, so rxtrace leaves it alone'
        : undefined,
    data: { value: v },
  };
}

export async function ringCheck(host: HostFacts, root: string | undefined, event: string | undefined, perfOk: boolean): Promise<DoctorCheck> {
  const pageSize = getPageSize();
  const ringPages = defaultRingPages(host.cpus.length, pageSize);
  const mlockKb = readSysctlNumber('kernel.perf_event_mlock_kb');
  const memlock = readLimit('Max locked memory');
  const ipcLock = hasCap(host.creds, CAP.IPC_LOCK);
  const rings = `${host.cpus.length} × ${sizeText(ringPages * pageSize)} (${ringPages} pages per CPU)`;
  const limitText = `kernel.perf_event_mlock_kb ${mlockKb ?? '?'} KiB per CPU + ulimit -l ${memlock === undefined ? '?' : memlock === 'unlimited' ? 'unlimited' : sizeText(memlock)}`;
  const data: Record<string, unknown> = { ringPages, cpus: host.cpus.length, pageSize, perfEventMlockKb: mlockKb ?? null, memlock: memlock ?? null, capIpcLock: ipcLock };
  if (mlockKb === undefined || memlock === undefined || host.paranoid === undefined) {
    return { check: 'ring memory', status: 'warn', detail: `the default rings are ${rings}; cannot read the limits (${limitText})`, hint: 'if tracing fails with "cannot lock", use --ring-pages 64', data };
  }
  const v = memlockVerdict({ ncpus: host.cpus.length, onlineCpus: host.cpus.length, ringPages, pageSize, mlockKb, memlock, ipcLock, paranoid: host.paranoid });
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
        const t = await openTracer({ events: [event], only: true, resolve: false, cpus: [...host.cpus], ringPages: pages, tracefs: { root }, notice: host.notice });
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
