// Throwaway network namespaces for live tests: named rxt-…, always deleted afterwards.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
export const NETNS_PREFIX = 'rxt-';
let seq = 0;

/** Run `ip ARGS…`; rejects with ip's stderr. */
export async function ip(...args: string[]): Promise<string> {
  try {
    return (await execFileP('ip', args, { encoding: 'utf8' })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(err.stderr || err.message).trim()}`);
  }
}

/** Run a command inside a netns (`ip netns exec NS cmd…`) and return its stdout. */
export async function netnsExec(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return ip('netns', 'exec', ns, cmd, ...args);
}

/** Named network namespaces (`ip netns list`), from /run/netns. */
export function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

/** Leftover rxt-… namespaces created by this process (any process, with all=true). */
export function leftoverNetns(all = false): string[] {
  const mine = `${NETNS_PREFIX}${process.pid}-`;
  return listNetns().filter((n) => n.startsWith(all ? NETNS_PREFIX : mine));
}

/**
 * Create a uniquely named netns (rxt-<pid>-<seq>-<name>) with lo up, run fn(nsName), and delete
 * the netns in a finally. Processes still inside it keep it alive, unnamed: stop them in fn.
 */
export async function withNetns<T>(name: string, fn: (ns: string) => Promise<T>): Promise<T> {
  const clean = name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
  const ns = `${NETNS_PREFIX}${process.pid}-${++seq}-${clean}`;
  await ip('netns', 'add', ns);
  try {
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    return await fn(ns);
  } finally {
    await ip('netns', 'del', ns);
  }
}

/** Make lo carry IPv4 multicast inside ns: `lo multicast on` and 224.0.0.0/4 routed to lo. */
export async function setupMulticastLo(ns: string): Promise<void> {
  await ip('-n', ns, 'link', 'set', 'lo', 'multicast', 'on');
  await ip('-n', ns, 'route', 'replace', '224.0.0.0/4', 'dev', 'lo');
}
