// NDJSON: one object per line, the contract of DESIGN.md. Keys in a fixed order; internal
// fields (monoNs) never serialised. The writers put the bytes of a line straight into a
// JsonBytes buffer (the CLI's path: no string per event); the *ToJson functions return the
// same text as a string.
import type { DropEvent, LostEvent, SocketInfo } from '../decode/events.js';
import { utf8Bytes } from '../decode/bytes.js';
import { JsonBytes } from './json-bytes.js';
import { writeJsonHead } from './json-head.js';

const K_TIME = utf8Bytes('{"time":"');
const K_CPU = utf8Bytes('","cpu":');
const K_PID = utf8Bytes(',"pid":');
const K_TID = utf8Bytes(',"tid":');
const K_EVENT = utf8Bytes(',"event":');
const K_FIELDS = utf8Bytes(',"fields":');
const K_MATCH = utf8Bytes(',"match":"');
const K_SOCKET = utf8Bytes('","socket":');
const K_CANDIDATES = utf8Bytes(',"candidates":');
const K_GLOBAL = utf8Bytes(',"global":');
const K_COUNT = utf8Bytes(',"count":');
const K_LOST = utf8Bytes('{"event":"lost","time":"');
const K_LOST_N = utf8Bytes(',"lost":');
const K_CAUSE_UNSAMPLED = utf8Bytes(',"cause":"unsampled"');
const K_NULL = utf8Bytes('null');
/** `,"match":"<kind>","socket":` for each kind attribution uses. */
const K_MATCH_SOCKET = new Map(
  ['pointer', 'address', 'drops', 'paired', 'learned', 'global', 'ambiguous', 'none'].map((m) => [m, utf8Bytes(`,"match":"${m}","socket":`)]),
);

/** `<head>"<time>","cpu":<cpu>`: how a drop line (generic path) and a lost line begin. */
function writeTimeCpu(w: JsonBytes, head: Uint8Array, time: string, cpu: number): void {
  w.bytes(head);
  w.utf8(String(time));
  w.bytes(K_CPU);
  w.num(cpu);
}

/** One drop as an NDJSON line (without the newline), written into `w`. */
export function writeDropJson(w: JsonBytes, e: DropEvent): void {
  // Decoded events: one generated writer for the whole head of the line. Others, and decoded
  // events whose keys were assigned: the generic path.
  if (!writeJsonHead(w, e)) {
    writeTimeCpu(w, K_TIME, e.time, e.cpu);
    w.bytes(K_PID);
    w.num(e.pid);
    w.bytes(K_TID);
    w.num(e.tid);
    w.bytes(K_EVENT);
    w.str(e.event);
    w.bytes(K_FIELDS);
    w.value(e.fields);
  }
  if (e.match !== undefined) {
    const k = K_MATCH_SOCKET.get(e.match);
    if (k) w.bytes(k);
    else {
      w.bytes(K_MATCH);
      w.utf8(String(e.match));
      w.bytes(K_SOCKET);
    }
    if (e.socket) socketJson.write(w, e.socket);
    else if (e.socket === undefined || e.socket === null) w.bytes(K_NULL);
    else w.value(e.socket);
  }
  if (e.candidates !== undefined) {
    w.bytes(K_CANDIDATES);
    w.value(e.candidates);
  }
  if (e.global !== undefined) {
    w.bytes(K_GLOBAL);
    w.value(e.global);
  }
  if (e.count !== undefined) {
    w.bytes(K_COUNT);
    w.num(e.count);
  }
  w.byte(125);
}

/**
 * JSON of `socket`, remembered: in a storm every event names the same socket with the same
 * figures until the next table read, so the last object's text is reused when every field
 * (and the number of keys) is the same. Whatever the object holds, the text is JSON.stringify's.
 */
class SocketJsonCache {
  private last: SocketInfo | undefined;
  private keys = 0;
  private bytes = new Uint8Array(0);
  private readonly tmp = new JsonBytes(1024);

  write(w: JsonBytes, s: SocketInfo): void {
    const l = this.last;
    if (
      l !== undefined &&
      l.inode === s.inode &&
      l.drops === s.drops &&
      l.rx_queue === s.rx_queue &&
      l.local === s.local &&
      l.remote === s.remote &&
      l.owners === s.owners &&
      l.table === s.table &&
      l.netns === s.netns &&
      l.stale === s.stale &&
      countKeys(s) === this.keys
    ) {
      w.bytes(this.bytes);
      return;
    }
    const t = this.tmp;
    t.pos = 0;
    t.value(s);
    // A copy of the fields compared above (the object itself may change after we return).
    this.last = { ...s };
    this.keys = countKeys(s);
    this.bytes = Uint8Array.prototype.slice.call(t.buf, 0, t.pos); // a copy: tmp is reused
    w.bytes(this.bytes);
  }
}

function countKeys(o: object): number {
  let n = 0;
  // eslint-disable-next-line guard-for-in -- plain data from the attributor; inherited keys would count on both sides
  for (const _ in o) n++;
  return n;
}

const socketJson = new SocketJsonCache();

/** One lost record as an NDJSON line (without the newline), written into `w`. */
export function writeLostJson(w: JsonBytes, e: LostEvent): void {
  writeTimeCpu(w, K_LOST, e.time, e.cpu);
  w.bytes(K_LOST_N);
  w.num(e.lost);
  if (e.cause === 'unsampled') w.bytes(K_CAUSE_UNSAMPLED);
  w.byte(125);
}

export function writeRecordJson(w: JsonBytes, e: DropEvent | LostEvent): void {
  if (e.event === 'lost') writeLostJson(w, e as LostEvent);
  else writeDropJson(w, e as DropEvent);
}

// A scratch buffer for the string API; a fresh one if a toJSON() somewhere re-enters us.
let scratch: JsonBytes | undefined;
let scratchBusy = false;

function toText(write: (w: JsonBytes) => void): string {
  const reuse = !scratchBusy;
  const w = reuse ? (scratch ??= new JsonBytes(4096)) : new JsonBytes(4096);
  scratchBusy = true;
  try {
    w.pos = 0;
    write(w);
    return w.text();
  } finally {
    if (reuse) {
      scratchBusy = false;
      if (w.buf.length > 1 << 20) scratch = undefined; // one huge line must not pin a huge buffer
    }
  }
}

export function dropToJson(e: DropEvent): string {
  return toText((w) => writeDropJson(w, e));
}

export function lostToJson(e: LostEvent): string {
  return toText((w) => writeLostJson(w, e));
}

export function recordToJson(e: DropEvent | LostEvent): string {
  return e.event === 'lost' ? lostToJson(e as LostEvent) : dropToJson(e as DropEvent);
}
