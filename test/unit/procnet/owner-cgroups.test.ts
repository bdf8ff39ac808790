// Owner enrichment: one /proc/PID/cgroup read per pid, one array per owners list (the NDJSON
// socket cache compares by identity), keys absent when the file cannot be read.
import { describe, expect, it } from 'vitest';
import { OwnerCgroups } from '../../../src/procnet/owner-cgroups.js';

describe('OwnerCgroups', () => {
  it('reads each pid once, keeps arrays stable, forgets pids that are gone', () => {
    const reads: string[] = [];
    const files: Record<string, string> = { '/p/1/cgroup': '0::/system.slice/a.service\n', '/p/2/cgroup': '0::/user.slice\n' };
    const c = new OwnerCgroups('/p', (path) => {
      reads.push(path);
      const t = files[path];
      if (t === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return t;
    });
    const list = [{ pid: 1, comm: 'a' }, { pid: 3, comm: 'gone' }];
    const out = c.owners(list);
    expect(out).toEqual([{ pid: 1, comm: 'a', cgroup: '/system.slice/a.service', unit: 'a.service' }, { pid: 3, comm: 'gone' }]);
    expect(c.owners(list)).toBe(out);
    expect(c.owners([{ pid: 1, comm: 'a' }, { pid: 2, comm: 'b' }])[1]).toEqual({ pid: 2, comm: 'b', cgroup: '/user.slice' });
    expect(reads).toEqual(['/p/1/cgroup', '/p/3/cgroup', '/p/2/cgroup']);
    c.retain(new Set([2]));
    c.owners([{ pid: 1, comm: 'a' }]);
    c.owners([{ pid: 2, comm: 'b' }]);
    expect(reads.slice(3)).toEqual(['/p/1/cgroup']);
    expect(list).toEqual([{ pid: 1, comm: 'a' }, { pid: 3, comm: 'gone' }]); // the scan's objects are not changed
  });
});
