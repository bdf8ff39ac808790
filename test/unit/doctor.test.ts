// The pure pieces of `rxtrace doctor` (src/doctor.ts, src/cli/doctor.ts): capabilities from
// /proc/self/status, the pointer column's kind, the ring sizing and locked-memory arithmetic,
// layouts from other kernels' format fixtures, the exit code and the text table; and runDoctor()
// over fixture tracefs trees (no perf session: perf: false).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorExitCode, doctorTable } from '../../src/cli/doctor.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import {
  CAP,
  classifyPointer,
  describeLayout,
  describeParanoid,
  hasCap,
  memlockVerdict,
  parseLimit,
  parseStatusCreds,
  perfmonCapable,
  runDoctor,
  type DoctorCheck,
  type MemlockInput,
} from '../../src/doctor/index.js';
import { parseFormat } from '../../src/format/parse.js';
import { DEFAULT_EVENTS } from '../../src/plan.js';
import { defaultRingPages } from '../../src/tracer.js';

const FORMATS = fileURLToPath(new URL('../fixtures/format/', import.meta.url));
const TREES = fileURLToPath(new URL('../fixtures/tracefs/', import.meta.url));
const schema = (kernel: string, file: string, system: string) => parseFormat(readFileSync(join(FORMATS, kernel, `${file}.format`), 'utf8'), system);

const status = (caps: string, uid = 0) => `Name:\tnode\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapPrm:\t${caps}\nCapEff:\t${caps}\n`;

describe('capabilities from /proc/self/status', () => {
  it('root with every capability, root in a container without CAP_SYS_ADMIN, nobody, and CAP_PERFMON alone', () => {
    const root = parseStatusCreds(status('000001ffffffffff'));
    expect(root).toEqual({ uid: 0, euid: 0, capEff: 0x1ffffffffffn });
    for (const c of Object.values(CAP)) expect(hasCap(root, c)).toBe(true);
    expect(perfmonCapable(root)).toBe(true);

    const noAdmin = parseStatusCreds(status((0x1ffffffffffn & ~(1n << 21n)).toString(16).padStart(16, '0')));
    expect(hasCap(noAdmin, CAP.SYS_ADMIN)).toBe(false);
    expect(hasCap(noAdmin, CAP.PERFMON)).toBe(true);
    expect(perfmonCapable(noAdmin)).toBe(true);

    const nobody = parseStatusCreds(status('0000000000000000', 65534));
    expect(nobody?.uid).toBe(65534);
    expect(perfmonCapable(nobody)).toBe(false);
    expect(hasCap(nobody, CAP.IPC_LOCK)).toBe(false);

    const perfmonOnly = parseStatusCreds(status((1n << 38n).toString(16).padStart(16, '0'), 1000));
    expect(perfmonCapable(perfmonOnly)).toBe(true);
    expect(hasCap(perfmonOnly, CAP.SYS_ADMIN)).toBe(false);
    expect(hasCap(perfmonOnly, CAP.IPC_LOCK)).toBe(false);
  });

  it('a status without CapEff is unknown, and unknown credentials have no capability', () => {
    expect(parseStatusCreds('Name:\tx\nUid:\t0\t0\t0\t0\n')).toBeUndefined();
    expect(hasCap(undefined, CAP.PERFMON)).toBe(false);
    expect(perfmonCapable(undefined)).toBe(false);
  });
});

describe('describeParanoid', () => {
  it('names the privilege rxtrace needs at each level; -1 needs none', () => {
    expect(describeParanoid(-1)).toMatch(/no restrictions/);
    for (const level of [0, 1, 2, 3, 4]) expect(describeParanoid(level)).toMatch(/CAP_PERFMON/);
    expect(describeParanoid(3)).toMatch(/distribution/);
  });
});

describe('classifyPointer (the %pK `pointer` column)', () => {
  it('tells real addresses, 32-bit hashes and zeros apart on a 64-bit kernel', () => {
    expect(classifyPointer('ffff8881045a2000')).toBe('address');
    expect(classifyPointer('FFFF000012345678')).toBe('address');
    expect(classifyPointer('000000004b1e2a3c')).toBe('hashed');
    expect(classifyPointer('0000000000000000')).toBe('zero');
    expect(classifyPointer('0')).toBe('zero');
  });
  it('says unknown when it cannot tell (8 digits: a 32-bit kernel), or for text that is not hex', () => {
    expect(classifyPointer('c1a2b3c4')).toBe('unknown');
    expect(classifyPointer('00007fff12345678')).toBe('unknown');
    expect(classifyPointer('(null)')).toBe('unknown');
  });
});

describe('defaultRingPages (the tracer\'s sizing: 64 MiB over all CPUs, 2-8 MiB per ring)', () => {
  it('8 MiB per CPU up to 8 CPUs, then 64 MiB shared, never below 2 MiB', () => {
    expect(defaultRingPages(1, 4096)).toBe(2048);
    expect(defaultRingPages(2, 4096)).toBe(2048);
    expect(defaultRingPages(8, 4096)).toBe(2048);
    expect(defaultRingPages(16, 4096)).toBe(1024);
    expect(defaultRingPages(32, 4096)).toBe(512);
    expect(defaultRingPages(256, 4096)).toBe(512);
    // 64 KiB pages (arm64, ppc64): the same bytes in fewer pages.
    expect(defaultRingPages(2, 65536)).toBe(128);
  });
});

describe('memlockVerdict (perf_mmap\'s locked-memory rule)', () => {
  const base: MemlockInput = { ncpus: 2, onlineCpus: 2, ringPages: 2048, pageSize: 4096, mlockKb: 516, memlock: 8 << 20, ipcLock: false, paranoid: 2 };

  it('no limit with CAP_IPC_LOCK, with perf_event_paranoid -1, or with ulimit -l unlimited', () => {
    expect(memlockVerdict({ ...base, ipcLock: true })).toMatchObject({ fits: true, exempt: 'CAP_IPC_LOCK', needBytes: 16 << 20 });
    expect(memlockVerdict({ ...base, paranoid: -1 })).toMatchObject({ fits: true, exempt: 'perf_event_paranoid -1' });
    expect(memlockVerdict({ ...base, memlock: 'unlimited' })).toMatchObject({ fits: true, exempt: 'ulimit -l unlimited' });
  });

  it('the default 2 × 8 MiB rings against 516 KiB × 2 CPUs + 8 MiB: they do not fit, 2 × 4 MiB do', () => {
    const v = memlockVerdict(base);
    expect(v.fits).toBe(false);
    expect(v.allowBytes).toBe((129 * 2 + 2048) * 4096);
    expect(v.maxRingPages).toBe(1024);
    expect(memlockVerdict({ ...base, ringPages: 1024 }).fits).toBe(true);
  });

  it('ulimit -l 64: 128 pages per CPU at most; a ring exactly at the limit fits, one page more does not', () => {
    expect(memlockVerdict({ ...base, memlock: 64 << 10 }).maxRingPages).toBe(128);
    // allowance = 129 × 2 + 16 = 274 pages
    expect(memlockVerdict({ ...base, ncpus: 1, onlineCpus: 2, ringPages: 256, memlock: 64 << 10 }).fits).toBe(true);
    expect(memlockVerdict({ ...base, ncpus: 1, onlineCpus: 2, ringPages: 256, mlockKb: 4, memlock: 64 << 10 }).fits).toBe(false);
  });

  it('nothing fits at all: maxRingPages 0', () => {
    expect(memlockVerdict({ ...base, ncpus: 64, onlineCpus: 64, mlockKb: 0, memlock: 0 }).maxRingPages).toBe(0);
  });
});

describe('parseLimit (/proc/self/limits)', () => {
  const limits = [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max open files            1024                 1048576              files     ',
    'Max locked memory         8388608              8388608              bytes     ',
    'Max msgqueue size         unlimited            unlimited            bytes     ',
  ].join('\n');
  it('reads the soft limit, unlimited, or nothing', () => {
    expect(parseLimit(limits, 'Max open files')).toBe(1024);
    expect(parseLimit(limits, 'Max locked memory')).toBe(8388608);
    expect(parseLimit(limits, 'Max msgqueue size')).toBe('unlimited');
    expect(parseLimit(limits, 'Max processes')).toBeUndefined();
  });
});

describe('describeLayout, across kernels (format fixtures)', () => {
  it('udp_fail_queue_rcv_skb: dport/daddr since 6.10, lport before; sizeof() array sizes still read as 6.10+', () => {
    expect(describeLayout(schema('6.18', 'udp_fail_queue_rcv_skb', 'udp'))).toMatchObject({ status: 'ok', layout: '6.10+' });
    expect(describeLayout(schema('6.18', 'udp_fail_queue_rcv_skb', 'udp')).detail).toMatch(/dport/);
    const old = describeLayout(schema('6.9', 'udp_fail_queue_rcv_skb', 'udp'));
    expect(old).toMatchObject({ status: 'ok', layout: 'before 6.10' });
    expect(old.detail).toMatch(/lport/);
    expect(describeLayout(schema('6.1', 'udp_fail_queue_rcv_skb.sizeof-arrays', 'udp')).layout).toBe('6.10+');
  });

  it('kfree_skb: rx_sk since 6.11, reason since 5.17, neither before', () => {
    const now = describeLayout(schema('6.18', 'kfree_skb', 'skb'));
    expect(now).toMatchObject({ status: 'ok', layout: '6.11+' });
    expect(now.detail).toMatch(/rx_sk/);
    expect(now.detail).toMatch(/\d+ drop reasons/);
    const mid = describeLayout(schema('6.1', 'kfree_skb', 'skb'));
    expect(mid).toMatchObject({ status: 'ok', layout: '5.17-6.10' });
    expect(mid.detail).toMatch(/no rx_sk/);
    const old = describeLayout(schema('5.16', 'kfree_skb', 'skb'));
    expect(old).toMatchObject({ status: 'warn', layout: 'before 5.17' });
    expect(old.hint).toMatch(/5\.17/);
    // 5.15.58+: the reason field, 13 names, none a socket receive drop
    const s515 = describeLayout(schema('5.15', 'kfree_skb', 'skb'));
    expect(s515).toMatchObject({ status: 'ok', layout: '5.17-6.10' });
    expect(s515.detail).toMatch(/13 drop reasons.*no SOCKET_RCVBUFF or PROTO_MEM/);
    expect(mid.detail).not.toMatch(/no SOCKET_RCVBUFF/);
  });

  it('sock_exceed_buf_limit: kind since 4.19, sysctl_mem an array since 5.19', () => {
    expect(describeLayout(schema('4.18', 'sock_exceed_buf_limit', 'sock')).layout).toBe('before 4.19');
    const p = describeLayout(schema('4.19.222', 'sock_exceed_buf_limit', 'sock'));
    expect(p.layout).toBe('4.19+');
    expect(p.detail).toMatch(/pointer/);
    // the 2022 stable backport: 5.15.89 has the array, like 5.19+
    expect(describeLayout(schema('5.15', 'sock_exceed_buf_limit', 'sock')).detail).toMatch(/long\[3\] \(5\.19\+, and stable kernels/);
    const a = describeLayout(schema('6.18', 'sock_exceed_buf_limit', 'sock'));
    expect(a.detail).toMatch(/long\[3\]/);
    expect(a.detail).toMatch(/SK_MEM_RECV/);
  });

  it('an unknown udp layout is a warning, with a hint', () => {
    const s = schema('6.18', 'udp_fail_queue_rcv_skb', 'udp');
    const odd = { ...s, fields: s.fields.filter((f) => f.name !== 'dport' && f.name !== 'daddr') };
    expect(describeLayout(odd)).toMatchObject({ status: 'warn', layout: 'unknown' });
  });
});

const check = (c: Partial<DoctorCheck> & { status: DoctorCheck['status'] }): DoctorCheck => ({ check: 'x', detail: 'd', ...c });

describe('doctorExitCode', () => {
  it('0 when nothing failed, warnings included', () => {
    expect(doctorExitCode([check({ status: 'ok' }), check({ status: 'warn' }), check({ status: 'info' })])).toBe(EXIT.OK);
  });
  it('77 when any failure is a permission, even after others', () => {
    expect(doctorExitCode([check({ status: 'fail', code: 'ENOTRACEFS' }), check({ status: 'fail', code: 'EACCES' }), check({ status: 'fail', code: 'EMEMLOCK' })])).toBe(EXIT.NOPERM);
    expect(doctorExitCode([check({ status: 'fail', code: 'EPERM' })])).toBe(EXIT.NOPERM);
  });
  it('69 for tracing unavailable (no tracefs, no tracepoint, bad format or /proc layout, no addon), before 71', () => {
    expect(doctorExitCode([check({ status: 'fail', code: 'EMEMLOCK' }), check({ status: 'fail', code: 'ENOTRACEFS' })])).toBe(EXIT.UNAVAILABLE);
    for (const code of ['ENOTRACEPOINT', 'EFORMAT', 'EPARSE', 'ENOADDON', undefined]) expect(doctorExitCode([check({ status: 'fail', code })])).toBe(EXIT.UNAVAILABLE);
  });
  it('71 for the locked-memory limit alone', () => {
    expect(doctorExitCode([check({ status: 'ok' }), check({ status: 'fail', code: 'EMEMLOCK' })])).toBe(EXIT.OSERR);
  });
});

describe('doctorTable', () => {
  it('a header, one line per check with its hint on the same line, and a count', () => {
    const lines = doctorTable([
      { check: 'tracefs', status: 'ok', detail: 'mounted at /sys/kernel/tracing' },
      { check: 'perf_event_open', status: 'fail', detail: 'denied (EACCES)', hint: 'run as root' },
    ]);
    expect(lines[0]).toMatch(/^STATUS\s+CHECK\s+DETAIL$/);
    expect(lines[1]).toMatch(/^ok\s+tracefs\s+mounted at \/sys\/kernel\/tracing$/);
    expect(lines[2]).toMatch(/^fail\s+perf_event_open\s+denied \(EACCES\) → run as root$/);
    // Columns line up: every DETAIL starts at the same offset.
    expect(lines[1].indexOf('mounted')).toBe(lines[2].indexOf('denied'));
    expect(lines[lines.length - 1]).toBe('2 checks: 1 ok, 0 warn, 1 fail, 0 info');
  });
});

describe('runDoctor over fixture tracefs trees (perf: false)', () => {
  let onlyKfree: string;
  let noEvents: string;
  beforeAll(() => {
    onlyKfree = mkdtempSync(join(tmpdir(), 'rxt-doctor-'));
    cpSync(join(TREES, '6.18-no-exceed', 'events', 'skb'), join(onlyKfree, 'events', 'skb'), { recursive: true });
    noEvents = mkdtempSync(join(tmpdir(), 'rxt-doctor-empty-'));
  });
  afterAll(() => {
    rmSync(onlyKfree, { recursive: true, force: true });
    rmSync(noEvents, { recursive: true, force: true });
  });

  const run = (root: string) => runDoctor({ tracefs: { root }, perf: false, notice: () => undefined });
  const byName = (checks: DoctorCheck[], name: string): DoctorCheck => {
    const c = checks.find((x) => x.check === name);
    if (!c) throw new Error(`no check ${name} in ${checks.map((x) => x.check).join(', ')}`);
    return c;
  };

  it('a pre-6.10 kernel: lport layout, kfree_skb without rx_sk, so pointer attribution is impossible', async () => {
    const checks = await run(join(TREES, '6.9'));
    expect(byName(checks, 'tracefs')).toMatchObject({ status: 'ok', data: { mounted: 'override' } });
    const udp = byName(checks, 'tracepoint udp:udp_fail_queue_rcv_skb');
    expect(udp).toMatchObject({ status: 'ok', data: { layout: 'before 6.10', portField: 'lport', present: true } });
    expect(byName(checks, 'tracepoint skb:kfree_skb').data).toMatchObject({ present: true });
    const ptr = byName(checks, 'pointer attribution');
    expect(ptr.status).toBe('info');
    expect(ptr.detail).toMatch(/no rx_sk/);
    expect(byName(checks, 'perf_event_open').status).toBe('info');
    // Every check has the four fields, and nothing undefined is left in the objects.
    for (const c of checks) {
      expect(['ok', 'warn', 'fail', 'info']).toContain(c.status);
      expect(typeof c.detail).toBe('string');
      for (const v of Object.values(c)) expect(v).not.toBeUndefined();
      if (c.status === 'fail') expect(c.hint, c.check).toBeTruthy();
    }
  });

  it('a tracepoint missing: a warning naming it, the others still checked, and no tracepoint check fails', async () => {
    const checks = await run(join(TREES, '6.18-no-exceed'));
    const missing = byName(checks, 'tracepoint sock:sock_exceed_buf_limit');
    expect(missing).toMatchObject({ status: 'warn', data: { present: false } });
    expect(missing.hint).toMatch(/traces the other tracepoints/);
    expect(byName(checks, 'tracepoint udp:udp_fail_queue_rcv_skb')).toMatchObject({ status: 'ok', data: { layout: '6.10+', portField: 'dport' } });
    const tp = checks.filter((c) => c.check.startsWith('tracepoint '));
    expect(tp.every((c) => c.status !== 'fail')).toBe(true);
  });

  it('a truncated format file: that tracepoint fails with EFORMAT (exit 69)', async () => {
    const checks = await run(join(TREES, '6.18-truncated'));
    const udp = byName(checks, 'tracepoint udp:udp_fail_queue_rcv_skb');
    expect(udp).toMatchObject({ status: 'fail', code: 'EFORMAT' });
    expect(udp.hint).toMatch(/malformed or truncated/);
    expect(doctorExitCode([udp])).toBe(EXIT.UNAVAILABLE);
  });

  it('an id file that is not a tracepoint id: that tracepoint fails with EFORMAT, naming the id file', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'rxt-doctor-badid-'));
    try {
      cpSync(join(TREES, '6.18-no-exceed'), tree, { recursive: true });
      writeFileSync(join(tree, 'events', 'sock', 'sock_rcvqueue_full', 'id'), 'not-a-number\n');
      const c = byName(await run(tree), 'tracepoint sock:sock_rcvqueue_full');
      expect(c).toMatchObject({ status: 'fail', code: 'EFORMAT' });
      expect(c.detail).toMatch(/sock_rcvqueue_full\/id is not a tracepoint id/);
      expect(c.hint).toMatch(/damaged or not a tracefs/);
      expect(c.hint).not.toMatch(/rxtrace doctor/);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });

  it('none of the default tracepoints: each fails with ENOTRACEPOINT, as trace would exit 69', async () => {
    const checks = await run(onlyKfree);
    for (const name of DEFAULT_EVENTS) expect(byName(checks, `tracepoint ${name}`)).toMatchObject({ status: 'fail', code: 'ENOTRACEPOINT' });
    expect(byName(checks, 'tracepoint skb:kfree_skb').status).toBe('ok');
    expect(doctorExitCode(checks.filter((c) => c.check.startsWith('tracepoint ')))).toBe(EXIT.UNAVAILABLE);
  });

  it('a root that is not a tracefs: the tracefs check fails, tracepoints are "not checked"', async () => {
    const checks = await run(noEvents);
    expect(byName(checks, 'tracefs')).toMatchObject({ status: 'fail', code: 'ENOTRACEFS' });
    for (const name of [...DEFAULT_EVENTS, 'skb:kfree_skb']) {
      const c = byName(checks, `tracepoint ${name}`);
      expect(c.status).toBe('info');
      expect(c.detail).toMatch(/not checked/);
    }
  });
});
