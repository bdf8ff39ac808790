// The slot spec of a schema: for each payload field, what kind of value it is and which of a
// decoded drop's private number slots hold it. Every rendering of a field (how the constructor
// reads it, its value in `fields`, the identity key, the JSON writer in render/) is generated
// from this one description, so they cannot disagree on what a field is.
import type { EventSchema, FieldSchema } from '../format/schema.js';

/**
 * How a field is kept. The first five keep numbers (cheap to read, compare and write); the
 * rest keep the field's finished value (rare or variable-size: made at decode time).
 */
export type SlotKind =
  /** A 1, 2, 4 or 8-byte integer: one slot. */
  | 'int'
  /** An integer that print fmt names with __print_symbolic: one slot, the names in `symbols`. */
  | 'symbol'
  /** A sockaddr_in/in6 copied into the event: family * 65536 + port, then the address (IPv4 as a big-endian i32, IPv6 as 16 bytes, else 0). */
  | 'sockaddr'
  /** 4 bytes shown %pI4: the address as a big-endian i32. */
  | 'ipv4'
  /** A pointer, shown as hex text: its low and high 32 bits (i32). */
  | 'pointer'
  /** 16 bytes shown %pI6: the address text. */
  | 'ipv6'
  /** A char array: the NUL-terminated text. */
  | 'string'
  /** A __data_loc / __rel_loc char array: the text, or null when it lies out of the record. */
  | 'dynamic'
  /** A fixed array of 1, 2, 4 or 8-byte integers: the numbers. */
  | 'array'
  /** Any other layout: null. */
  | 'opaque';

export interface FieldSlot {
  /** The kernel's field name: the key in `fields`. */
  name: string;
  kind: SlotKind;
  offset: number;
  /** Total size in bytes. */
  size: number;
  elementSize: number;
  signed: boolean;
  /** Element count (kind 'array'). */
  arrayLength?: number;
  /** __rel_loc rather than __data_loc (kind 'dynamic'). */
  rel?: boolean;
  /** Value → name (kind 'symbol'); an unnamed value stays a number. */
  symbols?: ReadonlyMap<number, string>;
  /** Indices of the slots that hold this field (two for 'sockaddr' and 'pointer', else one). */
  slots: number[];
}

export interface SlotSpec {
  /** `system:name`. */
  event: string;
  /** The payload (non-common) fields, in format-file order: the key order of `fields`. */
  fields: FieldSlot[];
  /** Number of slots a decoded drop keeps. */
  slotCount: number;
}

const SCALAR = [1, 2, 4, 8];

function kindOf(schema: EventSchema, f: FieldSchema): SlotKind {
  const display = schema.display.get(f.name);
  if (f.dynamic) return 'dynamic';
  if (f.text) return 'string';
  if (display === 'sockaddr' && f.size >= 8) return 'sockaddr';
  if (display === 'ipv4' && f.size === 4) return 'ipv4';
  if (display === 'ipv6' && f.size === 16) return 'ipv6';
  if (f.pointer) return 'pointer';
  if (f.arrayLength !== undefined) return SCALAR.includes(f.elementSize) ? 'array' : 'opaque';
  if (f.size !== f.elementSize || !SCALAR.includes(f.size)) return 'opaque';
  return display === 'symbolic' && schema.symbols.has(f.name) ? 'symbol' : 'int';
}

/** Kinds whose field takes two slots. */
const TWO_SLOTS: ReadonlySet<SlotKind> = new Set(['sockaddr', 'pointer']);

export function slotSpec(schema: EventSchema): SlotSpec {
  let slotCount = 0;
  const fields = schema.fields
    .filter((f) => !f.common)
    .map((f): FieldSlot => {
      const kind = kindOf(schema, f);
      const slots = TWO_SLOTS.has(kind) ? [slotCount++, slotCount++] : [slotCount++];
      const fs: FieldSlot = { name: f.name, kind, offset: f.offset, size: f.size, elementSize: f.elementSize, signed: f.signed, slots };
      if (kind === 'array') fs.arrayLength = f.arrayLength;
      if (kind === 'dynamic') fs.rel = f.dynamic === 'rel_loc';
      if (kind === 'symbol') fs.symbols = schema.symbols.get(f.name);
      return fs;
    });
  return { event: `${schema.system}:${schema.name}`, fields, slotCount };
}
