// Online CPUs, from /sys/devices/system/cpu/online ("0-3,6"): one perf ring is opened per CPU.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ProcParseError } from './procnet/errors.js';

/** The kernel's NR_CPUS ceiling (CONFIG_NR_CPUS is at most 8192): a larger id is not a CPU. */
const MAX_CPU_ID = 8191;

export function parseCpuList(text: string): number[] {
  const file = '/sys/devices/system/cpu/online';
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new ProcParseError(file, 1, 'expected a CPU list such as 0-3,6', text.trim());
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    // Bounded before the loop: "0-4294967295" must not build a 4-billion-entry array.
    if (b < a || b > MAX_CPU_ID) throw new ProcParseError(file, 1, `CPU range ${part.trim()} is not within 0-${MAX_CPU_ID}`, text.trim());
    for (let c = a; c <= b; c++) out.push(c);
  }
  return out;
}

export function onlineCpus(path = '/sys/devices/system/cpu/online'): number[] {
  try {
    return parseCpuList(readFileSync(path, 'utf8'));
  } catch {
    return Array.from({ length: availableParallelism() }, (_, i) => i);
  }
}
