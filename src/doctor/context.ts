// What doctor's checks share: the Context runDoctor gathers, and the small readers they use.
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
 * What the checks read, gathered by runDoctor (index.ts). Some checks fill it in as they run
 * (addonCheck sets `addon`), so the order of the calls in index.ts matters.
 */
export interface Context {
  creds?: ProcessCreds;
  isRoot: boolean;
  cpus: number[];
  addon?: NativeAddon;
  paranoid?: number;
  notice: (m: string) => void;
}
