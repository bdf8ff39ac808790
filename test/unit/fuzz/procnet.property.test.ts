// Property tests of every /proc and /sys parser rxtrace has (src/procnet, src/cpus.ts) and of the
// other text it takes in (ss -e output, --listen, addr:port): random text, truncations and
// mutations of real files (test/fixtures/procnet), generated tables that must round-trip, and an
// owner scan over a fake /proc whose processes vanish or deny access at random. The only allowed
// failure is a typed error: ProcParseError for the table parsers, RxtraceError for the rest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCpuList } from '../../../src/cpus.js';
import { parseSsSkmem } from '../../../src/counters/rcvbuf.js';
import { RxtraceError } from '../../../src/errors.js';
import { parseListen } from '../../../src/metrics/server.js';
import { decodeProcEndpoint, encodeProcEndpoint, parseSockaddr } from '../../../src/procnet/addr.js';
import { ProcParseError } from '../../../src/procnet/errors.js';
import { parseNetDev } from '../../../src/procnet/netdev.js';
import { netnsInodeFromLink, scanSocketOwners, socketInodeFromLink, type OwnerScanFs } from '../../../src/procnet/owners.js';
import { parseSnmp, parseSnmp6 } from '../../../src/procnet/snmp.js';
import { parseSocketTable, type SocketTable } from '../../../src/procnet/sockets.js';
import { parseMemLimits, parseSockstat } from '../../../src/procnet/sockstat.js';
import { parseSoftnetStat } from '../../../src/procnet/softnet.js';
import { parseStatValue } from '../../../src/procnet/sysfs-stats.js';
import { anyText, check, mutate, mutation } from './fuzz-runs.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/procnet/', import.meta.url));
const fx = (name: string): string => readFileSync(join(FIXTURES, name), 'latin1');

const TOKENS = [
  ' ', ' ', '  ', '\n', ':', 'sl', '0:', '13893:', '0100007F:1388', '00000000:0000', '00000000000000000000000001000000:1389', '07',
  '00000000:00000680', '00:00000000', '00000000', '0', '7674', '2', '000000003fce0fa8', '48', '-1', 'Udp:', 'Ip:', 'InErrors',
  'Udp6InErrors', 'eth0:', 'lo:', '|', 'UDP:', 'inuse', 'mem', 'ffffffff', '99999999999999999999999', '1e3', '0x10', '\t', '__proto__',
  'constructor', 'NaN', 'Infinity', '-0',
];
const ALPHABET = ' \n\t:-.|[]0129afAFxg\u0000é';

/** Every number in a parsed value is finite, and no key came from the prototype chain. */
function assertSane(v: unknown, depth = 0): void {
  if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);
  else if (v !== null && typeof v === 'object' && depth < 8) {
    for (const [k, x] of Object.entries(v)) {
      expect(typeof k).toBe('string');
      assertSane(x, depth + 1);
    }
  }
}

function typed<T>(parse: () => T, allowed: (e: unknown) => boolean): T | undefined {
  try {
    const v = parse();
    assertSane(v);
    return v;
  } catch (e) {
    if (allowed(e)) return undefined;
    throw e;
  }
}

const isProcParse = (e: unknown): boolean => e instanceof ProcParseError;
const isTyped = (e: unknown): boolean => e instanceof RxtraceError;

const table = (t: SocketTable, files: string[], endian: 'LE' | 'BE' = 'LE') => ({
  name: `/proc/net/${t}${endian === 'BE' ? ' (big-endian)' : ''}`,
  samples: files.map(fx),
  parse: (s: string) => parseSocketTable(s, t, { endian }),
});

const PARSERS: { name: string; samples: string[]; parse: (text: string) => unknown }[] = [
  table('udp', ['udp-6.18.txt', 'udp-no-drops.txt', 'udp-extra-columns.txt']),
  table('udp6', ['udp6-6.18.txt']),
  table('udp6', ['udp6-be.txt'], 'BE'),
  table('raw', ['raw-6.18.txt']),
  table('raw6', ['raw6-6.18.txt']),
  table('icmp', ['icmp-6.18.txt']),
  table('icmp6', ['icmp6-6.18.txt']),
  { name: '/proc/net/snmp', samples: ['snmp-6.18.txt', 'snmp-5.10.txt'].map(fx), parse: (s) => parseSnmp(s) },
  { name: '/proc/net/snmp6', samples: [fx('snmp6-6.18.txt')], parse: (s) => parseSnmp6(s) },
  { name: '/proc/net/softnet_stat', samples: ['softnet_stat-6.18.txt', 'softnet_stat-13col.txt', 'softnet_stat-11col.txt'].map(fx), parse: (s) => parseSoftnetStat(s) },
  { name: '/proc/net/dev', samples: ['dev-6.18.txt', 'dev-joined.txt'].map(fx), parse: (s) => parseNetDev(s) },
  { name: '/proc/net/sockstat', samples: ['sockstat-6.18.txt', 'sockstat6-6.18.txt'].map(fx), parse: (s) => parseSockstat(s) },
  { name: '/proc/sys/net/ipv4/udp_mem', samples: ['575799\t767733\t1151598\n'], parse: (s) => parseMemLimits(s) },
  { name: '/sys/class/net/*/statistics/*', samples: ['123\n', '0\n'], parse: (s) => parseStatValue(s) },
];

describe.each(PARSERS)('$name parser (fuzz)', ({ name, samples, parse }) => {
  const run = (text: string) => typed(() => parse(text), isProcParse);

  it('parses its samples', () => {
    for (const s of samples) expect(run(s)).toBeDefined();
  });

  it('random text: a value or ProcParseError', () => {
    check(`${name}: random text`, anyText(TOKENS), (t) => void run(t));
  });

  it('truncated samples: a value or ProcParseError', () => {
    check(`${name}: truncation`, fc.tuple(fc.constantFrom(...samples), fc.nat()), ([s, at]) => void run(s.slice(0, at % (s.length + 1))));
  });

  it('mutated samples: a value or ProcParseError', () => {
    check(`${name}: mutations`, fc.tuple(fc.constantFrom(...samples), fc.array(mutation(ALPHABET), { minLength: 1, maxLength: 6 })), ([s, ms]) =>
      void run(ms.reduce(mutate, s)),
    );
  });
});

describe('socket tables round-trip (fuzz)', () => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
  const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
  const row = (v6: boolean) =>
    fc.record({
      local: fc.record({ addr: v6 ? ipv6 : ipv4, port: fc.nat(0xffff) }),
      remote: fc.record({ addr: v6 ? ipv6 : ipv4, port: fc.nat(0xffff) }),
      st: fc.constantFrom(1, 7),
      tx: fc.nat(0xffffffff),
      rx: fc.nat(0xffffffff),
      uid: fc.nat(2 ** 31),
      inode: fc.nat(2 ** 40),
      ref: fc.nat(1000),
      pointer: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((p) => p.toString(16).padStart(16, '0')),
      drops: fc.nat(2 ** 40),
    });
  for (const [t, v6] of [['udp', false], ['udp6', true]] as const) {
    for (const endian of ['LE', 'BE'] as const) {
      it(`${t} (${endian}): what the kernel would print parses back to the same rows`, () => {
        check(`/proc/net/${t} ${endian}: round-trip`, fc.array(row(v6), { maxLength: 8 }), (rows) => {
          const hex = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, '0');
          const lines = rows.map(
            (r, i) =>
              `${String(i).padStart(5)}: ${encodeProcEndpoint(r.local, endian)} ${encodeProcEndpoint(r.remote, endian)} ${hex(r.st, 2)} ${hex(r.tx, 8)}:${hex(r.rx, 8)} 00:00000000 00000000 ${String(r.uid).padStart(5)}        0 ${r.inode} ${r.ref} ${r.pointer} ${r.drops}`,
          );
          const text = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n${lines.join('\n')}\n`;
          const parsed = parseSocketTable(text, t, { endian });
          expect(parsed.map((p) => [p.local.port, p.remote.port, p.state, p.tx_queue, p.rx_queue, p.uid, p.inode, p.ref, p.pointer, p.drops])).toEqual(
            rows.map((r) => [r.local.port, r.remote.port, r.st, r.tx, r.rx, r.uid, r.inode, r.ref, r.pointer, r.drops]),
          );
          expect(parsed.map((p) => p.local.addr)).toEqual(rows.map((r) => decodeProcEndpoint(encodeProcEndpoint(r.local, endian), endian).addr));
        });
      });
    }
  }
});

describe('small parsers (fuzz)', () => {
  it('proc addresses (ADDR:PORT hex): an endpoint or ProcParseError', () => {
    check('proc endpoint', anyText(['0100007F', ':', '1388', '00000000000000000000000001000000', 'G', 'ffff', '']), (t) => void typed(() => decodeProcEndpoint(t), isProcParse));
  });

  it('fd and namespace links: a number or undefined, never a throw', () => {
    check('proc links', anyText(['socket:[', 'net:[', ']', '123', '4026531840', 'pipe:[', 'anon_inode:[perf_event]', '99999999999999999999']), (t) => {
      for (const v of [socketInodeFromLink(t), netnsInodeFromLink(t)]) if (v !== undefined) expect(Number.isInteger(v) && v >= 0).toBe(true);
    });
  });

  it('/sys/devices/system/cpu/online (cpu lists): the cpus or a typed error', () => {
    check('cpu list', anyText(['0', '1', '-', ',', '3', '63', '\n', ' ', '4095', 'a']), (t) => {
      const cpus = typed(() => parseCpuList(t), isTyped);
      if (cpus) for (const c of cpus) expect(Number.isSafeInteger(c) && c >= 0).toBe(true);
    });
  });

  it('`ss -uwamne` output (sk_rcvbuf): a map, never a throw', () => {
    check('ss skmem', anyText(['UNCONN', ' 0 ', '127.0.0.1:5000', ' ino:', '1234', ' skmem:(', 'r0,rb212992,t0,tb212992,f4096,w0,o0,bl0,d7', ')', '\n', '\t', 'sk:1']), (t) => {
      const m = parseSsSkmem(t);
      for (const [ino, v] of m) {
        expect(Number.isSafeInteger(ino)).toBe(true);
        assertSane(v);
      }
    });
  });

  it('addr:port text and --listen: a value or RxtraceError', () => {
    check('addr:port and --listen', anyText(['127.0.0.1', '[', ']', '::1', ':', '9469', '0.0.0.0', 'localhost', '99999', '::ffff:1.2.3.4', '%lo', ' ']), (t) => {
      typed(() => parseSockaddr(t), isTyped);
      typed(() => parseListen(t), isTyped);
    });
  });
});

describe('owner scan over a fake /proc (fuzz)', () => {
  type Outcome = { ok: string } | { err: string };
  const outcome = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('socket:[1000]', 'socket:[1001]', 'net:[4026531840]', 'net:[4026532000]', 'pipe:[5]', '/dev/null', 'anon_inode:[eventfd]', 'socket:[x]', '').map((ok) => ({ ok })) },
    { weight: 2, arbitrary: fc.constantFrom('ENOENT', 'ESRCH', 'EACCES', 'EPERM').map((err) => ({ err })) },
    { weight: 1, arbitrary: fc.constantFrom('EIO', 'EMFILE', 'ENOTDIR', 'EINVAL').map((err) => ({ err })) },
  );
  const fakeProc = fc.record({
    pids: fc.array(fc.constantFrom('1', '42', '4242', '4194304', 'self', 'net', '0', '00042'), { maxLength: 6 }),
    fds: fc.array(fc.constantFrom('0', '1', '2', '3', '10'), { maxLength: 5 }),
    outcomes: fc.array(outcome, { minLength: 1, maxLength: 40 }),
  });

  it('a result with sane counts, or an RxtraceError for errnos other than vanished/denied; never another error', async () => {
    const cases: { pids: string[]; fds: string[]; outcomes: Outcome[] }[] = [];
    check('owner scan', fakeProc, (p) => void cases.push(p));
    for (const p of cases) {
      let i = 0;
      const next = (): Outcome => p.outcomes[i++ % p.outcomes.length];
      const fail = (code: string): never => {
        throw Object.assign(new Error(`${code}: fake`), { code });
      };
      const io: OwnerScanFs = {
        readdirSync: (path) => {
          if (path === '/fakeproc') return p.pids;
          const o = next();
          return 'err' in o ? fail(o.err) : p.fds;
        },
        readlinkSync: () => {
          const o = next();
          return 'err' in o ? fail(o.err) : o.ok;
        },
        readFileSync: () => {
          const o = next();
          return 'err' in o ? fail(o.err) : 'comm\n';
        },
      };
      const res = await scanSocketOwners('/fakeproc', { fs: io, sliceMs: 1000 }).catch((e: unknown) => ({ error: e }));
      if ('error' in res) {
        expect(res.error, String(res.error)).toBeInstanceOf(RxtraceError);
        continue;
      }
      const r = res;
      expect(r.skipped.vanished + r.skipped.denied).toBeLessThanOrEqual(p.pids.length);
      for (const [inode, owners] of r.byInode) {
        expect([1000, 1001]).toContain(inode);
        for (const o of owners) expect(Number.isSafeInteger(o.pid)).toBe(true);
      }
    }
  });
});
