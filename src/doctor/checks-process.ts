// doctor's checks of this process: the addon, the CPUs, privileges and the open-files limit.
import { availableParallelism } from 'node:os';
import { parseCpuList } from '../cpus.js';
import { loadNative } from '../native.js';
import { readLimit } from '../procnet/limits.js';
import { DOCTOR_EVENTS, type DoctorCheck } from './types.js';
import { CAP, hasCap, parseStatusCreds, type CapName } from './facts.js';
import { read, errText, firstLine, type Context } from './context.js';

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
