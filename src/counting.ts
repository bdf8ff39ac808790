// Counting mode: each traced drop only adds to a perf counter in the kernel (no ring, no
// sample, no wake-up: what `perf stat` does), and the counts are read when asked, at a scrape
// or a refresh. The events and their in-kernel filters come from the same plan as a trace.
import { onlineCpus } from './cpus.js';
import { fromNativeError, RxtraceError } from './errors.js';
import { loadNative, type NativePerfCounters } from './native.js';
import { buildPlan, type EventPlan, type PlanOptions } from './plan.js';

export interface DropCountersOptions extends PlanOptions {
  /** CPUs to count on (default: every online CPU). */
  cpus?: number[];
}

/** Per-tracepoint drop counts, read on demand. */
export class DropCounters {
  /** `system:name` of each counted event, in read() order. */
  readonly events: string[];
  private native?: NativePerfCounters;

  constructor(
    readonly plan: EventPlan,
    native: NativePerfCounters,
  ) {
    this.events = plan.events.map((e) => e.compiled.event);
    this.native = native;
  }

  /** Each event's count since the counters opened. Throws RxtraceError (EBADF once closed). */
  read(): Map<string, number> {
    if (!this.native) throw new RxtraceError('EBADF', 'the drop counters are closed', { hint: 'open them again with openCounters()' });
    const counts = this.native.read();
    return new Map(this.events.map((e, i) => [e, counts[i]]));
  }

  /** Close every counting fd. Idempotent. */
  close(): void {
    this.native?.close();
    this.native = undefined;
  }
}

/**
 * Open counting fds for the plan's events on every CPU, with their filters. An event whose
 * `--port` cannot be applied in the kernel (no port field) is left out with a notice: events
 * mode filters those by the matched socket, which a count cannot do.
 */
export async function openCounters(options: DropCountersOptions = {}): Promise<DropCounters> {
  const notice = options.notice ?? ((m: string) => process.stderr.write(`rxtrace: ${m}\n`));
  const full = await buildPlan({ ...options, notice });
  const unfiltered = full.events.filter((e) => e.portInUserSpace).map((e) => e.compiled.event);
  const plan: EventPlan = { ...full, events: full.events.filter((e) => !e.portInUserSpace) };
  if (plan.events.length === 0) {
    throw new RxtraceError('EBADFILTER', `--port ${options.port}: none of ${unfiltered.join(', ')} has a port field, so counting mode cannot filter them in the kernel`, {
      hint: 'use --mode events, which filters those by the socket each drop matched',
    });
  }
  if (unfiltered.length) notice(`--port ${options.port}: not counting ${unfiltered.join(', ')} (no port field to filter on in the kernel; --mode events filters them by socket)`);
  const cpus = options.cpus ?? onlineCpus();
  const byId = new Map(plan.events.map((e) => [e.compiled.schema.id, e]));
  try {
    const native = new (loadNative().PerfCounters)({ events: plan.events.map((e) => ({ id: e.compiled.schema.id, filter: e.filter })), cpus });
    const counters = new DropCounters(plan, native);
    if (full.startNotice) notice(full.startNotice);
    return counters;
  } catch (e) {
    throw fromNativeError(e, {
      eventName: (id) => byId.get(id)?.compiled.event,
      filterFor: (id) => byId.get(id)?.filter,
      fieldsOf: (id) => byId.get(id)?.compiled.schema.fields.filter((f) => !f.common).map((f) => f.name) ?? [],
      fdCount: plan.events.length * cpus.length,
    });
  }
}
