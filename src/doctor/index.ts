// `rxtrace doctor` as a library: what works on this machine, and why not. Every check reads or
// tries something real: tracefs (mounted here? if not, mounted for the checks and unmounted again,
// as the tracer does), each tracepoint's format file through the same parser and compiler the
// tracer uses, a short perf session on one CPU, the locked-memory limit against the default rings,
// kptr_restrict and the `pointer` column, /proc/PID/fd of every process, and every /proc table
// the tracer and `stats` read. Nothing is changed: no sysctl is written, and the only mount is
// the temporary tracefs one, reported through `notice` and undone before runDoctor() returns.
import { RxtraceError } from '../errors.js';
import type { EventSchema } from '../format/schema.js';
import { DEFAULT_EVENTS } from '../plan.js';
import { readSysctlNumber } from '../procnet/sysctl.js';
import { listEvents } from '../tracefs/events.js';
import { findTracefs, tracefsMountPoints, withTracefs, type TracefsSource } from '../tracefs/locate.js';
import {
  addonCheck, cpusCheck, privilegesCheck, tracepointCheck, perfProbe, placeholderProbe, paranoidCheck, ringCheck, openFilesCheck, kptrCheck, pointerCheck, ownersCheck, PROC_FILES, procFileCheck, sysfsStatsCheck, MOUNT_POINT, type HostFacts,
} from './checks.js';
import { type DoctorCheck, type DoctorOptions, DOCTOR_EVENTS } from './types.js';
import { udp6Check } from './udp6.js';
import { socketSourceCheck } from './socket-source.js';

export * from './types.js';
export * from './facts.js';

/**
 * Run every check and return them in order. Never throws for what it finds (a failure is a
 * check with status "fail"); it throws only for a bug. A tracefs mount it makes is reported
 * through `notice` and undone before it returns.
 *
 * @example
 * const checks = await runDoctor();
 * for (const c of checks) if (c.status === 'fail') console.error(c.check, c.detail, c.hint);
 */
export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const notice = opts.notice ?? opts.tracefs?.notice ?? ((m: string) => process.stderr.write(`rxtrace: ${m}\n`));
  // The first checks return the facts the later ones take as input, all of them gathered here,
  // once, before any of those runs.
  const addon = addonCheck();
  const cpus = cpusCheck();
  const privileges = privilegesCheck();
  const host: HostFacts = Object.freeze({
    addon: addon.addon,
    cpus: cpus.cpus,
    creds: privileges.creds,
    isRoot: privileges.isRoot,
    paranoid: readSysctlNumber('kernel.perf_event_paranoid'),
    notice,
  });
  const checks: DoctorCheck[] = [addon.check, cpus.check, privileges.check];

  // tracefs, the tracepoints and the perf probes: all inside one withTracefs, so that a mount
  // it makes covers them all and is undone once, before the /proc checks.
  const procMounts = opts.tracefs?.procMounts ?? '/proc/mounts';
  const override = opts.tracefs?.root ?? process.env.RXTRACE_TRACEFS;
  const before = override ? undefined : findTracefs(procMounts);
  const mountsBefore = tracefsMountPoints(procMounts);
  let tracefs: DoctorCheck | undefined;
  let tpChecks: DoctorCheck[] = [];
  let perf: DoctorCheck | undefined;
  let ring: DoctorCheck | undefined;
  let kfree: EventSchema | null | undefined;
  let udpSchema: EventSchema | undefined;
  let usedRoot: string | undefined;
  let usedSource: TracefsSource | undefined;
  const wantPerf = opts.perf !== false;
  try {
    await withTracefs({ ...opts.tracefs, notice }, async (root, source) => {
      usedRoot = root;
      usedSource = source;
      const available = new Set(listEvents(root));
      const results = DOCTOR_EVENTS.map((name) => tracepointCheck(root, available, name));
      const defaults = results.filter((_, i) => DEFAULT_EVENTS.includes(DOCTOR_EVENTS[i]));
      if (defaults.every((r) => r.check.data?.present === false)) {
        // None of the defaults: `rxtrace trace` exits 69 (ENOTRACEPOINT).
        for (const r of defaults) Object.assign(r.check, { status: 'fail', code: 'ENOTRACEPOINT', hint: `this kernel has none of rxtrace's default tracepoints; name others with -e (ls ${root}/events/*)` });
      }
      tpChecks = results.map((r) => r.check);
      const kfreeResult = results[DOCTOR_EVENTS.indexOf('skb:kfree_skb')];
      kfree = kfreeResult.schema ?? (kfreeResult.check.data?.present === false ? null : undefined);
      udpSchema = results[DOCTOR_EVENTS.indexOf('udp:udp_fail_queue_rcv_skb')]?.schema;
      const usable = DOCTOR_EVENTS.find((_, i) => results[i].schema !== undefined);
      if (!wantPerf) return;
      if (!host.addon) return;
      if (usable) {
        perf = await perfProbe(host, root, usable);
        ring = await ringCheck(host, root, usable, perf.status === 'ok');
      } else {
        perf = await placeholderProbe(host, 'no tracepoint could be read');
      }
    });
    const mountsAfter = tracefsMountPoints(procMounts);
    const left = mountsAfter.filter((m) => !mountsBefore.includes(m));
    if (override) {
      tracefs = { check: 'tracefs', status: 'ok', detail: `using ${override} (${opts.tracefs?.root ? 'the tracefs root option' : 'RXTRACE_TRACEFS'}); its ids must be this kernel's`, data: { path: override, mounted: 'override' } };
    } else if (before) {
      tracefs = { check: 'tracefs', status: 'ok', detail: `mounted at ${before}`, data: { path: before, mounted: 'already' } };
    } else if (usedSource === 'private') {
      tracefs = {
        check: 'tracefs',
        status: 'ok',
        detail: 'was not mounted: read it through a private mount for these checks (detached and read-only: no other process sees it, nothing was mounted on the host, and it is gone with its fd), as rxtrace trace does',
        data: { mounted: 'private' },
      };
    } else if (left.length > 0) {
      tracefs = {
        check: 'tracefs',
        status: 'warn',
        detail: `was not mounted: mounted it at ${usedRoot} for these checks, but could not unmount it again (busy?); it stays mounted`,
        hint: `umount ${usedRoot}`,
        data: { path: usedRoot, mounted: 'left' },
      };
    } else {
      tracefs = {
        check: 'tracefs',
        status: 'ok',
        detail: `was not mounted: mounted it at ${usedRoot} for these checks and unmounted it again, as rxtrace trace does (it mounts it only while reading event formats)`,
        data: { path: usedRoot, mounted: 'temporary' },
      };
    }
  } catch (e) {
    if (usedRoot !== undefined || !(e instanceof RxtraceError)) throw e; // a bug in the checks, not tracefs
    const notMounting = opts.tracefs?.mount === false && e.code === 'ENOTRACEFS' && process.getuid?.() === 0;
    tracefs = notMounting
      ? {
          check: 'tracefs',
          status: 'warn',
          detail: 'not mounted, and not mounted for these checks (--no-mount); rxtrace trace, as root, mounts it while it reads event formats',
          hint: `mount it yourself (mount -t tracefs nodev ${MOUNT_POINT}), or run rxtrace doctor without --no-mount to check it`,
          data: { path: MOUNT_POINT, mounted: 'no' },
        }
      : { check: 'tracefs', status: 'fail', code: e.code, detail: e.message, hint: e.hint, data: { path: e.path ?? MOUNT_POINT, mounted: 'no' } };
    tpChecks = DOCTOR_EVENTS.map((name) => ({ check: `tracepoint ${name}`, status: 'info', detail: 'not checked: tracefs is not available (see tracefs)', data: { event: name, present: null } }));
    if (wantPerf && host.addon) perf = await placeholderProbe(host, 'tracefs is not available');
  }
  checks.push(tracefs, ...tpChecks, udp6Check(udpSchema, kfree));
  if (!wantPerf) perf = { check: 'perf_event_open', status: 'info', detail: 'not tried (perf: false)' };
  else if (!host.addon) perf = { check: 'perf_event_open', status: 'info', detail: 'not tried: the addon does not load (see addon)' };
  checks.push(perf!);
  checks.push(paranoidCheck(host, perf!));
  checks.push(ring ?? (await ringCheck(host, undefined, undefined, false)));
  checks.push(openFilesCheck(host));
  const kptr = kptrCheck();
  checks.push(kptr.check);
  checks.push(await pointerCheck(host, kptr.value, kfree));
  checks.push(await socketSourceCheck());
  checks.push(await ownersCheck(host));
  for (const spec of PROC_FILES) checks.push(procFileCheck(spec));
  checks.push(sysfsStatsCheck());
  // Drop empty optional keys, so that NDJSON lines carry only what was found.
  return checks.map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as unknown as DoctorCheck);
}
