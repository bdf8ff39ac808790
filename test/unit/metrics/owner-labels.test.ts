// serve --labels unit,container,pod: the option, the values, and that they split series.
import { describe, expect, it } from 'vitest';
import type { CounterSnapshot } from '../../../src/counters/snapshot.js';
import type { DropEvent } from '../../../src/decode/events.js';
import { dropKeyOf } from '../../../src/metrics/drops.js';
import { selectSockets } from '../../../src/metrics/families.js';
import { labelsOption, ownerLabelValues } from '../../../src/metrics/owner-labels.js';
import { keyId } from '../../../src/metrics/top-n.js';

const A = 'ab'.repeat(32);
const feed = { pid: 1, comm: 'feed', cgroup: `/system.slice/docker-${A}.scope`, unit: `docker-${A}.scope`, container: A };
const named = { pid: 2, comm: 'named', cgroup: '/system.slice/named.service', unit: 'named.service' };

describe('serve --labels', () => {
  it('parses, dedupes, and refuses other names in one line', () => {
    expect(labelsOption('unit,container')).toEqual(['unit', 'container']);
    expect(labelsOption('pod', ['unit'])).toEqual(['unit', 'pod']);
    expect(labelsOption('unit,unit')).toEqual(['unit']);
    expect(() => labelsOption('unit,cgroup')).toThrow('--labels takes unit, container, pod (comma-separated), got "cgroup"');
  });

  it('values: sorted, unique, comma-joined; a container as its short id; "" when none', () => {
    expect(ownerLabelValues([named, feed], ['unit', 'container', 'pod'])).toEqual({ unit: `docker-${A}.scope,named.service`, container: A.slice(0, 12), pod: '' });
    expect(ownerLabelValues([], ['unit'])).toEqual({ unit: '' });
  });

  it('drop keys carry the labels only when asked, and two containers are two keys', () => {
    const ev = (owners: (typeof feed | typeof named)[]) =>
      ({ event: 'udp:udp_fail_queue_rcv_skb', fields: {}, match: 'address', socket: { table: 'udp', local: '127.0.0.1:5000', owners } }) as unknown as DropEvent;
    expect(dropKeyOf(ev([feed]))).toEqual({ event: 'udp:udp_fail_queue_rcv_skb', table: 'udp', local: '127.0.0.1:5000', comm: 'feed' });
    const k1 = dropKeyOf(ev([feed]), ['container']);
    const k2 = dropKeyOf(ev([{ ...feed, container: 'cd'.repeat(32) }]), ['container']);
    expect(k1.container).toBe(A.slice(0, 12));
    expect(keyId(k1)).not.toBe(keyId(k2));
  });

  it('socket series split by the labels', () => {
    const row = (inode: number, owners: object[], drops: number) => ({ table: 'udp', inode, local: '0.0.0.0:53', remote: '0.0.0.0:0', rx_queue: 0, tx_queue: 0, drops, netns: 1, state: 7, uid: 0, owners });
    const snap = { sockets: new Map([[1, row(1, [feed], 5)], [2, row(2, [{ ...feed, pid: 3, container: 'cd'.repeat(32) }], 7)]]) } as unknown as CounterSnapshot;
    expect(selectSockets(snap, 10).map((g) => g.drops)).toEqual([12]);
    expect(selectSockets(snap, 10, ['container']).map((g) => [g.owner, g.drops]).sort((a, b) => (a[1] as number) - (b[1] as number))).toEqual([
      [{ container: A.slice(0, 12) }, 5],
      [{ container: 'cd'.repeat(6) }, 7],
    ]);
  });
});
