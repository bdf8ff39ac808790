// /sys/class/net/<dev>/statistics/*: one counter per file, exact (unlike /proc/net/dev's sums):
// rx_dropped, rx_missed_errors, rx_fifo_errors, rx_over_errors, rx_nohandler, …
// /sys/class/net shows the network namespace sysfs was mounted in, not the reader's.
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { errnoCode } from '../errors.js';
import { dict, ioError } from './read.js';

const U64 = /^[0-9]{1,20}$/;

/** One statistics file's text → its value; undefined when it is not a plain unsigned integer. */
export function parseStatValue(text: string): number | undefined {
  const s = text.trim();
  return U64.test(s) ? Number(s) : undefined;
}

/**
 * Every counter of one device. A file that fails to read (some drivers answer EINVAL or
 * EOPNOTSUPP) or does not hold an integer is skipped: one odd counter must not hide the rest.
 * A device that does not exist (or vanished) gives {}.
 */
export async function readDeviceStats(dev: string, sysRoot = '/sys'): Promise<Record<string, number>> {
  const dir = `${sysRoot}/class/net/${dev}/statistics`;
  const out = dict<number>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return out;
    throw ioError(e, dir, 'opendir');
  }
  names.sort();
  const values = await Promise.all(
    names.map(async (name) => {
      try {
        return parseStatValue(await readFile(`${dir}/${name}`, 'utf8'));
      } catch {
        return undefined;
      }
    }),
  );
  for (let i = 0; i < names.length; i++) {
    const v = values[i];
    if (v !== undefined) out[names[i]] = v;
  }
  return out;
}

/** Device name → counters, for every device in `${sysRoot}/class/net`. No sysfs → {}. */
export async function readAllDeviceStats(sysRoot = '/sys'): Promise<Record<string, Record<string, number>>> {
  const base = `${sysRoot}/class/net`;
  let devs: string[];
  try {
    devs = await readdir(base);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return dict();
    throw ioError(e, base, 'opendir');
  }
  devs.sort();
  const stats = await Promise.all(devs.map((d) => readDeviceStats(d, sysRoot)));
  const out = dict<Record<string, number>>();
  for (let i = 0; i < devs.length; i++) out[devs[i]] = stats[i];
  return out;
}

/**
 * readAllDeviceStats, synchronously, optionally only the counters `keep` accepts. For the
 * once-a-second reads of `stats` and `top`: sysfs statistics files are tiny and kernel-bound,
 * and reading ~100 of them through the libuv pool costs an order of magnitude more CPU than
 * readFileSync (figures: docs/bench.md). Same results and errors otherwise.
 */
export function readAllDeviceStatsSync(sysRoot = '/sys', keep: (name: string) => boolean = () => true): Record<string, Record<string, number>> {
  const base = `${sysRoot}/class/net`;
  let devs: string[];
  try {
    devs = readdirSync(base);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return dict();
    throw ioError(e, base, 'opendir');
  }
  devs.sort();
  const out = dict<Record<string, number>>();
  for (const dev of devs) {
    const dir = `${base}/${dev}/statistics`;
    const stats = dict<number>();
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      const code = errnoCode(e);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError(e, dir, 'opendir');
      names = [];
    }
    names.sort();
    for (const name of names) {
      if (!keep(name)) continue;
      let v: number | undefined;
      try {
        v = parseStatValue(readFileSync(`${dir}/${name}`, 'utf8'));
      } catch {
        v = undefined; // some drivers answer EINVAL or EOPNOTSUPP: skip that counter
      }
      if (v !== undefined) stats[name] = v;
    }
    out[dev] = stats;
  }
  return out;
}
