// doctor's checks of this process: the addon, the CPUs, privileges and the open-files limit.
import { availableParallelism } from 'node:os';
import { parseCpuList } from '../cpus.js';
import { loadNative } from '../native.js';
import { readLimit } from '../procnet/limits.js';
import { DOCTOR_EVENTS, type DoctorCheck } from './types.js';
import { CAP, hasCap, parseStatusCreds, type CapName } from './facts.js';
import { read, errText, firstLine, type HostFacts } from './context.js';
import type { ProcessCreds } from './facts.js';
import type { NativeAddon } from '../native.js';

/** Whether the addon loads; the addon itself, for the probes, when it does. */
export function addonCheck(): { check: DoctorCheck; addon?: NativeAddon } {
  try {
    const addon = loadNative();
    return { addon, check: { check: 'addon', status: 'ok', detail: `the native addon (rxtrace.node) loads in Node ${process.versions.node} (N-API ${process.versions.napi})` } };
  } catch (e) {
    return { check: {
      check: 'addon',
      status: 'fail',
      code: 'ENOADDON',
      detail: `the native addon does not load: ${firstLine(errText(e))}`,
      hint: 'build it: npm rebuild rxtrace (or node-gyp rebuild in the package directory; needs g++, make and Python 3)',
    } };
  }
}

/** The online CPUs (every CPU node says it has, when sysfs cannot tell). */
export function cpusCheck(): { check: DoctorCheck; cpus: number[] } {
  const path = '/sys/devices/system/cpu/online';
  const r = read(path);
  const assumed = (): number[] => Array.from({ length: availableParallelism() }, (_, i) => i);
  if ('text' in r) {
    try {
      const cpus = parseCpuList(r.text);
      return {
        cpus,
        check: {
          check: 'cpus',
          status: 'info',
          detail: `${cpus.length} online CPU${cpus.length === 1 ? '' : 's'} (${r.text.trim()}): one perf ring and one fd per event per CPU`,
          data: { online: cpus },
        },
      };
    } catch (e) {
      const cpus = assumed();
      return { cpus, check: { check: 'cpus', status: 'warn', detail: `${path} does not parse (${errText(e)}); assuming CPUs 0-${cpus.length - 1}`, hint: 'trace explicit CPUs with the library option cpus' } };
    }
  }
  const cpus = assumed();
  return { cpus, check: { check: 'cpus', status: 'warn', detail: `cannot read ${path} (${r.error}); assuming CPUs 0-${cpus.length - 1}`, hint: 'mount sysfs at /sys' } };
}

/** This process's uid and capabilities (creds undefined when /proc/self/status cannot be read). */
export function privilegesCheck(): { check: DoctorCheck; creds?: ProcessCreds; isRoot: boolean } {
  const r = read('/proc/self/status');
  const creds = 'text' in r ? parseStatusCreds(r.text) : undefined;
  const isRoot = process.getuid?.() === 0;
  return { check: privilegesOf(creds), creds, isRoot };
}

function privilegesOf(creds: ProcessCreds | undefined): DoctorCheck {
  const uid = process.getuid?.() ?? -1;
  if (!creds) return { check: 'privileges', status: 'warn', detail: `uid ${uid}; cannot read capabilities from /proc/self/status`, hint: 'mount procfs at /proc' };
  const names = Object.keys(CAP) as CapName[];
  const have = names.filter((n) => hasCap(creds, CAP[n])).map((n) => `CAP_${n}`);
  const lack = names.filter((n) => !hasCap(creds, CAP[n])).map((n) => `CAP_${n}`);
  // Capabilities held in a child user namespace do not count for perf_event_open or mount.
  const uidMap = read('/proc/self/uid_map');
  const initialNs = !('text' in uidMap) || /^\s*0\s+0\s+4294967295\s*$/.test(uidMap.text.trim());
  const detail = `uid ${creds.uid}${creds.euid !== creds.uid ? ` (effective ${creds.euid})` : ''}; ${
    lack.length === 0 ? `has ${have.join(', ')}` : have.length === 0 ? `has none of ${lack.join(', ')}` : `has ${have.join(', ')}; lacks ${lack.join(', ')}`
  }${initialNs ? '' : '; in a user namespace, where these capabilities do not reach perf_event_open or tracefs'}`;
  return {
    check: 'privileges',
    status: initialNs ? 'info' : 'warn',
    detail,
    hint: initialNs ? undefined : 'run rxtrace in the initial user namespace (on the host, or in a container that shares it)',
    data: { uid: creds.uid, euid: creds.euid, capabilities: have, userNamespace: initialNs ? 'initial' : 'child' },
  };
}


export function openFilesCheck(host: HostFacts): DoctorCheck {
  const soft = readLimit('Max open files');
  // Every event on every CPU is an fd; add Node's own and the /proc reads.
  const need = DOCTOR_EVENTS.length * host.cpus.length + 64;
  if (soft === undefined) return { check: 'open files', status: 'warn', detail: 'cannot read the open-files limit from /proc/self/limits', hint: 'check ulimit -n' };
  const text = soft === 'unlimited' ? 'unlimited' : String(soft);
  if (soft !== 'unlimited' && soft < need) {
    return {
      check: 'open files',
      status: 'warn',
      detail: `ulimit -n is ${text}: tracing ${DOCTOR_EVENTS.length} events on ${host.cpus.length} CPUs needs about ${need}`,
      hint: `raise it: ulimit -n ${Math.max(4096, need * 2)}`,
      data: { soft, need },
    };
  }
  return { check: 'open files', status: 'ok', detail: `ulimit -n is ${text}; ${DOCTOR_EVENTS.length} events on ${host.cpus.length} CPUs need about ${need}`, data: { soft, need } };
}
