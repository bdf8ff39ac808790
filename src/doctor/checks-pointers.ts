// doctor's checks of kfree_skb's socket pointers: kptr_restrict and whether the pointers in
// the event can be matched against /proc's socket tables.
import dgram from 'node:dgram';
import { payloadFields, type EventSchema } from '../format/schema.js';
import { readSysctlNumber } from '../procnet/sysctl.js';
import { parseSocketTable, SOCKET_TABLES, type SocketRow } from '../procnet/sockets.js';
import { type DoctorCheck } from './types.js';
import { CAP, classifyPointer, hasCap, type PointerKind } from './facts.js';
import { read, type HostFacts } from './context.js';

export function kptrCheck(): { check: DoctorCheck; value?: number } {
  const value = readSysctlNumber('kernel.kptr_restrict');
  if (value === undefined) return { check: { check: 'kptr_restrict', status: 'warn', detail: 'cannot read /proc/sys/kernel/kptr_restrict' } };
  const meaning =
    value === 0
      ? 'kernel pointers in /proc are printed hashed'
      : value === 1
        ? 'kernel pointers in /proc are printed as real addresses to readers with CAP_SYSLOG, as zeros to others'
        : 'kernel pointers in /proc are printed as zeros to everyone';
  return { value, check: { check: 'kptr_restrict', status: 'info', detail: `kernel.kptr_restrict = ${value}: ${meaning}; rxtrace only reads it`, data: { value } } };
}

/** The `pointer` column of our own sockets, or of a UDP socket made for the purpose. */
async function samplePointer(): Promise<{ kind: PointerKind; from: string } | undefined> {
  for (const table of SOCKET_TABLES) {
    const r = read(`/proc/net/${table}`);
    if (!('text' in r)) continue;
    let rows: SocketRow[];
    try {
      rows = parseSocketTable(r.text, table);
    } catch {
      continue;
    }
    if (rows.length > 0) return { kind: classifyPointer(rows[0].pointer), from: `/proc/net/${table}` };
  }
  // No socket at all in this netns: bind one on loopback for a moment and read its row.
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve());
    });
    const port = sock.address().port;
    const r = read('/proc/net/udp');
    if (!('text' in r)) return undefined;
    const row = parseSocketTable(r.text, 'udp').find((x) => x.local.port === port);
    return row ? { kind: classifyPointer(row.pointer), from: 'a UDP socket bound to 127.0.0.1 for this check' } : undefined;
  } catch {
    return undefined;
  } finally {
    sock.close();
  }
}

export async function pointerCheck(host: HostFacts, kptr: number | undefined, kfree: EventSchema | undefined | null): Promise<DoctorCheck> {
  const check = 'pointer attribution';
  const rxSk = kfree ? payloadFields(kfree).some((f) => f.name === 'rx_sk') : undefined;
  const sample = await samplePointer();
  const data = { rxSk: rxSk ?? null, pointerColumn: sample?.kind ?? null };
  const enable = `to allow it: sysctl -w kernel.kptr_restrict=1, and run rxtrace as root; it is a system-wide security setting (kernel addresses become visible to CAP_SYSLOG holders), so rxtrace never changes it; sysctl -w kernel.kptr_restrict=${kptr ?? 0} puts it back`;
  if (kfree === null || rxSk === false) {
    return {
      check,
      status: 'info',
      detail: `not possible: ${kfree === null ? 'this kernel has no skb:kfree_skb' : "this kernel's skb:kfree_skb has no rx_sk (Linux 6.11+)"}; the default tracepoints are matched by address and by drops, which need no pointers`,
      data,
    };
  }
  const column =
    sample === undefined
      ? 'the pointer column could not be sampled'
      : `the pointer column ${
          sample.kind === 'address'
            ? 'shows real socket addresses'
            : sample.kind === 'hashed'
              ? 'is hashed'
              : sample.kind === 'zero'
                ? 'shows zeros'
                : 'cannot be told apart from hashes'
        } (sampled from ${sample.from}${kptr !== undefined ? `; kptr_restrict ${kptr}` : ''}${host.creds && !hasCap(host.creds, CAP.SYSLOG) ? ', no CAP_SYSLOG' : ''})`;
  const prefix = rxSk === undefined ? 'skb:kfree_skb not checked; ' : 'skb:kfree_skb has rx_sk, but ';
  if (sample?.kind === 'address') {
    const has = rxSk === undefined ? 'skb:kfree_skb not checked; ' : 'skb:kfree_skb has rx_sk and ';
    return { check, status: rxSk ? 'ok' : 'info', detail: `${has}${column}: -e skb:kfree_skb drops are matched to sockets exactly ("pointer")`, data };
  }
  let hint: string | undefined;
  if (sample?.kind === 'zero' && kptr === 1) hint = 'kptr_restrict is 1 but this process lacks CAP_SYSLOG: run rxtrace as root';
  else if (sample?.kind === 'hashed' || sample?.kind === 'zero') hint = enable;
  return {
    check,
    status: 'info',
    detail: `${prefix}${column}, so rx_sk matches no socket: -e skb:kfree_skb drops are "none"; the default tracepoints need no pointers`,
    hint,
    data,
  };
}
