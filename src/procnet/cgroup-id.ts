// The cgroup2 tree by directory inode: sock_diag's INET_DIAG_CGROUP_ID (5.8+) is the inode of
// the socket's cgroup directory under the cgroup2 mount (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on a hybrid host, found in /proc/self/mountinfo). One walker serves both
// users: the attributor names a socket's own cgroup (even when its owners cannot be read: another
// user's process, hidepid), and the owner cache reads that cgroup's cgroup.procs to find a new
// socket's owners without a full fd scan. The tree is walked on a miss, at most once a second,
// so a storm of drops on unknown ids costs one walk.
import { readdirSync, readFileSync, statSync } from 'node:fs';

/** The cgroup2 mount point in mountinfo text, or undefined (a v1-only host without one). */
export function parseCgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    if (line.slice(sep + 3).startsWith('cgroup2 ')) {
      // field 5 is the mount point, with spaces etc. as octal escapes
      return line.slice(0, sep).split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    }
  }
  return undefined;
}

const MAX_DEPTH = 32;
const MIN_WALK_GAP_MS = 1000;

export class CgroupTree {
  private root?: string | null;
  /** inode → path relative to the mount (as /proc/PID/cgroup writes it: `/system.slice/x.service`). */
  private paths = new Map<string, string>();
  private lastWalk = -Infinity;
  /** Walks so far (tests check that a storm of misses costs one). */
  walks = 0;

  constructor(
    private readonly procRoot = '/proc',
    private readonly minWalkGapMs = MIN_WALK_GAP_MS,
  ) {}

  /** The cgroup path of this id (`/` for the root cgroup), or undefined (unknown, or no cgroup2). */
  path(id: string | undefined): string | undefined {
    if (id === undefined || id === '0') return undefined;
    let p = this.paths.get(id);
    if (p === undefined && performance.now() - this.lastWalk >= this.minWalkGapMs) {
      this.walk();
      p = this.paths.get(id);
    }
    return p;
  }

  /** Pids in this cgroup (its cgroup.procs; not its children's), [] when unknown or unreadable. */
  procs(id: string | undefined): number[] {
    const p = this.path(id);
    // The root cgroup holds every process not placed elsewhere: no narrower than a full scan.
    if (p === undefined || p === '/' || !this.root) return [];
    try {
      return readFileSync(`${this.root}${p}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return []; // removed since the walk
    }
  }

  private walk(): void {
    this.lastWalk = performance.now();
    this.walks++;
    if (this.root === undefined) {
      try {
        this.root = parseCgroup2Mount(readFileSync(`${this.procRoot}/self/mountinfo`, 'utf8')) ?? null;
      } catch {
        this.root = null;
      }
    }
    const root = this.root;
    if (root === null) return;
    const paths = new Map<string, string>();
    const visit = (dir: string, rel: string, depth: number): void => {
      try {
        paths.set(String(statSync(dir, { bigint: true }).ino), rel || '/');
        if (depth >= MAX_DEPTH) return;
        for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) visit(`${dir}/${e.name}`, `${rel}/${e.name}`, depth + 1);
      } catch {
        // removed during the walk, or not readable: that cgroup stays unknown
      }
    };
    visit(root, '', 0);
    this.paths = paths;
  }
}
