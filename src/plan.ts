// Turn what a user asked for (event names, --filter, --port, --reason) into an event plan:
// each event's schema from this kernel's format file, its compiled reader, and its kernel
// filter. Everything is checked here, before a single perf fd is opened.
import { RxtraceError } from './errors.js';
import { compileSchema, type CompiledEvent } from './decode/compile.js';
import { parseFormat } from './format/parse.js';
import { FormatParseError, type EventSchema } from './format/schema.js';
import { andFilters, filterableFields, filterFields, portField, reasonFilter, validateFilterText } from './filter.js';
import { fullName, listEvents, readEventFiles, resolveEventName } from './tracefs/events.js';
import { withTracefs, type TracefsOptions } from './tracefs/locate.js';
import { kfreeLacksUdp6Reasons, udp6EventFires, udp6KfreeFilter } from './plan-udp6.js';
import { TCP_EVENTS, tcpReasons } from './plan-tcp.js';
import type { SocketTable } from './procnet/sockets.js';

/** The source article's three socket-level drop tracepoints. */
export const DEFAULT_EVENTS = ['udp:udp_fail_queue_rcv_skb', 'sock:sock_rcvqueue_full', 'sock:sock_exceed_buf_limit'];

export interface PlanOptions {
  /** Events to trace in addition to the defaults (or instead, with `only`). */
  events?: string[];
  /** Trace exactly `events`, without the three defaults. */
  only?: boolean;
  filter?: string;
  port?: number;
  reasons?: string[];
  tracefs?: TracefsOptions;
  /** Called with a line a user should see (a mount made, an event left out). */
  notice?: (message: string) => void;
  /**
   * The default event set: `udp` (the three socket-level UDP/ping tracepoints) or `tcp`
   * (skb:kfree_skb filtered to this kernel's TCP receive reasons, and sock_exceed_buf_limit).
   */
  proto?: 'udp' | 'tcp';
  /** `uname -r` of the kernel the plan is for (default: this one); decides the IPv6 fallback. */
  kernelRelease?: string;
}

export interface PlannedEvent {
  compiled: CompiledEvent;
  filter?: string;
  /** Set when `--port` could not be applied in the kernel (no port field): the caller filters by socket. */
  portInUserSpace?: boolean;
}

export interface EventPlan {
  events: PlannedEvent[];
  /** Events asked for by default that this kernel lacks (traced without them). */
  missing: string[];
  port?: number;
  /**
   * Set when this kernel fires no udp event for IPv6 drops (before 6.5) and skb:kfree_skb was
   * added, filtered to IPv6 socket-reason drops, to see them (plan-udp6.ts).
   */
  udp6Fallback?: boolean;
  /**
   * What the IPv6 fallback decided, for the user: said once tracing has started (openTracer,
   * openCounters), so that a start-up error stays one line.
   */
  startNotice?: string;
}

export async function buildPlan(opts: PlanOptions): Promise<EventPlan> {
  const notice = opts.notice ?? ((m: string) => process.stderr.write(`rxtrace: ${m}\n`));
  if (opts.filter !== undefined) validateFilterText(opts.filter);
  if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)) {
    throw new RxtraceError('EBADPORT', `port ${opts.port} is not a port number (0-65535)`, { hint: 'give --port a number such as 5000' });
  }
  const defaults = opts.proto === 'tcp' ? TCP_EVENTS : DEFAULT_EVENTS;
  const requested = [...(opts.only ? [] : defaults), ...(opts.events ?? [])];
  if (opts.reasons?.length && !requested.some((e) => /(^|:)kfree_skb$/.test(e))) {
    requested.push('skb:kfree_skb');
    notice('--reason given: tracing skb:kfree_skb too');
  }
  if (requested.length === 0) throw new RxtraceError('EUNKNOWNEVENT', 'no events to trace', { hint: 'name events with -e, or drop --only' });

  return withTracefs({ notice, ...opts.tracefs }, (root) => {
    const available = listEvents(root);
    const missing: string[] = [];
    const schemas: EventSchema[] = [];
    const seen = new Set<string>();
    for (const name of requested) {
      const isDefault = !opts.only && defaults.includes(name) && !(opts.events ?? []).includes(name);
      let ref;
      try {
        ref = resolveEventName(name, available);
      } catch (e) {
        // A default tracepoint this kernel lacks is noted, not fatal; a named one is an error.
        if (isDefault) {
          missing.push(name);
          continue;
        }
        throw e;
      }
      if (seen.has(fullName(ref))) continue;
      seen.add(fullName(ref));
      const files = readEventFiles(root, ref);
      let schema: EventSchema;
      try {
        schema = parseFormat(files.format, ref.system, `${root}/events/${ref.system}/${ref.name}/format`);
      } catch (e) {
        if (e instanceof FormatParseError) {
          throw new RxtraceError('EFORMAT', `cannot read the layout of ${fullName(ref)}: ${e.message}`, {
            hint: 'the format file is malformed or truncated; check it with cat, and report the kernel version',
            cause: e,
          });
        }
        throw e;
      }
      if (schema.id !== files.id) schema = { ...schema, id: files.id };
      schemas.push(schema);
    }
    if (schemas.length === 0) {
      // Only defaults can be missing without a throw above, so the user named no event that
      // exists: tracing is unavailable here (69), not a usage error, and there are no "others".
      throw new RxtraceError('ENOTRACEPOINT', `this kernel has none of rxtrace's default tracepoints: ${root}/events lacks ${missing.join(', ')}`, {
        path: `${root}/events`,
        hint: `name tracepoints it has with -e; ls ${root}/events/* lists them`,
        details: { missing },
      });
    }
    if (missing.length) notice(`this kernel lacks ${missing.join(', ')}; tracing the others`);
    let said: string | undefined;
    const fallback = udp6Fallback(root, available, schemas, opts, (m) => (said = m));
    if (fallback) schemas.push(fallback.schema);
    const plan = planFilters(schemas, opts, missing, notice, fallback);
    if (fallback && plan.events.some((e) => e.compiled.event === 'skb:kfree_skb')) plan.udp6Fallback = true;
    if (said !== undefined) plan.startNotice = said;
    return plan;
  });
}

/**
 * Before 6.5 IPv6 UDP drops fire no udp event: trace kfree_skb too, for IPv6 socket-reason drops
 * only (unless the user traces kfree_skb already, or asked for exactly their events).
 */
function udp6Fallback(root: string, available: string[], schemas: EventSchema[], opts: PlanOptions, notice: (m: string) => void): { schema: EventSchema; filter: string } | undefined {
  if (opts.only) return undefined;
  const udp = schemas.find((s) => s.system === 'udp' && s.name === 'udp_fail_queue_rcv_skb');
  if (!udp || schemas.some((s) => s.name === 'kfree_skb') || udp6EventFires(udp, opts.kernelRelease)) return undefined;
  let ref;
  try {
    ref = resolveEventName('skb:kfree_skb', available);
  } catch {
    notice('this kernel fires no udp:udp_fail_queue_rcv_skb for IPv6 UDP drops (before 6.5) and has no skb:kfree_skb: IPv6 UDP drops are seen only in the counters (rxtrace stats)');
    return undefined;
  }
  let files;
  let schema: EventSchema;
  try {
    files = readEventFiles(root, ref);
    schema = parseFormat(files.format, ref.system, `${root}/events/${ref.system}/${ref.name}/format`);
  } catch (e) {
    notice(`this kernel fires no udp:udp_fail_queue_rcv_skb for IPv6 UDP drops (before 6.5), and skb:kfree_skb cannot be read (${e instanceof Error ? e.message : String(e)}): IPv6 UDP drops are seen only in the counters (rxtrace stats)`);
    return undefined;
  }
  const filter = udp6KfreeFilter(schema);
  if (!filter) {
    notice(`this kernel fires no udp:udp_fail_queue_rcv_skb for IPv6 UDP drops (before 6.5), and its skb:kfree_skb ${kfreeLacksUdp6Reasons(schema)}: IPv6 UDP drops are seen only in the counters (rxtrace stats)`);
    return undefined;
  }
  notice('this kernel fires no udp:udp_fail_queue_rcv_skb for IPv6 UDP drops (before 6.5): tracing skb:kfree_skb for IPv6 SOCKET_RCVBUFF/PROTO_MEM drops too; they are matched to a socket by whose drops rose (protocol memory: among the UDP and TCP sockets)');
  return { schema: schema.id !== files.id ? { ...schema, id: files.id } : schema, filter };
}

function planFilters(schemas: EventSchema[], opts: PlanOptions, missing: string[], notice: (m: string) => void, fallback?: { schema: EventSchema; filter: string }): EventPlan {
  const userFields = opts.filter !== undefined ? filterFields(opts.filter) : [];
  const out: PlannedEvent[] = [];
  const dropped: string[] = [];
  for (const schema of schemas) {
    const name = `${schema.system}:${schema.name}`;
    const has = new Set(filterableFields(schema));
    let userFilter: string | undefined;
    if (opts.filter !== undefined) {
      if (userFields.every((f) => has.has(f))) userFilter = opts.filter;
      else {
        dropped.push(`${name} (no ${userFields.filter((f) => !has.has(f)).join(', ')})`);
        continue;
      }
    }
    let portFilter: string | undefined;
    let portInUserSpace = false;
    if (opts.port !== undefined) {
      const pf = portField(schema);
      if (pf) portFilter = `${pf} == ${opts.port}`;
      else portInUserSpace = true;
    }
    // --proto tcp without --reason: the TCP receive reasons this kernel has.
    const tcpDefault = opts.proto === 'tcp' && !opts.only && !opts.reasons?.length && schema.name === 'kfree_skb' ? tcpReasons(schema) : [];
    if (opts.proto === 'tcp' && !opts.only && !opts.reasons?.length && schema.name === 'kfree_skb' && tcpDefault.length === 0) {
      // A reason table without them is a stable kernel's early set (5.15.58+: 12 reasons, none TCP).
      const why = schema.symbols.get('reason')?.size ? 'names none of the TCP receive reasons among its drop reasons' : 'has no TCP drop reasons on this kernel (reasons arrived in 5.17)';
      throw new RxtraceError('EBADREASON', `${schema.system}:${schema.name} ${why}`, {
        hint: 'TCP drops show in the counters here: rxtrace stats (TcpExt) and rxtrace sockets --proto tcp',
      });
    }
    const reason = opts.reasons?.length && schema.symbols.has('reason') ? reasonFilter(schema, opts.reasons) : tcpDefault.length ? reasonFilter(schema, tcpDefault) : undefined;
    if (opts.reasons?.length && schema.name === 'kfree_skb' && !reason) reasonFilter(schema, opts.reasons); // throws the clear error
    const udp6 = fallback?.schema === schema ? fallback.filter : undefined;
    out.push({ compiled: compileSchema(schema), filter: andFilters([userFilter, portFilter, reason, udp6]), portInUserSpace });
  }
  if (out.length === 0) {
    const lists = schemas.map((s) => `${s.system}:${s.name}: ${s.fields.filter((f) => !f.common).map((f) => f.name).join(', ')}`);
    throw new RxtraceError('EBADFILTER', `filter "${opts.filter}" uses fields (${userFields.join(', ')}) that no traced event has; fields are: ${lists.join('; ')}`, {
      hint: 'use the kernel\'s field names (they differ between kernels: lport before 6.10, dport after)',
      details: { filter: opts.filter, fields: Object.fromEntries(schemas.map((s) => [`${s.system}:${s.name}`, s.fields.map((f) => f.name)])) },
    });
  }
  if (dropped.length) notice(`filter "${opts.filter}" does not apply to ${dropped.join('; ')}: not tracing those`);
  return { events: out, missing, port: opts.port };
}

/**
 * The UDP tables attribution may read for the `--port` socket only (the start-up read lists just
 * that port's sockets: fast at any scale). A UDP event without a port field scopes nothing. A
 * kfree_skb never has a port: its socket is found by whose `drops` rose, which needs its tables
 * read whole from the start (else the first drops, with no whole read before them, are
 * `ambiguous` and --port drops them): udp6 only for the IPv6 fallback (its kernel filter keeps
 * IPv6 packets only), udp and udp6 for a kfree_skb the user asked for.
 */
export function portScopedTables(plan: EventPlan): SocketTable[] {
  if (plan.port === undefined) return [];
  if (plan.events.some((e) => e.portInUserSpace && e.compiled.schema.system.startsWith('udp'))) return [];
  const kfree = plan.events.some((e) => e.compiled.event === 'skb:kfree_skb');
  if (!kfree) return ['udp', 'udp6'];
  return plan.udp6Fallback ? ['udp'] : [];
}
