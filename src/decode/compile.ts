// Compile one EventSchema into `Drop`, a DecodedDrop subclass generated once per schema: it reads
// the payload fields into private number slots at decode time and makes the object literal
// (`fields`, frozen) only when asked. What each field is comes from its slot spec
// (slot-spec.ts); each part of the class is a small generator over that spec. The class hands
// its private slots out through its `layout`, for which render/ generates its JSON head.
import { endianness } from 'node:os';
import { ipv6FromBytes } from '../addr-text.js';
import type { EventSchema } from '../format/schema.js';
import { DecodedDrop, type DropClass, type DropLayout } from './drop.js';
import { helpers } from './field-helpers.js';
import { slotSpec, type FieldSlot, type SlotSpec } from './slot-spec.js';

export interface CompiledEvent {
  schema: EventSchema;
  /** `system:name`, the `event` of every DropEvent it decodes. */
  event: string;
  /** What each payload field is and which slots of a Drop hold it. */
  spec: SlotSpec;
  /** Raw bytes a record must have for every fixed field to be in bounds. */
  minRawSize: number;
  /** The DropEvent class of this schema: `new Drop(clock, cpu, pid, tid, monoNs, dv, u8, base, rawSize)`. */
  Drop: DropClass;
  /** The generated source of the Drop class (print it when debugging a decoder). */
  dropSource: string;
}

const LE = endianness() === 'LE';

/** A field's names in generated code: its slots, and (kind 'symbol') its symbol table. */
interface Names {
  slot(i: number): string;
  sym(f: FieldSlot): string;
}

function scalarExpr(f: FieldSlot, at: string): string {
  const s = f.signed;
  switch (f.elementSize) {
    case 1:
      return s ? `dv.getInt8(${at})` : `dv.getUint8(${at})`;
    case 2:
      return s ? `dv.getInt16(${at}, LE)` : `dv.getUint16(${at}, LE)`;
    case 4:
      return s ? `dv.getInt32(${at}, LE)` : `dv.getUint32(${at}, LE)`;
    default:
      // 8: slotSpec gives the int, symbol and array kinds only 1, 2, 4 or 8-byte elements.
      return s ? `h.s64(dv, ${at}, LE)` : `h.u64(dv, ${at}, LE)`;
  }
}

/** Constructor statements that read the field from the record at `base` into its slots. */
function readCode(f: FieldSlot, n: Names): string[] {
  const at = `base + ${f.offset}`;
  const [a, b] = f.slots.map((i) => n.slot(i));
  switch (f.kind) {
    case 'int':
    case 'symbol':
      return [`${a} = ${scalarExpr(f, at)};`];
    case 'sockaddr': {
      const v6 = f.size >= 24 ? `fam === 10 ? u8.slice(${at} + 8, ${at} + 24) : ` : '';
      return [
        `{ const fam = dv.getUint16(${at}, LE); ${a} = fam * 65536 + dv.getUint16(${at} + 2, false);`,
        `  ${b} = fam === 2 ? dv.getInt32(${at} + 4, false) : ${v6}0; }`,
      ];
    }
    case 'ipv4':
      return [`${a} = dv.getInt32(${at}, false);`];
    case 'pointer':
      return f.size === 8
        ? [`${a} = dv.getInt32(${at} + (LE ? 0 : 4), LE);`, `${b} = dv.getInt32(${at} + (LE ? 4 : 0), LE);`]
        : [`${a} = dv.getInt32(${at}, LE);`, `${b} = 0;`];
    case 'ipv6':
      return [`${a} = ipv6FromBytes(u8, ${at});`];
    case 'string':
      return [`${a} = h.cstr(u8, ${at}, ${f.size});`];
    case 'dynamic':
      return [`${a} = h.dyn(dv, u8, base, ${f.offset}, rawSize, ${f.rel === true}, LE);`];
    case 'array': {
      const items = Array.from({ length: f.arrayLength ?? 0 }, (_, i) => scalarExpr(f, `base + ${f.offset + i * f.elementSize}`));
      return [`${a} = [${items.join(', ')}];`];
    }
    case 'opaque':
      return [`${a} = null;`];
  }
}

/** The field's value in `fields`, from its slots. */
function valueCode(f: FieldSlot, n: Names): string {
  const [a, b] = f.slots.map((i) => n.slot(i));
  switch (f.kind) {
    case 'sockaddr':
      return `h.sockaddrText(${a} >>> 16, ${a} & 65535, ${b}, ${f.size})`;
    case 'ipv4':
      return `h.ipv4Text(${a})`;
    case 'pointer':
      return `h.ptrText(${a}, ${b})`;
    case 'symbol':
      // An unknown number stays a number: honest, and still filterable by jq.
      return `h.symText(${n.sym(f)}, ${a})`;
    default:
      // A number, or the value made at decode time.
      return a;
  }
}

/**
 * sameSlots(o) and slotKey(): the payload's identity, for consumers that memoize per distinct
 * event (attribution); only while nobody has replaced `fields`.
 */
function identityCode(spec: SlotSpec): string[] {
  const slots = Array.from({ length: spec.slotCount }, (_, i) => `#s${i}`);
  return [
    `  sameSlots(o) {`,
    `    if (this.#replaced || !(#clock in o) || o.#replaced) return false;`,
    `    return ${slots.length === 0 ? 'true' : slots.map((s) => `(this.${s} === o.${s} || h.eqv(this.${s}, o.${s}))`).join(' && ')};`,
    `  }`,
    `  slotKey() {`,
    `    if (this.#replaced) return undefined;`,
    `    return EVENT${slots.map((s) => ` + ',' + h.kv(this.${s})`).join('')};`,
    `  }`,
  ];
}

export function compileSchema(schema: EventSchema): CompiledEvent {
  const spec = slotSpec(schema);
  const { event, fields } = spec;
  let minRawSize = 0;
  for (const f of schema.fields) minRawSize = Math.max(minRawSize, f.offset + f.size);
  const ident = `${schema.system}_${schema.name}`.replace(/[^A-Za-z0-9_]/g, '_');
  const symbolic = fields.filter((f) => f.kind === 'symbol');
  const names: Names = { slot: (i) => `this.#s${i}`, sym: (f) => `S${symbolic.indexOf(f)}` };
  const dropSource = [
    `return class Drop_${ident} {`,
    // Own enumerable data, in the order the plain-object events had them.
    `  cpu; pid; tid; event; monoNs;`,
    // #replaced: a consumer assigned time or fields; only then do the generated paths step aside
    // (reading them caches them, and `fields` is frozen, so the slots stay the truth).
    `  #clock; #time = undefined; #fields = undefined; #replaced = false;`,
    ...Array.from({ length: spec.slotCount }, (_, i) => `  #s${i} = 0;`),
    `  constructor(clock, cpu, pid, tid, monoNs, dv, u8, base, rawSize) {`,
    `    this.cpu = cpu; this.pid = pid; this.tid = tid; this.event = EVENT; this.monoNs = monoNs;`,
    `    this.#clock = clock;`,
    ...fields.flatMap((f) => readCode(f, names).map((l) => `    ${l}`)),
    `  }`,
    `  get time() { return this.#time ?? (this.#time = this.#clock.iso(this.monoNs)); }`,
    `  set time(v) { this.#time = v; this.#replaced = true; }`,
    `  get fields() { return this.#fields ?? (this.#fields = Object.freeze(this.readFields())); }`,
    `  set fields(v) { this.#fields = v; this.#replaced = true; }`,
    `  readFields() {`,
    `    return {`,
    ...fields.map((f) => `      ${JSON.stringify(f.name)}: ${valueCode(f, names)},`),
    `    };`,
    `  }`,
    ...identityCode(spec),
    // What the class keeps private, handed to code generated outside it (DropLayout.withSlots):
    // one call with every slot as an argument, monomorphic per class.
    `  static {`,
    `    LAYOUT((o, f, w) => !o.#replaced && f(w, o, o.#clock${Array.from({ length: spec.slotCount }, (_, i) => `, o.#s${i}`).join('')}));`,
    `  }`,
    `};`,
  ].join('\n');
  const params: [string, unknown][] = [
    ['EVENT', event],
    ['h', helpers],
    ['LE', LE],
    ['ipv6FromBytes', ipv6FromBytes],
    ...symbolic.map((f, i): [string, unknown] => [`S${i}`, f.symbols]),
    ['LAYOUT', (withSlots: DropLayout['withSlots']) => (layout = { spec, withSlots })],
  ];
  let layout: DropLayout | undefined;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from a parsed schema, never from user text
  const dropFactory = new Function(...params.map(([k]) => k), dropSource) as (...a: unknown[]) => DropClass;
  const Drop = dropFactory(...params.map(([, v]) => v));
  // DecodedDrop.prototype behind the generated methods: instanceof, toJSON, inspect.
  Object.setPrototypeOf(Drop.prototype, DecodedDrop.prototype);
  Object.defineProperty(Drop.prototype, 'layout', { value: layout });
  return { schema, event, spec, minRawSize, Drop, dropSource };
}
