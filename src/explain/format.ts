// Small helpers the rules share: numbers as people read them, suggested values, sysctl fixes.
import type { Fix } from './types.js';

export function bytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n} (${n >> 20} MiB)`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n} (${n >> 10} KiB)`;
  return String(n);
}

export function perSecond(n: number, seconds: number): string {
  if (seconds <= 0) return `${n}`;
  const r = n / seconds;
  return r >= 100 ? `${Math.round(r)}/s` : `${r.toFixed(1)}/s`;
}

/** The next power of two at or above n (buffer sizes people recognise). */
export function roundUpPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function sysctlFix(name: string, current: number | string | undefined, value: number | string, why: string): Fix {
  const v = typeof value === 'string' && value.includes(' ') ? `"${value}"` : String(value);
  return {
    kind: 'sysctl',
    name,
    current: current ?? null,
    value,
    command: `sysctl -w ${name}=${v}`,
    text: `${why} (now ${current ?? 'unknown'}): sysctl -w ${name}=${v}, and in /etc/sysctl.d/ to keep it`,
  };
}
