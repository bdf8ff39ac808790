// Which sockets the user asked for by owner: --pid, --container ID-prefix, --unit NAME and
// --cgroup PATH-prefix. A socket is kept when one of its owners matches every option given.
// The CLI parsers reject what can never match (a container prefix that is not hex, a cgroup
// path that is not absolute) with a one-line usage error.
import { InvalidArgumentError } from 'commander';
import type { SocketOwner } from './decode/events.js';

export interface OwnerSelector {
  pid?: number;
  /** Lowercase hex prefix of a 64-hex container id (12 is what `docker ps` shows). */
  container?: string;
  /** A systemd unit: `nginx.service`, or `nginx` for nginx.service or nginx.scope. */
  unit?: string;
  /** A cgroup path prefix, matched at a `/` boundary: `/system.slice` matches `/system.slice/x.service`, not `/system.slicer`. */
  cgroup?: string;
}

export function hasOwnerSelector(s: OwnerSelector): boolean {
  return s.pid !== undefined || s.container !== undefined || s.unit !== undefined || s.cgroup !== undefined;
}

/** Whether the cgroup keys of owners are needed (a pid alone needs none). */
export function needsCgroups(s: OwnerSelector): boolean {
  return s.container !== undefined || s.unit !== undefined || s.cgroup !== undefined;
}

export function ownerMatches(o: SocketOwner, s: OwnerSelector): boolean {
  if (s.pid !== undefined && o.pid !== s.pid) return false;
  if (s.container !== undefined && !o.container?.startsWith(s.container)) return false;
  if (s.unit !== undefined && !(o.unit === s.unit || (!s.unit.includes('.') && (o.unit === `${s.unit}.service` || o.unit === `${s.unit}.scope`)))) return false;
  if (s.cgroup !== undefined) {
    const c = o.cgroup;
    const p = s.cgroup;
    if (c === undefined || !(c === p || p === '/' || c.startsWith(p.endsWith('/') ? p : `${p}/`))) return false;
  }
  return true;
}

export function ownersMatch(owners: readonly SocketOwner[], s: OwnerSelector): boolean {
  return owners.some((o) => ownerMatches(o, s));
}

export function containerOption(v: string): string {
  const id = v.toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(id)) throw new InvalidArgumentError(`--container takes a hex container id or prefix (as docker ps shows, e.g. 3f6d2a8b9c0e), got "${v}"`);
  return id;
}

export function unitOption(v: string): string {
  // systemd unit names: ASCII letters, digits, ":-_.\" and "@"; at most 255 characters.
  if (!/^[A-Za-z0-9:_.\\@-]{1,255}$/.test(v)) throw new InvalidArgumentError(`--unit takes a systemd unit name (e.g. nginx.service or nginx), got "${v}"`);
  return v;
}

export function cgroupOption(v: string): string {
  if (!v.startsWith('/') || v.includes('\n') || v.split('/').some((p) => p === '..' || p === '.')) {
    throw new InvalidArgumentError(`--cgroup takes an absolute cgroup path as /proc/PID/cgroup shows it (e.g. /system.slice), got "${v}"`);
  }
  return v.length > 1 && v.endsWith('/') ? v.slice(0, -1) : v;
}
