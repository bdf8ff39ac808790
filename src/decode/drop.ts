// The DropEvent the decoder hands out. At a million events a second most of the cost of an event
// is the strings and objects made for it, so a decoded drop keeps its payload fields as plain
// numbers read straight from the batch (no reference to the batch is kept) and makes `fields`
// (frozen) and `time` on first access. Reading them leaves the fast paths on; assigning them
// (or event, cpu, pid, tid) makes the generic paths take over for that event.
//
// attribute/ and render/ never look inside: they go through `dropEncoding` (below), which says
// what decode knows about any DropEvent: its identity key, its fields without handing them out,
// and the layout of its slots (the slot spec, and a way to hand a drop's slots to a function),
// over which render/ generates the JSON head of its line.
//
// compile.ts generates one class per tracepoint schema, with every field and accessor in it, and
// puts DecodedDrop.prototype behind it (instanceof, toJSON). No code is shared between the
// classes' constructors: a shared constructor would see every class's shape and go megamorphic.
import type { WallClock } from './clock.js';
import type { DropEvent, MatchKind, SocketInfo } from './events.js';
import type { SlotSpec } from './slot-spec.js';

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

  /** How this class's drops keep their fields: one object per schema (on the prototype). */
  declare readonly layout: DropLayout;

  /** `fields` made afresh from the decoded values, without keeping it (a peek that leaves the fast paths on). */
  abstract readFields(): Record<string, unknown>;

  /**
   * Whether `o` is an event of the same tracepoint layout with the same payload values, neither
   * with its `fields` assigned. Cheap: no allocation.
   */
  abstract sameSlots(o: DropEvent): boolean;

  /**
   * A text equal for two events exactly when sameSlots() holds between them (the event name
   * and every payload value); undefined once `fields` has been assigned.
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

/**
 * What the drops of one schema keep, for code generated over them elsewhere (render/'s JSON
 * head): the slot spec, and a way in to what the class keeps private.
 */
export interface DropLayout {
  spec: SlotSpec;
  /**
   * `f(w, d, clock, slot0, slot1, …)` with drop `d`'s wall clock and its slots (spec.slotCount
   * of them: numbers, or values made at decode time), returning what `f` returns; false, without
   * calling `f`, when a consumer has assigned d's `time` or `fields` (the slots are no longer
   * the truth). `d` must be a drop of this layout.
   */
  withSlots<W>(d: DecodedDrop, f: SlotsFn<W>, w: W): boolean;
}

export type SlotsFn<W> = (w: W, d: DecodedDrop, clock: WallClock, ...slots: unknown[]) => boolean;

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

/**
 * What decode knows how to do with a DropEvent, for attribute/ and render/. Events it did not
 * make (a library user's own objects) get the honest answer: no key, their own `fields`, and
 * no layout.
 */
export interface DropEncoding {
  /**
   * A text equal for two events exactly when their event name and every payload value are
   * (attribution memoizes per distinct payload on it); undefined when there is none: not a
   * decoded event, or its fields were replaced.
   */
  identityKey(e: DropEvent): string | undefined;
  /** Whether two events have the same identity key, without making either text. */
  sameIdentity(a: DropEvent, b: DropEvent): boolean;
  /** The payload fields, without handing `fields` out (a decoded event makes a fresh object). */
  fieldsOf(e: DropEvent): Record<string, unknown>;
  /**
   * The layout of a decoded event's slots; undefined when decode did not make `e`.
   */
  layoutOf(e: DropEvent): DropLayout | undefined;
}

export const dropEncoding: DropEncoding = {
  identityKey: (e) => (e instanceof DecodedDrop ? e.slotKey() : undefined),
  sameIdentity: (a, b) => a instanceof DecodedDrop && a.sameSlots(b),
  fieldsOf: (e) => (e instanceof DecodedDrop ? e.readFields() : e.fields),
  layoutOf: (e) => (e instanceof DecodedDrop ? e.layout : undefined),
};
