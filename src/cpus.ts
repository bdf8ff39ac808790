// Online CPUs, from /sys/devices/system/cpu/online ("0-3,6"): one perf ring is opened per CPU.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ProcParseError } from './procnet/errors.js';

export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new ProcParseError('/sys/devices/system/cpu/online', 1, 'expected a CPU list such as 0-3,6', text.trim());
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
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
