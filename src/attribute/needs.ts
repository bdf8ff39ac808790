// What judging one kind of drop event needs: which tables, which local port (a scoped read
// will do) and the key the strategies match on. Worked out once per distinct payload.
import type { SocketTable } from '../procnet/sockets.js';
import type { TableRead } from './history.js';
import { kfreeNeed } from './kfree-judge.js';
import { RCVQUEUE_TABLES, udpKey, type UdpKey, type Verdict } from './strategies.js';

/** What judging one distinct event payload needs; shared by every event with that payload. */
export interface Need {
  kind: 'udp' | 'rcvqueue' | 'kfree' | 'global' | 'other';
  tables: readonly SocketTable[];
  /** The local port the need is about (a scoped read will do), -1 for every socket of `tables`, NEED_POINTERS for /proc rows. */
  port: number;
  key?: UdpKey;
  rxSk?: string;
  /** kfree_skb: the tables whose `drops` could show its socket (kfreeDropTables). */
  dropTables?: readonly SocketTable[];
  /** The last verdict, and the reads (and learned-map version) it was judged against. */
  memo?: { before?: TableRead; after?: TableRead; learned: number; verdict: Verdict };
}

const NO_TABLES: readonly SocketTable[] = [];

/** `tcpDrops`: TCP sockets are read with their drops (sock_diag), so TCP kfree drops can be judged by them. */
export function makeNeed(realPointers: boolean, event: string, fields: Record<string, unknown>, tcpDrops = false): Need {
  switch (event) {
    case 'udp:udp_fail_queue_rcv_skb': {
      const key = udpKey(fields);
      return { kind: 'udp', tables: key?.tables ?? NO_TABLES, key, port: key?.port ?? -1 };
    }
    case 'sock:sock_rcvqueue_full':
      return { kind: 'rcvqueue', tables: RCVQUEUE_TABLES, port: -1 };
    case 'sock:sock_exceed_buf_limit':
      return { kind: 'global', tables: NO_TABLES, port: -1 };
    case 'skb:kfree_skb':
      return { kind: 'kfree', ...kfreeNeed(fields, realPointers, tcpDrops) };
    default:
      return { kind: 'other', tables: NO_TABLES, port: -1 };
  }
}
