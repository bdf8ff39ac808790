// Which bytes make two samples "the same drop" when the reader thread counts instead of copying
// (TracerOptions.aggregate): every payload field but those that change from packet to packet
// without telling one socket from another. What is left out keeps the first sample's value.
import type { EventSchema } from '../format/schema.js';

const VARYING: Readonly<Record<string, readonly string[]>> = {
  // Per packet: the skb's own address. rx_sk, protocol, reason and the drop site stay in the key.
  'skb:kfree_skb': ['skbaddr'],
  // Queue figures at the moment of the drop; sk_rcvbuf (the socket's setting) stays.
  'sock:sock_rcvqueue_full': ['rmem_alloc', 'truesize'],
  // Global memory figures; the protocol (name) and direction (kind) stay.
  'sock:sock_exceed_buf_limit': ['sysctl_mem', 'allocated', 'sysctl_rmem', 'rmem_alloc', 'sysctl_wmem', 'wmem_alloc', 'wmem_queued'],
};

/**
 * [offset, length] ranges of the raw data to aggregate `schema`'s samples on, or undefined when
 * its samples must be copied one by one: a __data_loc field's text lies outside the fixed
 * fields, where a key of fixed ranges cannot see it.
 */
export function aggregateKey(schema: EventSchema): [number, number][] | undefined {
  if (schema.fields.some((f) => f.dynamic)) return undefined;
  const varying = VARYING[`${schema.system}:${schema.name}`] ?? [];
  return schema.fields.filter((f) => !f.common && f.size > 0 && !varying.includes(f.name)).map((f) => [f.offset, f.size]);
}
