// test/helpers/kernel.ts over format fixtures: what each layout can show, as live tests will ask.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFormat, type EventSchema } from '../../../src/format/index.js';
import { eventPort, layoutFrom, parseRelease, portFilter } from '../../helpers/kernel.js';

const fx = (p: string): string => readFileSync(new URL(`../../fixtures/format/${p}`, import.meta.url), 'utf8');
const schemas = (entries: [string, string][]): Map<string, EventSchema> =>
  new Map(entries.map(([name, file]) => [name, parseFormat(fx(file), name.split(':')[0], file)]));

describe('kernel layout helper', () => {
  it('6.18: dport, addresses, family, rx_sk, reasons by name; IPv6 fires the udp event', () => {
    const s = schemas([['udp:udp_fail_queue_rcv_skb', '6.18/udp_fail_queue_rcv_skb.format'], ['skb:kfree_skb', '6.18/kfree_skb.format']]);
    const k = layoutFrom(s, [...s.keys()], '6.18.0-1-amd64');
    expect(k.udp).toMatchObject({ portField: 'dport', addresses: true, family: true, sport: true });
    expect(k.kfreeSkb).toMatchObject({ present: true, rxSk: true, reason: true });
    expect(k.kfreeSkb.reasons.get('SOCKET_RCVBUFF')).toBeTypeOf('number');
    expect(k.udp6Event).toBe(true);
    expect(k.need.udpAddresses.ok).toBe(true);
    expect(portFilter(k, [5000, 5001])).toBe('dport == 5000 || dport == 5001');
    expect(eventPort(k, { dport: 5000, lport: 1 })).toBe(5000);
  });

  it('6.1: lport only, no addresses, kfree_skb without rx_sk, NOT_SPECIFIED = 1; IPv6 fires no udp event', () => {
    const s = schemas([['udp:udp_fail_queue_rcv_skb', '6.9/udp_fail_queue_rcv_skb.format'], ['skb:kfree_skb', '6.1/kfree_skb.format']]);
    const k = layoutFrom(s, [...s.keys()], '6.1.0-41-amd64');
    expect(k.udp).toMatchObject({ portField: 'lport', addresses: false, family: false, fields: ['rc', 'lport'] });
    expect(k.kfreeSkb).toMatchObject({ present: true, rxSk: false, reason: true });
    expect(k.kfreeSkb.reasons.get('NOT_SPECIFIED')).toBe(1);
    expect(k.udp6Event).toBe(false);
    expect(k.need.udpAddresses).toMatchObject({ ok: false, why: expect.stringMatching(/has rc, lport: no family\/saddr\/daddr before 6\.10/) });
    expect(k.need.rxSk.ok).toBe(false);
    expect(k.need.event('sock:sock_send_length')).toMatchObject({ ok: false, why: expect.stringContaining('sock:sock_send_length') });
    expect(portFilter(k, 7)).toBe('lport == 7');
    expect(eventPort(k, { lport: 7 })).toBe(7);
  });

  // The LTS fixtures (written from each tree's headers, test/fixtures/format/README.md): what the
  // live suites would be told on those kernels. 5.15.89 has a reason but neither socket reason.
  it.each([
    ['4.19', '4.19.255', false, undefined, false],
    ['5.4', '5.4.286', false, undefined, false],
    ['5.10', '5.10.265', false, undefined, false],
    ['5.15', '5.15.89', true, undefined, false],
    ['6.6', '6.6.57', true, 16, true],
  ] as const)('%s (%s): lport only, no rx_sk, reason %s, SOCKET_RCVBUFF %s, IPv6 udp event %s', (dir, rel, reason, rcvbuff, udp6) => {
    const s = schemas([['udp:udp_fail_queue_rcv_skb', `${dir}/udp_fail_queue_rcv_skb.format`], ['skb:kfree_skb', `${dir}/kfree_skb.format`]]);
    const k = layoutFrom(s, [...s.keys()], rel);
    expect(k.udp).toMatchObject({ portField: 'lport', addresses: false, family: false, fields: ['rc', 'lport'] });
    expect(k.kfreeSkb).toMatchObject({ present: true, rxSk: false, reason });
    expect(k.kfreeSkb.reasons.get('SOCKET_RCVBUFF')).toBe(rcvbuff);
    expect(k.need.reason.ok).toBe(reason);
    expect(k.udp6Event).toBe(udp6);
    expect(portFilter(k, 7)).toBe('lport == 7');
  });

  it('release parsing: 6.4 has no IPv6 udp event, 6.5 has', () => {
    expect(parseRelease('6.1.0-41-amd64')).toEqual({ major: 6, minor: 1 });
    expect(layoutFrom(new Map(), [], '6.4.16').udp6Event).toBe(false);
    expect(layoutFrom(new Map(), [], '6.5.0').udp6Event).toBe(true);
  });
});
