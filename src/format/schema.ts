// The schema of one tracepoint, as its tracefs `format` file describes it. Everything the
// decoder knows about a layout comes from here, so a kernel with another layout just works.

export interface FieldSchema {
  /** The kernel's field name (`dport`, `rx_sk`, `common_pid`…). */
  name: string;
  /** The C type text as printed (`__u16`, `void *`, `__data_loc char[]`). */
  type: string;
  offset: number;
  /** Total size in bytes (for arrays, of the whole array). Trusted over the brackets. */
  size: number;
  signed: boolean;
  /** Element count for fixed arrays (size / element size), else undefined. */
  arrayLength?: number;
  /** Size of one element (== size for scalars). */
  elementSize: number;
  /** `__data_loc`/`__rel_loc`: a u32 with offset (low 16) and length (high 16) of dynamic data. */
  dynamic?: 'data_loc' | 'rel_loc';
  /** A pointer: printed as hex text, since kernel addresses do not fit a double. */
  pointer: boolean;
  /** A char array or dynamic char array: decoded as a NUL-terminated string. */
  text: boolean;
  /** A `common_*` header field. */
  common: boolean;
}

/** How `print fmt` shows a field: the decoder follows it for addresses and enum names. */
export type FieldDisplay = 'sockaddr' | 'ipv4' | 'ipv6' | 'symbolic';

export interface EventSchema {
  system: string;
  name: string;
  id: number;
  fields: FieldSchema[];
  printFmt: string;
  /** Field → how print fmt renders it, where that changes the value we emit. */
  display: Map<string, FieldDisplay>;
  /** Field → number → name, from `__print_symbolic(REC->field, { n, "NAME" }, …)`. */
  symbols: Map<string, Map<number, string>>;
}

export class FormatParseError extends Error {
  readonly code = 'EFORMAT';
  constructor(
    message: string,
    readonly source: string,
    readonly line?: number,
  ) {
    super(`${source}${line !== undefined ? `:${line}` : ''}: ${message}`);
    this.name = 'FormatParseError';
  }
}

export const payloadFields = (s: EventSchema): FieldSchema[] => s.fields.filter((f) => !f.common);

export const fieldNames = (s: EventSchema): string[] => payloadFields(s).map((f) => f.name);
