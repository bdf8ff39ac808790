// Parse a tracefs `format` file into an EventSchema. Trust `size:` over the brackets (before
// 6.2 array sizes print as text, e.g. `saddr[sizeof(struct sockaddr_in6)]`).
import { parsePrintFmt } from './print-fmt.js';
import { FormatParseError, type EventSchema, type FieldSchema } from './schema.js';

const FIELD_RE = /^\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);(?:\s*signed:(\d+);)?/;

export function parseFormat(text: string, system: string, source = `${system} format`): EventSchema {
  const lines = text.split('\n');
  let name: string | undefined;
  let id: number | undefined;
  let printFmt: string | undefined;
  const fields: FieldSchema[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('name:')) name = line.slice(5).trim();
    else if (line.startsWith('ID:')) {
      id = Number(line.slice(3).trim());
      if (!Number.isInteger(id) || id < 0) throw new FormatParseError(`bad ID "${line.slice(3).trim()}"`, source, i + 1);
    } else if (line.startsWith('print fmt:')) printFmt = lines.slice(i).join('\n').slice('print fmt:'.length).trim();
    else if (/^\s*field:/.test(line)) fields.push(parseField(line, source, i + 1));
    if (printFmt !== undefined) break;
  }
  if (!name) throw new FormatParseError('no "name:" line', source);
  if (id === undefined) throw new FormatParseError('no "ID:" line', source);
  if (fields.length === 0) throw new FormatParseError('no fields', source);
  // Every format file ends with print fmt; without it the file was cut short.
  if (printFmt === undefined) throw new FormatParseError('truncated: no "print fmt:" line', source);
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) throw new FormatParseError(`field "${f.name}" appears twice`, source);
    seen.add(f.name);
  }
  const { display, symbols } = parsePrintFmt(printFmt);
  return { system, name, id, fields, printFmt, display, symbols };
}

function parseField(line: string, source: string, lineNo: number): FieldSchema {
  const m = FIELD_RE.exec(line);
  if (!m) throw new FormatParseError(`unreadable field line "${line.trim()}"`, source, lineNo);
  const decl = m[1].trim();
  const offset = Number(m[2]);
  const size = Number(m[3]);
  const signed = m[4] === '1';
  if (size <= 0 || size > 65536) throw new FormatParseError(`field size ${size} out of range`, source, lineNo);
  if (offset > 65536) throw new FormatParseError(`field offset ${offset} out of range`, source, lineNo);

  const d = /^(.*?)\s*\b([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?$/.exec(decl);
  if (!d || !d[1]) throw new FormatParseError(`unreadable field declaration "${decl}"`, source, lineNo);
  const type = d[1].trim();
  const fieldName = d[2];
  const dynamic = type.startsWith('__data_loc') ? 'data_loc' : type.startsWith('__rel_loc') ? 'rel_loc' : undefined;
  const pointer = !dynamic && type.includes('*');
  const isChar = /\bchar\b/.test(type) && !pointer;
  let arrayLength: number | undefined;
  let elementSize = size;
  if (d[3] && !dynamic) {
    elementSize = scalarSize(type) ?? 1;
    if (size % elementSize !== 0) elementSize = 1;
    arrayLength = size / elementSize;
  }
  return {
    name: fieldName,
    type,
    offset,
    size,
    signed,
    arrayLength,
    elementSize,
    dynamic,
    pointer,
    text: isChar && (arrayLength !== undefined || dynamic !== undefined),
    common: fieldName.startsWith('common_'),
  };
}

/** Element size of an array's base type, where the type name says it. */
function scalarSize(type: string): number | undefined {
  const t = type.replace(/\b(const|volatile|unsigned|signed)\b/g, '').trim();
  if (/^(char|__u8|__s8|u8|s8|uint8_t|int8_t|bool)$/.test(t)) return 1;
  if (/^(short|__u16|__s16|u16|s16|uint16_t|int16_t|__be16|__le16)$/.test(t)) return 2;
  if (/^(int|__u32|__s32|u32|s32|uint32_t|int32_t|__be32|__le32|pid_t|gfp_t)$/.test(t) || t === '') return 4;
  if (/^(long|long long|__u64|__s64|u64|s64|uint64_t|int64_t|size_t|ssize_t|unsigned long)$/.test(t)) return 8;
  return undefined;
}
