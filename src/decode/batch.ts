// Walk one batch from the addon (layout in src/native.ts) and turn each record into a
// DropEvent or LostEvent. Malformed records are counted, never thrown: a bad record must not
// take the trace down.
import { u64 } from './bytes.js';
import type { CompiledEvent } from './compile.js';
import type { WallClock } from './clock.js';
import type { DropEvent, LostEvent } from './events.js';

export const PERF_RECORD_LOST = 2;
export const PERF_RECORD_SAMPLE = 9;
/** The addon's own record: `count` identical samples of one drain (see src/native.ts). */
export const RECORD_AGGREGATE = 0x10001;
/** The addon's own record (a quiet ring, or at close): hits the events counted with no sample written and no loss reported. */
export const RECORD_UNSAMPLED = 0x10002;

/** Where BatchDecoder puts what it decodes (not native BatchSink, which hands raw batches to JS). */
export interface DecodeSink {
  drop(ev: DropEvent): void;
  lost(ev: LostEvent): void;
}

export interface DecodeCounters {
  samples: number;
  lost: number;
  /** Records too short for their schema, or whose id matches no opened event. */
  malformed: number;
}

export class BatchDecoder {
  private readonly byId = new Map<number, CompiledEvent>();
  readonly counters: DecodeCounters = { samples: 0, lost: 0, malformed: 0 };
  private readonly le: boolean;

  constructor(
    events: CompiledEvent[],
    private readonly clock: WallClock,
    le = true,
  ) {
    for (const e of events) this.byId.set(e.schema.id, e);
    this.le = le;
  }

  decode(buf: ArrayBuffer, sink: DecodeSink): void {
    const dv = new DataView(buf);
    const u8 = new Uint8Array(buf);
    const le = this.le;
    const end = buf.byteLength;
    let off = 0;
    while (off + 16 <= end) {
      const cpu = dv.getUint32(off, le);
      const type = dv.getUint32(off + 8, le);
      const size = dv.getUint16(off + 14, le);
      const recEnd = off + 8 + size;
      if (size < 8 || recEnd > end) {
        this.counters.malformed++;
        return; // the rest of the batch cannot be framed
      }
      if (type === PERF_RECORD_SAMPLE) {
        this.sample(dv, u8, off, recEnd, cpu, sink);
      } else if (type === RECORD_AGGREGATE) {
        this.aggregate(dv, u8, off, recEnd, cpu, sink);
      } else if ((type === PERF_RECORD_LOST || type === RECORD_UNSAMPLED) && size >= 24) {
        const lost = u64(dv, off + 24, le);
        this.counters.lost += lost;
        const e: LostEvent = { time: this.clock.iso(nowMonoNs()), event: 'lost', cpu, lost };
        if (type === RECORD_UNSAMPLED) e.cause = 'unsampled';
        sink.lost(e);
      }
      off = recEnd;
    }
    if (off !== end) this.counters.malformed++;
  }

  /** One event standing for `count` samples: the first one's values, `lastMonoNs` the last one's time. */
  private aggregate(dv: DataView, u8: Uint8Array, off: number, recEnd: number, cpu: number, sink: DecodeSink): void {
    const le = this.le;
    const inner = off + 32;
    if (inner + 16 > recEnd || inner + 8 + dv.getUint16(inner + 14, le) !== recEnd || dv.getUint32(inner + 8, le) !== PERF_RECORD_SAMPLE) {
      this.counters.malformed++;
      return;
    }
    const count = u64(dv, off + 16, le);
    const lastMonoNs = u64(dv, off + 24, le);
    // The reader writes counts from 1 up; anything else is not a record of ours.
    if (count < 1 || !Number.isSafeInteger(count)) {
      this.counters.malformed++;
      return;
    }
    const before = this.counters.samples;
    this.sample(dv, u8, inner, recEnd, cpu, {
      drop: (e) => {
        e.count = count;
        e.lastMonoNs = lastMonoNs;
        sink.drop(e);
      },
      lost: sink.lost,
    });
    // sample() counted one; the record stands for `count`.
    if (this.counters.samples > before) this.counters.samples += count - 1;
  }

  private sample(dv: DataView, u8: Uint8Array, off: number, recEnd: number, cpu: number, sink: DecodeSink): void {
    const le = this.le;
    if (off + 44 > recEnd) {
      this.counters.malformed++;
      return;
    }
    const rawSize = dv.getUint32(off + 40, le);
    const base = off + 44;
    if (base + rawSize > recEnd || rawSize < 2) {
      this.counters.malformed++;
      return;
    }
    const id = dv.getUint16(base, le);
    const ev = this.byId.get(id);
    if (!ev || rawSize < ev.minRawSize) {
      this.counters.malformed++;
      return;
    }
    const monoNs = u64(dv, off + 24, le);
    this.counters.samples++;
    // Payload fields are read now (the batch is not kept); their strings are made on demand.
    sink.drop(new ev.Drop(this.clock, dv.getUint32(off + 32, le), dv.getUint32(off + 16, le), dv.getUint32(off + 20, le), monoNs, dv, u8, base, rawSize));
  }
}

/** CLOCK_MONOTONIC now, in ns (libuv's hrtime is CLOCK_MONOTONIC on Linux). */
export function nowMonoNs(): number {
  return Number(process.hrtime.bigint());
}
