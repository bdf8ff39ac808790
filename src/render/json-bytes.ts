// JSON text written as bytes into one reusable buffer, without building strings: at a million
// events a second, per-event strings (and the garbage collector behind them) cost more than the
// decoding. The output is byte for byte what JSON.stringify would produce for the same values.

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const strCache = new Map<string, Uint8Array>();
const HEX = '0123456789abcdef';

export class JsonBytes {
  buf: Buffer;
  pos = 0;

  constructor(size = 1 << 17) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Make room for n more bytes. */
  reserve(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** The bytes written so far, as a view: valid until the next write. */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** The bytes written so far, as a string. */
  text(): string {
    return this.buf.toString('utf8', 0, this.pos);
  }

  /**
   * Pre-encoded bytes (constants: keys, punctuation, event names). A short copy loop beats
   * TypedArray.set's call overhead; beyond a few bytes set's memmove wins.
   */
  bytes(k: Uint8Array): void {
    const n = k.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    if (n <= 12) {
      const b = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) b[p++] = k[i];
      this.pos = p;
    } else {
      this.buf.set(k, this.pos);
      this.pos += n;
    }
  }

  byte(c: number): void {
    if (this.pos >= this.buf.length) this.grow(1);
    this.buf[this.pos++] = c;
  }

  /** Text known to be printable ASCII (keys, constants, formatted times): copied as is. */
  ascii(s: string): void {
    const n = s.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Any text, UTF-8 encoded, not quoted or escaped (a text-format line). */
  utf8(s: string): void {
    this.reserve(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** A non-negative integer below 2^53, in decimal. */
  uint(n: number): void {
    const d = n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 0;
    if (d === 0) {
      this.bigUint(n);
      return;
    }
    if (this.pos + d > this.buf.length) this.grow(d);
    const b = this.buf;
    let p = this.pos + d;
    this.pos = p;
    let x = n | 0;
    while (x >= 10) {
      const q = (x / 10) | 0;
      b[--p] = 48 + x - q * 10;
      x = q;
    }
    b[--p] = 48 + x;
  }

  private bigUint(n: number): void {
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    if (this.pos + digits > this.buf.length) this.grow(digits);
    const b = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    let x = n;
    while (x >= 10) {
      const q = Math.floor(x / 10);
      b[--p] = 48 + x - q * 10;
      x = q;
    }
    b[--p] = 48 + x;
  }

  /** A number as String(x) writes it (what a template literal inserts). */
  num(x: number): void {
    if ((x | 0) === x) {
      // An int32 (the common case: cpu, pid, ports, rc). -0 also lands here and prints 0, as String does.
      if (x < 0) {
        this.byte(45);
        this.uint(-x);
      } else this.uint(x);
    } else if (Number.isInteger(x) && x <= MAX_SAFE && x >= -MAX_SAFE) {
      if (x < 0) {
        this.byte(45);
        this.bigUint(-x);
      } else this.bigUint(x);
    } else this.ascii(String(x));
  }

  /** A number as JSON.stringify writes it: non-finite numbers are null. */
  jsonNum(x: number): void {
    if ((x | 0) === x || Number.isFinite(x)) this.num(x);
    else this.ascii('null');
  }

  /** Exactly nine digits, zero-padded (nanoseconds). */
  pad9(n: number): void {
    if (this.pos + 9 > this.buf.length) this.grow(9);
    const b = this.buf;
    let x = n | 0;
    for (let p = this.pos + 8; p >= this.pos; p--) {
      const q = (x / 10) | 0;
      b[p] = 48 + x - q * 10;
      x = q;
    }
    this.pos += 9;
  }

  /** Lower-case hex digits of a u32, no leading zeros (at least one digit); pad to `width`. */
  hex32(v: number, width = 0): void {
    let digits = 1;
    for (let x = v >>> 4; x !== 0; x >>>= 4) digits++;
    if (digits < width) digits = width;
    if (this.pos + digits > this.buf.length) this.grow(digits);
    const b = this.buf;
    let x = v >>> 0;
    for (let p = this.pos + digits - 1; p >= this.pos; p--) {
      b[p] = HEX.charCodeAt(x & 15);
      x >>>= 4;
    }
    this.pos += digits;
  }

  /** A JSON string literal, quoted and escaped as JSON.stringify does. */
  str(s: string): void {
    const n = s.length;
    if (this.pos + n + 2 > this.buf.length) this.grow(n + 2);
    const b = this.buf;
    const start = this.pos;
    let p = start;
    b[p++] = 34;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) {
        // Rare: escapes or non-ASCII. Let JSON.stringify decide, then encode as UTF-8.
        this.pos = start;
        this.utf8(JSON.stringify(s));
        return;
      }
      b[p++] = c;
    }
    b[p++] = 34;
    this.pos = p;
  }

  /**
   * A JSON string literal through a cache of encoded text: object keys, and values that repeat
   * from event to event (addresses, table names, comms) are encoded once.
   */
  strCached(s: string): void {
    let k = strCache.get(s);
    if (k === undefined) {
      if (s.length > 64) {
        this.str(s);
        return;
      }
      if (strCache.size >= 4096) strCache.clear();
      const start = this.pos;
      this.str(s);
      k = Uint8Array.prototype.slice.call(this.buf, start, this.pos); // a copy: buf is reused
      strCache.set(s, k);
      return;
    }
    this.bytes(k);
  }

  /** Any JSON value, as JSON.stringify(v) would write it (plain data fast, the rest delegated). */
  value(v: unknown, depth = 0): void {
    switch (typeof v) {
      case 'string':
        this.strCached(v);
        return;
      case 'number':
        this.jsonNum(v);
        return;
      case 'boolean':
        this.ascii(v ? 'true' : 'false');
        return;
      case 'object':
        break;
      default:
        // undefined, functions, symbols, bigints: whatever JSON.stringify does (or throws).
        this.utf8(String(JSON.stringify(v)));
        return;
    }
    if (v === null) {
      this.ascii('null');
      return;
    }
    if (depth > 32) {
      this.utf8(JSON.stringify(v)); // deep or cyclic: JSON.stringify's answer, or its TypeError
      return;
    }
    if (Array.isArray(v)) {
      this.byte(91);
      for (let i = 0; i < v.length; i++) {
        if (i > 0) this.byte(44);
        const x: unknown = v[i];
        if (x === undefined || typeof x === 'function' || typeof x === 'symbol') this.ascii('null');
        else this.value(x, depth + 1);
      }
      this.byte(93);
      return;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if ((proto !== Object.prototype && proto !== null) || typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      this.utf8(JSON.stringify(v));
      return;
    }
    const o = v as Record<string, unknown>;
    this.byte(123);
    let first = true;
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      if (!first) this.byte(44);
      first = false;
      this.strCached(k);
      this.byte(58);
      this.value(x, depth + 1);
    }
    this.byte(125);
  }
}
