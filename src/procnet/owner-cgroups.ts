// Owners gain their cgroup, unit, container and pod (procnet/cgroup.ts), read from
// /proc/PID/cgroup once per owner pid and only for sockets that drop: the cost follows the
// drops, not the number of processes. The enriched list is remembered per owners list, so an
// event stream naming one socket a million times hands out one array (the NDJSON writer's
// socket cache compares it by identity).
import { readFileSync } from 'node:fs';
import { cgroupIdentity, type CgroupIdentity } from './cgroup.js';
import type { Owner } from './owners.js';

export class OwnerCgroups {
  /** pid → what its cgroup file says; {} when it could not be read (exited, hidden). */
  private readonly byPid = new Map<number, CgroupIdentity>();
  private enriched = new WeakMap<readonly Owner[], Owner[]>();

  constructor(
    private readonly procRoot = '/proc',
    private readonly read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
  ) {}

  /** The same owners with their cgroup keys (absent when unknown). */
  owners(list: readonly Owner[]): Owner[] {
    const done = this.enriched.get(list);
    if (done) return done;
    const out = list.map((o) => ({ ...o, ...this.identity(o.pid) }));
    this.enriched.set(list, out);
    return out;
  }

  identity(pid: number): CgroupIdentity {
    let id = this.byPid.get(pid);
    if (id === undefined) {
      try {
        id = cgroupIdentity(this.read(`${this.procRoot}/${pid}/cgroup`));
      } catch {
        // Gone or hidden: the owner is still right, its cgroup unknown (keys absent, as documented).
        id = {};
      }
      this.byPid.set(pid, id);
    }
    return id;
  }

  /** After an owner scan: forget the pids that are gone, so a reused pid is read again. */
  retain(pids: ReadonlySet<number> | ReadonlyMap<number, unknown>): void {
    for (const pid of this.byPid.keys()) if (!pids.has(pid)) this.byPid.delete(pid);
    this.enriched = new WeakMap();
  }
}
