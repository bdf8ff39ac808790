// The NDJSON line of a decoded drop, from `{"time":` to the end of `fields`, as straight-line
// code generated once per schema from decode's slot spec (DropLayout): constants are byte
// stores, numbers go in at a raw position, and only rare values (IPv6, strings, 64-bit numbers)
// take the JsonBytes path.
import { utf8Bytes } from '../decode/bytes.js';
import { dropEncoding, type DecodedDrop, type DropLayout, type SlotsFn } from '../decode/drop.js';
import type { DropEvent } from '../decode/events.js';
import type { FieldSlot, SlotSpec } from '../decode/slot-spec.js';
import type { JsonBytes } from './json-bytes.js';
import { jsonFields } from './json-fields.js';

/** Writes the head of a drop of one layout from its slots; false, having written nothing, when it declines. */
type HeadWriter = SlotsFn<JsonBytes>;

const heads = new WeakMap<DropLayout, HeadWriter>();
// The writers of the last few layouts, searched first: a trace has a few tracepoints, often
// interleaved (a kfree_skb beside each udp event), and a WeakMap lookup per event would show.
const RECENT = 4;
const recentLayouts: (DropLayout | undefined)[] = new Array<DropLayout | undefined>(RECENT).fill(undefined);
const recentHeads: (HeadWriter | undefined)[] = new Array<HeadWriter | undefined>(RECENT).fill(undefined);
let nextRecent = 0;

function headOf(layout: DropLayout): HeadWriter {
  for (let i = 0; i < RECENT; i++) if (recentLayouts[i] === layout) return recentHeads[i]!;
  let head = heads.get(layout);
  if (head === undefined) {
    head = compileHead(layout.spec);
    heads.set(layout, head);
  }
  recentLayouts[nextRecent] = layout;
  recentHeads[nextRecent] = head;
  nextRecent = (nextRecent + 1) % RECENT;
  return head;
}

/**
 * The NDJSON line from `{"time":` to the end of `fields`, written into `w` by the generated
 * writer of `e`'s layout; false, having written nothing, when decode did not make `e` or a
 * consumer assigned its time, fields, event, cpu, pid or tid (the caller's generic path writes
 * it then).
 */
export function writeJsonHead(w: JsonBytes, e: DropEvent): boolean {
  const layout = dropEncoding.layoutOf(e);
  return layout !== undefined && layout.withSlots(e as DecodedDrop, headOf(layout), w);
}

/** A slot's name in the generated code (the drop itself is `e`). */
type SlotName = (i: number) => string;

/** A field's JSON: through JsonBytes (`write`), and at a raw position `b[p]` using at most `max` bytes (`fast`). */
interface FieldJson {
  write: string;
  /** `rest`: the bytes still to come after this field, to reserve when it falls back to `write`. */
  fast?: { max: number; code: (rest: number) => string };
}

function fieldJson(f: FieldSlot, slot: SlotName, sym: string): FieldJson {
  const [a, b] = f.slots.map(slot);
  switch (f.kind) {
    case 'sockaddr': {
      const args = `${a} >>> 16, ${a} & 65535, ${b}, ${f.size}`;
      return {
        write: `h.writeSockaddr(w, ${args});`,
        // IPv4 at a raw position; anything else (IPv6, unset) through the JsonBytes path.
        fast: {
          max: 23,
          code: (rest) => `if (${a} >>> 16 === 2) p = h.v4At(b, p, ${b}, ${a} & 65535); else { w.pos = p; h.writeSockaddr(w, ${args}); w.reserve(${rest}); b = w.buf; p = w.pos; }`,
        },
      };
    }
    case 'ipv4':
      return { write: `h.writeIpv4(w, ${a});` };
    case 'pointer':
      return { write: `h.writePtr(w, ${a}, ${b});` };
    case 'symbol': {
      const longest = Math.max(0, ...[...(f.symbols?.values() ?? [])].map((name) => Buffer.byteLength(JSON.stringify(name))));
      // Up to 4 bytes a field is an int32 or a uint32: at most 11 characters.
      const fast = f.size <= 4 ? { max: Math.max(11, longest), code: () => `p = h.symAt(b, p, ${sym}, ${a});` } : undefined;
      return { write: `h.writeSym(w, ${sym}, ${a});`, fast };
    }
    case 'int':
      return { write: `w.jsonNum(${a});`, fast: f.size <= 4 ? { max: 11, code: () => `p = h.intAt(b, p, ${a});` } : undefined };
    default:
      // The value made at decode time (text, array, null).
      return { write: `w.value(${a});` };
  }
}

/** Pieces of the line in order: constant text, a field's raw-position code, or its JsonBytes path. */
type Piece = { text: string } | { code: (rest: number) => string; max: number } | { slow: string };

/**
 * The statements of a head writer: `guard` declines (returns false, nothing written) when a
 * consumer has replaced event, cpu, pid or tid; `write` writes the head of `e`'s line into `w`
 * and returns true. `params`: the values the code names besides `h` and EVENT (K, J0…).
 */
function jsonHeadBody(spec: SlotSpec, slot: SlotName): { guard: string[]; write: string[]; params: Record<string, unknown> } {
  const symbolic = spec.fields.filter((f) => f.kind === 'symbol');
  const params: Record<string, unknown> = {};
  // JSON text of every symbolic name, per field: J0, J1…
  symbolic.forEach((f, i) => (params[`J${i}`] = new Map([...(f.symbols ?? [])].map(([v, name]) => [v, utf8Bytes(JSON.stringify(name))]))));
  const pieces: Piece[] = [{ text: '{"time":"' }, { code: () => 'p = clock.isoAt(b, p, e.monoNs);', max: 30 }, { text: '","cpu":' }];
  pieces.push({ code: () => 'p = h.uintAt(b, p, cpu);', max: 10 }, { text: ',"pid":' });
  pieces.push({ code: () => 'p = h.uintAt(b, p, pid);', max: 10 }, { text: ',"tid":' });
  pieces.push({ code: () => 'p = h.uintAt(b, p, tid);', max: 10 }, { text: `,"event":${JSON.stringify(spec.event)},"fields":` });
  spec.fields.forEach((f, i) => {
    const j = fieldJson(f, slot, `J${symbolic.indexOf(f)}`);
    pieces.push({ text: `${i === 0 ? '{' : ','}${JSON.stringify(f.name)}:` });
    pieces.push(j.fast ? { code: j.fast.code, max: j.fast.max } : { slow: j.write });
  });
  pieces.push({ text: spec.fields.length === 0 ? '{}' : '}' });
  // Merge neighbouring constants, then size everything after each point (what to reserve).
  const merged: Piece[] = [];
  for (const pc of pieces) {
    const last = merged[merged.length - 1];
    if ('text' in pc && last && 'text' in last) last.text += pc.text;
    else merged.push('text' in pc ? { text: pc.text } : pc);
  }
  const size = (pc: Piece): number => ('text' in pc ? Buffer.byteLength(pc.text) : 'max' in pc ? pc.max : 0);
  const rest: number[] = new Array<number>(merged.length + 1).fill(0);
  for (let i = merged.length - 1; i >= 0; i--) rest[i] = rest[i + 1] + size(merged[i]);
  // Constant text (keys, punctuation) longer than a few stores is encoded once and copied: K[i].
  const K: Uint8Array[] = [];
  params.K = K;
  const guard = [
    'const cpu = e.cpu, pid = e.pid, tid = e.tid;',
    'if (e.event !== EVENT || (cpu >>> 0) !== cpu || (pid >>> 0) !== pid || (tid >>> 0) !== tid) return false;',
  ];
  const write: string[] = [`w.reserve(${rest[0]});`, 'let b = w.buf;', 'let p = w.pos;'];
  merged.forEach((pc, i) => {
    if ('text' in pc) {
      const bytes = utf8Bytes(pc.text);
      if (bytes.length <= 24) {
        const stores = [...bytes].map((c, j) => `b[p${j ? ` + ${j}` : ''}] = ${c};`);
        write.push(`${stores.join(' ')} p += ${bytes.length}; // ${JSON.stringify(pc.text).replace(/\*\//g, '*\\/')}`);
      } else {
        write.push(`p = h.copyAt(b, p, K[${K.push(bytes) - 1}]);`);
      }
    } else if ('code' in pc) {
      write.push(pc.code(rest[i + 1]));
    } else {
      write.push(`w.pos = p; ${pc.slow} w.reserve(${rest[i + 1]}); b = w.buf; p = w.pos;`);
    }
  });
  write.push(`w.pos = p;`, `return true;`);
  return { guard, write, params };
}

/** The head writer of one layout, called through its withSlots: the slots come as arguments. */
function compileHead(spec: SlotSpec): HeadWriter {
  const { guard, write, params } = jsonHeadBody(spec, (i) => `s${i}`);
  const ident = spec.event.replace(/[^A-Za-z0-9_]/g, '_');
  const args = ['w', 'e', 'clock', ...Array.from({ length: spec.slotCount }, (_, i) => `s${i}`)];
  const source = [`return function writeHead_${ident}(${args.join(', ')}) {`, ...[...guard, ...write].map((l) => `  ${l}`), `};`].join('\n');
  const all: [string, unknown][] = [['h', jsonFields], ['EVENT', spec.event], ...Object.entries(params)];
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from a parsed schema, never from user text
  const factory = new Function(...all.map(([k]) => k), source) as (...a: unknown[]) => HeadWriter;
  return factory(...all.map(([, v]) => v));
}
