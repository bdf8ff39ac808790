// What judging one kind of drop event needs: which tables, which local port (a scoped read
// will do) and the key the strategies match on. Worked out once per distinct payload.
import type { SocketTable } from '../procnet/sockets.js';
import { NEED_POINTERS, type TableRead } from './history.js';
import { ALL_TABLES, RCVQUEUE_TABLES, udpKey, type UdpKey, type Verdict } from './strategies.js';

/** What judging one distinct event payload needs; shared by every event with that payload. */
export interface Need {
  kind: 'udp' | 'rcvqueue' | 'kfree' | 'global' | 'other';
  tables: readonly SocketTable[];
  /** The local port the need is about (a scoped read will do), -1 for every socket of `tables`, NEED_POINTERS for /proc rows. */
  port: number;
  key?: UdpKey;
  rxSk?: string;
  /** The last verdict, and the reads it was judged between (a pure function of the three). */
  memo?: { before?: TableRead; after?: TableRead; verdict: Verdict };
}

const NO_TABLES: readonly SocketTable[] = [];

export function makeNeed(realPointers: boolean, event: string, fields: Record<string, unknown>): Need {
  switch (event) {
    case 'udp:udp_fail_queue_rcv_skb': {
      const key = udpKey(fields);
      return { kind: 'udp', tables: key?.tables ?? NO_TABLES, key, port: key?.port ?? -1 };
    }
    case 'sock:sock_rcvqueue_full':
      return { kind: 'rcvqueue', tables: RCVQUEUE_TABLES, port: -1 };
    case 'sock:sock_exceed_buf_limit':
      return { kind: 'global', tables: NO_TABLES, port: -1 };
    case 'skb:kfree_skb': {
      // Only a real pointer identifies the socket: kfree_skb carries no address, and "whose drops
      // rose" would be a guess here (TCP drops, whose sockets we do not list, share the reasons).
      const rxSk = typeof fields.rx_sk === 'string' ? fields.rx_sk : undefined;
      return { kind: 'kfree', tables: realPointers && !isNullPointer(fields.rx_sk) ? ALL_TABLES : NO_TABLES, rxSk, port: NEED_POINTERS };
    }
    default:
      return { kind: 'other', tables: NO_TABLES, port: -1 };
  }
}

function isNullPointer(v: unknown): boolean {
  return v === undefined || v === null || v === '0x0' || v === 0;
}
