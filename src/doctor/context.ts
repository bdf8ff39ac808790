// What doctor's checks share: the HostFacts runDoctor gathers, and the small readers they use.
import { readFileSync } from 'node:fs';
import { type NativeAddon } from '../native.js';
import { type ProcessCreds } from './facts.js';

export type Read = { text: string } | { error: string; message: string };

export function read(path: string): Read {
  try {
    return { text: readFileSync(path, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    return { error: code, message: (e as Error).message };
  }
}

export const DENIED = new Set(['EACCES', 'EPERM']);
export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
export const firstLine = (s: string): string => s.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? s;

/**
 * The facts about this process and host that later checks take as input. runDoctor (index.ts)
 * makes it once, from what the first checks return (addonCheck, cpusCheck, privilegesCheck), before
 * any check that needs it runs; no check changes it.
 */
export interface HostFacts {
  readonly creds?: ProcessCreds;
  readonly isRoot: boolean;
  readonly cpus: readonly number[];
  readonly addon?: NativeAddon;
  readonly paranoid?: number;
  readonly notice: (m: string) => void;
}
