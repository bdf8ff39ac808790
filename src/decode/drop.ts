// The DropEvent the decoder hands out. At a million events a second most of the cost of an event
// is the strings and objects made for it, so a decoded drop keeps its payload fields as plain
// numbers read straight from the batch (no reference to the batch is kept) and makes `fields`
// and `time` on first access. The NDJSON renderer writes them from the numbers without ever
// making them.
//
// compile.ts generates one class per tracepoint schema, with every field and accessor in it, and
// puts DecodedDrop.prototype behind it (instanceof, toJSON). No code is shared between the
// classes' constructors: a shared constructor would see every class's shape and go megamorphic.
import type { WallClock } from './clock.js';
import type { DropEvent, MatchKind, SocketInfo } from './events.js';
import type { JsonBytes } from './json-bytes.js';

export abstract class DecodedDrop implements DropEvent {
  declare match?: MatchKind;
  declare socket?: SocketInfo | null;
  declare candidates?: number[];
  declare global?: Record<string, unknown>;
  declare cpu: number;
  declare pid: number;
  declare tid: number;
  declare event: string;
  declare monoNs: number;
  declare count?: number;
  declare lastMonoNs?: number;

  /** Wall-clock time of the sample, RFC 3339 with nanoseconds (made on first access). */
  abstract get time(): string;
  abstract set time(v: string);
  /** Every non-common field of the format file (a plain object, made on first access). */
  abstract get fields(): Record<string, unknown>;
  abstract set fields(v: Record<string, unknown>);

  /** `time` as the NDJSON line has it (unquoted text). */
  abstract writeTime(w: JsonBytes): void;

  /** `,"event":…,"fields":…` of the NDJSON line (the event name's text is a constant per class). */
  abstract writeEventFields(w: JsonBytes): void;

  /**
   * The NDJSON line from `{"time":` to the end of `fields` (generated straight-line code);
   * false, having written nothing, when time, fields, event, cpu, pid or tid were replaced.
   */
  abstract writeHead(w: JsonBytes): boolean;

  /** `fields` made afresh from the decoded values, without keeping it (a peek that leaves the fast paths on). */
  abstract readFields(): Record<string, unknown>;

  /**
   * Whether `o` is an event of the same tracepoint layout with the same payload values, both
   * untouched (nobody has been handed their `fields`). Cheap: no allocation.
   */
  abstract sameSlots(o: DropEvent): boolean;

  /**
   * A text equal for two untouched events exactly when sameSlots() holds between them (the
   * event name and every payload value); undefined once `fields` has been handed out.
   */
  abstract slotKey(): string | undefined;

  /** The event as a plain object, in the NDJSON contract's key order (plus monoNs). */
  toJSON(): Record<string, unknown> {
    const o: Record<string, unknown> = {
      time: this.time,
      cpu: this.cpu,
      pid: this.pid,
      tid: this.tid,
      event: this.event,
      fields: this.fields,
      monoNs: this.monoNs,
    };
    const self = this as unknown as Record<string, unknown>;
    for (const k of Object.keys(this)) if (!(k in o)) o[k] = self[k];
    return o;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): Record<string, unknown> {
    return this.toJSON();
  }
}

/** The generated class of one schema. */
export type DropClass = new (
  clock: WallClock,
  cpu: number,
  pid: number,
  tid: number,
  monoNs: number,
  dv: DataView,
  u8: Uint8Array,
  base: number,
  rawSize: number,
) => DecodedDrop;
