// What the running kernel's tracepoints can show, read from their tracefs `format` files through
// the product's own parser (src/format, src/tracefs), so that a live test asserts what THIS
// kernel's layout shows (6.1: lport, no addresses; 6.18: dport, family, saddr/daddr, rx_sk).
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { expect, it } from 'vitest';
import { parseFormat, payloadFields, type EventSchema } from '../../src/format/index.js';
import { listEvents, readEventFiles } from '../../src/tracefs/events.js';
import { withTracefs } from '../../src/tracefs/locate.js';
import { liveSkipReason } from './live.js';

const UDP = 'udp:udp_fail_queue_rcv_skb';
const KFREE = 'skb:kfree_skb';

export interface UdpLayout {
  /** The local-port field: `dport` since 6.10, `lport` before. */
  portField: 'dport' | 'lport';
  /** `saddr`/`daddr` (a sockaddr each, since 6.10). */
  addresses: boolean;
  /** `family` (the socket's, since 6.10). */
  family: boolean;
  /** `sport` (the sender's port, since 6.10). */
  sport: boolean;
  fields: string[];
}

export interface KfreeLayout {
  present: boolean;
  /** The receiving socket's address (6.11+). */
  rxSk: boolean;
  /** A drop reason (5.17+), with this kernel's numbering from `print fmt`. */
  reason: boolean;
  reasons: Map<string, number>;
  fields: string[];
}

/** A requirement a test case has of the kernel, and why it is (not) met, for the test's name. */
export interface Requirement {
  ok: boolean;
  why: string;
}

export interface KernelLayout {
  /** `uname -r`. */
  release: string;
  major: number;
  minor: number;
  /** false when the format files could not be read (not root: live tests skip then anyway). */
  read: boolean;
  udp: UdpLayout;
  kfreeSkb: KfreeLayout;
  /**
   * IPv6 UDP drops fire udp_fail_queue_rcv_skb: the udpv6 call site came in 6.5 (commit
   * "udp6: add a missing call into udp_fail_queue_rcv_skb tracepoint"). Before it only
   * kfree_skb and the counters see them. Judged by version: probing would need a flood.
   */
  udp6Event: boolean;
  /** Every sys:name tracefs lists. */
  events: Set<string>;
  schemas: Map<string, EventSchema>;
  has(event: string): boolean;
  /** Requirements for the cases that differ between kernels, each with its reason. */
  need: {
    udpAddresses: Requirement;
    udp6Event: Requirement;
    rxSk: Requirement;
    reason: Requirement;
    event(name: string): Requirement;
  };
}

/** A requirement every kernel meets (for a case table where only some rows need more). */
export const ALWAYS: Requirement = { ok: true, why: 'every kernel' };

export function parseRelease(rel: string): { major: number; minor: number } {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : { major: 0, minor: 0 };
}

/** Build the layout from parsed schemas (a live tracefs, or fixtures in unit tests). */
export function layoutFrom(schemas: Map<string, EventSchema>, events: Iterable<string>, rel: string, read = true): KernelLayout {
  const { major, minor } = parseRelease(rel);
  const udpSchema = schemas.get(UDP);
  const udpFields = udpSchema ? payloadFields(udpSchema).map((f) => f.name) : [];
  const has = (n: string): boolean => udpFields.includes(n);
  const udp: UdpLayout = {
    portField: has('lport') && !has('dport') ? 'lport' : 'dport',
    addresses: has('saddr') && has('daddr'),
    family: has('family'),
    sport: has('sport'),
    fields: udpFields,
  };
  const kSchema = schemas.get(KFREE);
  const kFields = kSchema ? payloadFields(kSchema).map((f) => f.name) : [];
  const kfreeSkb: KfreeLayout = {
    present: kSchema !== undefined,
    rxSk: kFields.includes('rx_sk'),
    reason: kFields.includes('reason'),
    reasons: new Map([...(kSchema?.symbols.get('reason') ?? new Map<number, string>())].map(([n, name]) => [name, n])),
    fields: kFields,
  };
  const udp6Event = major > 6 || (major === 6 && minor >= 5);
  const eventSet = new Set(events);
  const where = `Linux ${rel}`;
  return {
    release: rel,
    major,
    minor,
    read,
    udp,
    kfreeSkb,
    udp6Event,
    events: eventSet,
    schemas,
    has: (e) => eventSet.has(e),
    need: {
      udpAddresses: {
        ok: udp.addresses && udp.family,
        why: `${UDP} on ${where} has ${udpFields.join(', ') || 'no fields'}: no family/saddr/daddr before 6.10`,
      },
      udp6Event: { ok: udp6Event, why: `IPv6 UDP drops fire no ${UDP} before 6.5 (${where})` },
      rxSk: { ok: kfreeSkb.rxSk, why: `${KFREE} on ${where} has ${kFields.join(', ') || 'no format'}: no rx_sk before 6.11` },
      reason: { ok: kfreeSkb.reason, why: `${KFREE} on ${where} has no reason before 5.17` },
      event: (name) => ({ ok: eventSet.has(name), why: `${where} has no tracepoint ${name}` }),
    },
  };
}

let cached: Promise<KernelLayout> | undefined;

/**
 * The running kernel's layout, read once per test process. tracefs is mounted for the read (and
 * unmounted again) the way the product does it. Without root it returns the newest layout with
 * `read: false`: the live suites skip then (or fail under CI) before any case uses it.
 */
export function kernelLayout(): Promise<KernelLayout> {
  cached ??= readLayout();
  return cached;
}

async function readLayout(): Promise<KernelLayout> {
  const rel = release();
  if (liveSkipReason()) return layoutFrom(new Map(), [], rel, false);
  return withTracefs({ notice: () => {} }, (root) => {
    const events = listEvents(root);
    const schemas = new Map<string, EventSchema>();
    for (const name of [UDP, KFREE, 'sock:sock_rcvqueue_full', 'sock:sock_exceed_buf_limit']) {
      if (!events.includes(name)) continue;
      const [system, ev] = name.split(':');
      const files = readEventFiles(root, { system, name: ev });
      schemas.set(name, parseFormat(files.format, system, `${root}/events/${system}/${ev}/format`));
    }
    return layoutFrom(schemas, events, rel);
  });
}

/** The in-kernel filter for these local ports on this kernel's udp event (`dport == P || …`). */
export function portFilter(k: KernelLayout, ports: number | number[]): string {
  return (Array.isArray(ports) ? ports : [ports]).map((p) => `${k.udp.portField} == ${p}`).join(' || ');
}

/** CLI arguments that filter the udp event on one local port, in the kernel: `--filter 'lport == P'`. */
export function portFilterArgs(k: KernelLayout, port: number): string[] {
  return ['--filter', portFilter(k, port)];
}

/** The local port of a decoded udp event on this kernel (`fields.dport` or `fields.lport`). */
export function eventPort(k: KernelLayout, fields: Record<string, unknown> | undefined): number | undefined {
  const v = fields?.[k.udp.portField];
  return typeof v === 'number' ? v : undefined;
}

/**
 * Check a decoded udp_fail_queue_rcv_skb's fields against what this kernel's layout can show:
 * since 6.10 the local port as `dport`, the socket's family and the packet's daddr (`addr:port`);
 * before, `lport` and nothing else (no address to check, and none must appear).
 */
export function expectUdpFields(
  k: KernelLayout,
  fields: Record<string, unknown> | undefined,
  want: { port: number; family?: 'AF_INET' | 'AF_INET6'; daddr?: string; saddr?: RegExp },
): void {
  expect(fields?.[k.udp.portField], `${k.udp.portField} on Linux ${k.release}`).toBe(want.port);
  if (k.udp.addresses) {
    if (want.family) expect(fields?.family).toBe(want.family);
    if (want.daddr) expect(fields?.daddr).toBe(want.daddr);
    if (want.saddr) expect(String(fields?.saddr)).toMatch(want.saddr);
  } else {
    // the pre-6.10 layout: exactly rc and lport, so nothing rxtrace prints can claim an address
    expect(Object.keys(fields ?? {}).sort(), `fields on Linux ${k.release}`).toEqual([...k.udp.fields].sort());
    expect(fields).not.toHaveProperty('daddr');
    expect(fields).not.toHaveProperty('family');
  }
}

/**
 * A case that only exists on some kernels. Where the requirement holds it is an ordinary test;
 * where it does not, the case still runs and passes only by asserting the stated reason against
 * the format files (`check`), so nothing is skipped silently and the report names the kernel.
 */
export function itOnKernel(name: string, req: Requirement, fn: () => Promise<void> | void, check?: () => void, timeout?: number): void {
  if (req.ok) {
    it(name, fn, timeout);
    return;
  }
  it(`${name} [not on this kernel: ${req.why}]`, () => {
    check?.();
    console.warn(`[rxtrace] ${name}: not on this kernel: ${req.why}`);
  });
}

/** /proc/sys/kernel/perf_event_paranoid, as a number. */
export function perfParanoid(): number {
  return Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8').trim());
}
