// Path rules: /proc/PID/cgroup files as docker, containerd, CRI-O, podman and systemd write them
// (both the cgroupfs and the systemd cgroup drivers), on v2, hybrid and v1-only hosts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cgroupIdentity, containerOf, parseProcCgroup, podOf, shortContainer, unitOf } from '../../../src/procnet/cgroup.js';

const ID = '3f6d2a8b9c0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809a1b';
const ID2 = 'aa'.repeat(32);
const POD = '8a3c1f2e-4b5d-4e6f-9a0b-1c2d3e4f5a6b';
const POD_ = POD.replaceAll('-', '_');

describe('cgroupIdentity', () => {
  const cases: [string, string, Record<string, string>][] = [
    ['docker, systemd driver, cgroup v2', `0::/system.slice/docker-${ID}.scope\n`, { cgroup: `/system.slice/docker-${ID}.scope`, unit: `docker-${ID}.scope`, container: ID }],
    ['docker, cgroupfs driver, cgroup v2', `0::/docker/${ID}\n`, { cgroup: `/docker/${ID}`, container: ID }],
    [
      'docker, cgroupfs driver, hybrid host: the container is only in the v1 paths',
      `12:memory:/docker/${ID}\n11:cpu,cpuacct:/docker/${ID}\n1:name=systemd:/docker/${ID}\n0::/system.slice/containerd.service\n`,
      { cgroup: '/system.slice/containerd.service', unit: 'containerd.service', container: ID },
    ],
    ['docker, v1-only host: the name=systemd path', `4:memory:/docker/${ID}\n1:name=systemd:/docker/${ID}\n`, { cgroup: `/docker/${ID}`, container: ID }],
    [
      'containerd under kubelet, systemd driver',
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_}.slice/cri-containerd-${ID}.scope\n`,
      {
        cgroup: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_}.slice/cri-containerd-${ID}.scope`,
        unit: `cri-containerd-${ID}.scope`,
        container: ID,
        pod: POD,
      },
    ],
    ['containerd under kubelet, cgroupfs driver', `0::/kubepods/burstable/pod${POD}/${ID}\n`, { cgroup: `/kubepods/burstable/pod${POD}/${ID}`, container: ID, pod: POD }],
    ['a guaranteed pod (no QoS slice), systemd driver', `0::/kubepods.slice/kubepods-pod${POD_}.slice/crio-${ID}.scope\n`, {
      cgroup: `/kubepods.slice/kubepods-pod${POD_}.slice/crio-${ID}.scope`,
      unit: `crio-${ID}.scope`,
      container: ID,
      pod: POD,
    }],
    ['the pod itself (the pause-less sandbox cgroup)', `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice\n`, {
      cgroup: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice`,
      pod: POD,
    }],
    ['CRI-O conmon: the monitor, not the container', `0::/kubepods.slice/kubepods-pod${POD_}.slice/crio-conmon-${ID}.scope\n`, {
      cgroup: `/kubepods.slice/kubepods-pod${POD_}.slice/crio-conmon-${ID}.scope`,
      unit: `crio-conmon-${ID}.scope`,
      pod: POD,
    }],
    ['podman rootful, systemd driver', `0::/machine.slice/libpod-${ID}.scope\n`, { cgroup: `/machine.slice/libpod-${ID}.scope`, unit: `libpod-${ID}.scope`, container: ID }],
    ['podman, a process inside the container cgroup', `0::/machine.slice/libpod-${ID}.scope/container\n`, { cgroup: `/machine.slice/libpod-${ID}.scope/container`, unit: `libpod-${ID}.scope`, container: ID }],
    ['podman, cgroupfs driver', `0::/libpod_parent/libpod-${ID}\n`, { cgroup: `/libpod_parent/libpod-${ID}`, container: ID }],
    [
      'podman rootless',
      `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope\n`,
      { cgroup: `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`, unit: `libpod-${ID}.scope`, container: ID },
    ],
    ['docker in docker: the innermost container', `0::/docker/${ID2}/docker/${ID}\n`, { cgroup: `/docker/${ID2}/docker/${ID}`, container: ID }],
    ['a systemd service', '0::/system.slice/nginx.service\n', { cgroup: '/system.slice/nginx.service', unit: 'nginx.service' }],
    ['a service with a delegated subtree', '0::/system.slice/app.service/workers/3\n', { cgroup: '/system.slice/app.service/workers/3', unit: 'app.service' }],
    ['a login session', '0::/user.slice/user-0.slice/session-3.scope\n', { cgroup: '/user.slice/user-0.slice/session-3.scope', unit: 'session-3.scope' }],
    ['the root cgroup', '0::/\n', { cgroup: '/' }],
    ['this dev host (hybrid, v2 at the root)', '9:name=systemd:/\n4:memory:/process_api/d50a1262803918a0347d2bca458f74e4\n0::/\n', { cgroup: '/' }],
    ['a test scope under a made-up slice', `0::/rxtest.slice/docker-${ID}.scope\n`, { cgroup: `/rxtest.slice/docker-${ID}.scope`, unit: `docker-${ID}.scope`, container: ID }],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => {
      expect(cgroupIdentity(text)).toEqual(want);
    });
  }

  it('no key at all for a file without a v2 or name=systemd line', () => {
    expect(cgroupIdentity('4:memory:/docker/x\n')).toEqual({});
    expect(cgroupIdentity('')).toEqual({});
  });

  it('a docker id that is not 64 hex is no container (netdata asks 64 or 12; a path holds 64)', () => {
    expect(containerOf('/docker/abc123')).toBeUndefined();
    expect(containerOf(`/system.slice/docker-${ID.slice(1)}.scope`)).toBeUndefined();
    expect(containerOf(`/system.slice/docker-${ID.toUpperCase()}.scope`)).toBeUndefined();
  });

  it('a pod UID needs a kubepods path', () => {
    expect(podOf(`/system.slice/pod${POD}`)).toBeUndefined();
  });

  it('paths with colons stay whole', () => {
    expect(parseProcCgroup('0::/a:b/c.service\n')).toEqual([{ hierarchy: 0, controllers: '', path: '/a:b/c.service' }]);
    expect(unitOf('/a:b/c.service')).toBe('c.service');
  });

  it('short ids are 12 hex', () => {
    expect(shortContainer(ID)).toBe(ID.slice(0, 12));
  });

  it('never throws, on any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const r = cgroupIdentity(s);
        if (r.container !== undefined) expect(r.container).toMatch(/^[0-9a-f]{64}$/);
        if (r.pod !== undefined) expect(r.pod).toMatch(/^[0-9a-f-]{36}$/);
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 500) },
    );
  });
});

describe('socket cgroup (INET_DIAG_CGROUP_ID)', () => {
  it('finds the cgroup2 mount in mountinfo (hybrid and v2 hosts), none on v1-only', async () => {
    const { parseCgroup2Mount } = await import('../../../src/procnet/cgroup-id.js');
    const hybrid = [
      '33 25 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
      '34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
      '35 33 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd',
    ].join('\n');
    expect(parseCgroup2Mount(hybrid)).toBe('/sys/fs/cgroup/unified');
    expect(parseCgroup2Mount('30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n')).toBe('/sys/fs/cgroup');
    expect(parseCgroup2Mount('30 24 0:26 / /mnt/my\\040cg rw - cgroup2 none rw\n')).toBe('/mnt/my cg');
    expect(parseCgroup2Mount('35 33 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n')).toBeUndefined();
  });

  it('a path alone: unit, container, pod', async () => {
    const { pathIdentity } = await import('../../../src/procnet/cgroup.js');
    expect(pathIdentity(`/system.slice/docker-${ID}.scope`)).toEqual({ cgroup: `/system.slice/docker-${ID}.scope`, unit: `docker-${ID}.scope`, container: ID });
    expect(pathIdentity('/')).toEqual({ cgroup: '/' });
  });
});

describe('CgroupTree: one walker for socket cgroup paths and cgroup.procs', () => {
  it('maps directory inodes to paths and pids, walks once per miss storm, and never offers the root cgroup', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, statSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { CgroupTree } = await import('../../../src/procnet/cgroup-id.js');
    const base = mkdtempSync(`${tmpdir()}/rxtrace-cgtree-`);
    try {
      const cg = `${base}/cg`;
      const scope = `${cg}/rxtest.slice/docker-${ID}.scope`;
      mkdirSync(scope, { recursive: true });
      writeFileSync(`${scope}/cgroup.procs`, '4242\n4243\n');
      writeFileSync(`${cg}/cgroup.procs`, '1\n2\n');
      mkdirSync(`${base}/proc/self`, { recursive: true });
      writeFileSync(`${base}/proc/self/mountinfo`, `34 25 0:29 / ${cg} rw,nosuid - cgroup2 cgroup2 rw\n`);
      const ino = (d: string) => String(statSync(d, { bigint: true }).ino);
      const tree = new CgroupTree(`${base}/proc`, 60_000);
      expect(tree.path(ino(scope))).toBe(`/rxtest.slice/docker-${ID}.scope`);
      expect(tree.procs(ino(scope))).toEqual([4242, 4243]);
      expect(tree.path(ino(cg))).toBe('/');
      expect(tree.procs(ino(cg))).toEqual([]); // everyone: no narrower than a full scan
      expect(tree.path(undefined)).toBeUndefined();
      expect(tree.path('0')).toBeUndefined();
      // Unknown ids within the walk gap cost no walk each.
      for (let i = 0; i < 100; i++) expect(tree.path(String(999_000 + i))).toBeUndefined();
      expect(tree.walks).toBe(1);
      // A cgroup removed since the walk: its procs read as none.
      rmSync(`${scope}/cgroup.procs`);
      expect(tree.procs(ino(scope))).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('no cgroup2 mount (v1-only host): nothing known, nothing thrown', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { CgroupTree } = await import('../../../src/procnet/cgroup-id.js');
    const base = mkdtempSync(`${tmpdir()}/rxtrace-cgtree-`);
    try {
      mkdirSync(`${base}/proc/self`, { recursive: true });
      writeFileSync(`${base}/proc/self/mountinfo`, '35 33 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n');
      const tree = new CgroupTree(`${base}/proc`, 0);
      expect(tree.path('12345')).toBeUndefined();
      expect(tree.procs('12345')).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
