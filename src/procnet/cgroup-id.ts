// sock_diag's INET_DIAG_CGROUP_ID (5.8+) → the socket's own cgroup path: the id is the inode of
// the cgroup's directory under the cgroup2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a
// hybrid host, found in /proc/self/mountinfo). The tree is walked on a miss, at most once a
// second, so a storm of drops on unknown ids costs one walk. This gives the socket's cgroup even
// when its owners cannot be read (another user's process, hidepid).
// Note for the merge with `diag`: attribute/owner-cache.ts there walks the same tree for
// cgroup.procs; one walker should serve both.
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

export class CgroupIdResolver {
  private root?: string | null;
  private paths = new Map<string, string>();
  private lastWalk = -Infinity;

  constructor(private readonly procRoot = '/proc') {}

  /** The cgroup path (as /proc/PID/cgroup writes it: `/system.slice/x.service`) of this id. */
  path(id: string | undefined): string | undefined {
    if (id === undefined || id === '0') return undefined;
    let p = this.paths.get(id);
    if (p === undefined && performance.now() - this.lastWalk >= MIN_WALK_GAP_MS) {
      this.walk();
      p = this.paths.get(id);
    }
    return p;
  }

  private walk(): void {
    this.lastWalk = performance.now();
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
