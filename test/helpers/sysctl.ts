// Temporary sysctl changes for live tests, always restored in a finally. Inside a netns the
// value is read and written through `ip netns exec` (net.* sysctls are per netns).
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface SysctlOptions {
  /** a netns name (ip netns); default: this process's netns */
  netns?: string;
}

/** 'net/ipv4/udp_mem' or 'net.ipv4.udp_mem' → /proc/sys/net/ipv4/udp_mem */
function procPath(path: string): string {
  const rel = path.includes('/') ? path.replace(/^\/?(proc\/sys\/)?/, '') : path.replaceAll('.', '/');
  if (rel.split('/').includes('..') || !/^[\w./-]+$/.test(rel)) throw new Error(`bad sysctl path: ${path}`);
  return `/proc/sys/${rel}`;
}

/** The current value, trimmed (tabs between numbers are kept as the kernel prints them). */
export async function readSysctl(path: string, opts: SysctlOptions = {}): Promise<string> {
  const file = procPath(path);
  const text = opts.netns
    ? (await execFileP('ip', ['netns', 'exec', opts.netns, 'cat', file], { encoding: 'utf8' })).stdout
    : await readFile(file, 'utf8');
  return text.trim();
}

export async function writeSysctl(path: string, value: string, opts: SysctlOptions = {}): Promise<void> {
  const file = procPath(path);
  if (!opts.netns) {
    await writeFile(file, value);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', ['netns', 'exec', opts.netns!, 'tee', file], (err, _out, stderr) =>
      err ? reject(new Error(`writing ${value} to ${file} in ${opts.netns}: ${stderr || err.message}`)) : resolve(),
    );
    child.stdin!.end(value);
  });
}

/**
 * Set a sysctl, run fn, and restore the old value in a finally (also when fn throws).
 * withSysctl('net/ipv4/udp_mem', '2 2 2', fn); withSysctl('net/ipv4/ping_group_range', '0 0', fn, { netns }).
 */
export async function withSysctl<T>(path: string, value: string, fn: () => Promise<T>, opts: SysctlOptions = {}): Promise<T> {
  const old = await readSysctl(path, opts);
  await writeSysctl(path, value, opts);
  try {
    return await fn();
  } finally {
    await writeSysctl(path, old, opts);
  }
}
