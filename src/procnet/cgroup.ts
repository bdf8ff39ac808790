// /proc/PID/cgroup → the process's cgroup path, and what that path says about who runs it: the
// systemd unit, the container id, the Kubernetes pod. Pure text rules (no Docker or kubelet API),
// after netdata's cgroup-name.sh: `docker[-_/]<hex>`, `libpod-<hex>`, `kubepods…pod<uid>`, plus
// containerd's `cri-containerd-` and CRI-O's `crio-` scopes. Keys stay absent when a path does
// not show them: a guessed container is worse than none.

export interface CgroupIdentity {
  /** The cgroup v2 path (`0::` line); on a v1-only host, the name=systemd path. */
  cgroup?: string;
  /** The innermost systemd unit in the path: `nginx.service`, `docker-<id>.scope`, `session-3.scope`. */
  unit?: string;
  /** A 64-hex container id (docker, containerd, CRI-O, podman). */
  container?: string;
  /** A Kubernetes pod UID, with dashes (the systemd driver writes them as `_`). */
  pod?: string;
}

export interface CgroupLine {
  hierarchy: number;
  controllers: string;
  path: string;
}

/** `hierarchy-ID:controller-list:cgroup-path` lines; malformed lines are left out (the path may itself hold ':'). */
export function parseProcCgroup(text: string): CgroupLine[] {
  const out: CgroupLine[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const id = line.slice(0, a);
    if (!/^\d+$/.test(id)) continue;
    const path = line.slice(b + 1);
    if (!path.startsWith('/')) continue;
    out.push({ hierarchy: Number(id), controllers: line.slice(a + 1, b), path });
  }
  return out;
}

// Runtime prefixes whose scope (systemd driver) or directory (cgroupfs driver) names a container.
// The `-conmon-` scopes of CRI-O and podman hold the monitor, not the container: not a match.
const CONTAINER_RULES: RegExp[] = [
  /(?:^|\/)(?:docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope(?:\/|$)/,
  /(?:^|\/)(?:docker|libpod)[-_/]([0-9a-f]{64})(?:\/|$)/,
  // kubepods with the cgroupfs driver: …/pod<uid>/<64 hex>
  /\/pod[0-9a-f_-]{36}\/(?:[a-z-]+-)?([0-9a-f]{64})(?:\.scope)?(?:\/|$)/,
];
// A pod component: `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd).
const POD_COMPONENT = /^(?:kubepods-(?:[a-z]+-)?)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;
const UNIT_RULE = /\.(?:service|scope)$/;

/** The innermost container id in a path, if a rule matches. */
export function containerOf(path: string): string | undefined {
  let found: { at: number; id: string } | undefined;
  for (const rule of CONTAINER_RULES) {
    const g = new RegExp(rule.source, 'g');
    for (let m = g.exec(path); m !== null; m = g.exec(path)) {
      if (!found || m.index > found.at) found = { at: m.index, id: m[1] };
      g.lastIndex = m.index + 1;
    }
  }
  return found?.id;
}

/** The pod UID of a path under a `kubepods` cgroup. */
export function podOf(path: string): string | undefined {
  if (!path.includes('kubepods')) return undefined;
  for (const part of path.split('/')) {
    const m = POD_COMPONENT.exec(part);
    if (m) return m[1].replaceAll('_', '-');
  }
  return undefined;
}

/** The innermost `.service` or `.scope` component. */
export function unitOf(path: string): string | undefined {
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 0; i--) if (UNIT_RULE.test(parts[i])) return parts[i];
  return undefined;
}

/** What a cgroup path alone says: its unit, container and pod (keys absent when it shows none). */
export function pathIdentity(path: string): CgroupIdentity {
  const r: CgroupIdentity = { cgroup: path };
  const unit = unitOf(path);
  if (unit) r.unit = unit;
  const c = containerOf(path);
  if (c) r.container = c;
  const p = podOf(path);
  if (p) r.pod = p;
  return r;
}

/**
 * What one /proc/PID/cgroup file says. The cgroup is the v2 path if there is a `0::` line,
 * else the name=systemd path. The container and pod come from that path; on a hybrid host
 * (docker's cgroupfs driver writes only v1 hierarchies) they are looked for in the
 * name=systemd path and then in any v1 path, since a container is the same in each.
 */
export function cgroupIdentity(text: string): CgroupIdentity {
  const lines = parseProcCgroup(text);
  const v2 = lines.find((l) => l.hierarchy === 0 && l.controllers === '');
  const systemd = lines.find((l) => l.controllers === 'name=systemd');
  const main = v2 ?? systemd;
  const r: CgroupIdentity = {};
  if (!main) return r;
  r.cgroup = main.path;
  const order = [main, ...(systemd && systemd !== main ? [systemd] : []), ...lines.filter((l) => l !== main && l !== systemd)];
  const unit = unitOf(main.path);
  if (unit) r.unit = unit;
  for (const l of order) {
    const c = containerOf(l.path);
    if (c) {
      r.container = c;
      break;
    }
  }
  for (const l of order) {
    const p = podOf(l.path);
    if (p) {
      r.pod = p;
      break;
    }
  }
  return r;
}

/** The 12-hex short id that docker and podman print. */
export function shortContainer(id: string): string {
  return id.slice(0, 12);
}
