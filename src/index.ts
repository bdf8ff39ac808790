// rxtrace as a library: open a live tracer, read socket tables and counters, typed errors.
export { openTracer, RxTracer, type TracerOptions, type TracerStats, type TraceRecord, type RxTracerEvents } from './tracer.js';
export { DEFAULT_EVENTS, type EventPlan, type PlannedEvent, type PlanOptions } from './plan.js';
export type { DropEvent, LostEvent, SocketInfo, SocketOwner, MatchKind } from './decode/events.js';
export { RxtraceError, isRxtraceError } from './errors.js';
export { readSockets, type SocketSnapshotRow, type ReadSocketsOptions } from './sockets.js';
export {
  readCounters,
  type CounterSnapshot,
  type ReadCountersOptions,
  type SourceError,
  type NetnsSnmp,
  type SoftnetRow,
  type NetDevRow,
  type SnmpCounters,
  type Snmp6Counters,
  type Sockstat,
  type ProtoMem,
  type MemLimits,
} from './counters-api.js';
export { ProcAttributor, type ProcAttributorOptions, type Attributor } from './attribute/index.js';
export { parseFormat } from './format/parse.js';
export { runDoctor, DOCTOR_EVENTS, type DoctorCheck, type DoctorStatus, type DoctorOptions } from './doctor/index.js';
export type { EventSchema, FieldSchema } from './format/schema.js';
