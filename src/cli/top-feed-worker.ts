// Worker thread of `rxtrace top` (see top-feed.ts): opens the tracer with attribution, sums
// drops per socket inode in 100 ms slots of sample time, posts finished slots every 250 ms, and
// closes the tracer when the main thread says 'close'.
import { parentPort } from 'node:worker_threads';
import type { DropEvent, SocketInfo } from '../decode/events.js';
import { RxtraceError } from '../errors.js';
import { openTracer, type RxTracer } from '../tracer.js';
import type { FeedMessage, SlotCounts } from './top-feed.js';

const SLOT_NS = 100_000_000;
const POST_MS = 250;
/**
 * Samples older than this have left the per-CPU rings by the time the worker runs (the tracer
 * flushes a quiet ring every 20 ms), unless the pipeline is backed up; then the worker itself
 * runs late, and so does its `doneNs`.
 */
const PIPELINE_NS = 60_000_000;

function post(m: FeedMessage): void {
  parentPort!.postMessage(m);
}

interface Slot {
  sockets: Map<number, number>;
  global: number;
  unattributed: number;
}

async function main(): Promise<void> {
  let tracer: RxTracer;
  // A 'close' while the tracer starts (a stop signal during top's start-up) aborts the start:
  // openTracer undoes what it did (tracefs mount, perf fds) and rejects with ABORT_ERR.
  const startup = new AbortController();
  const onEarlyClose = (m: unknown): void => {
    if (m === 'close') startup.abort();
  };
  parentPort!.on('message', onEarlyClose);
  try {
    // Notices (a tracefs mount made and undone, a tracepoint this kernel lacks) go to the main
    // thread, which shows them in the header: stderr would write over the full screen.
    // aggregate: the reader thread counts identical drops, so a storm of a million drops a
    // second is a few hundred events here (top only counts them).
    tracer = await openTracer({ resolve: true, aggregate: true, notice: (message) => post({ type: 'notice', message }), signal: startup.signal });
    parentPort!.off('message', onEarlyClose);
  } catch (e) {
    const r = e instanceof RxtraceError ? e : undefined;
    post({ type: 'failed', code: r?.code ?? 'EIO', message: (e as Error).message, hint: r?.hint });
    process.exit(0);
  }
  const slots = new Map<number, Slot>();
  const known = new Map<number, string>(); // inode → owners key last sent
  let newSockets: SocketInfo[] = [];
  let rcvbuf: [number, number][] = [];
  let lost = 0;
  let errors = 0;
  let lastError: string | undefined;

  tracer.on('drop', (ev: DropEvent) => {
    const end = (Math.floor(ev.monoNs / SLOT_NS) + 1) * SLOT_NS;
    let slot = slots.get(end);
    if (!slot) slots.set(end, (slot = { sockets: new Map(), global: 0, unattributed: 0 }));
    const s = ev.socket;
    const n = ev.count ?? 1;
    if (s) {
      slot.sockets.set(s.inode, (slot.sockets.get(s.inode) ?? 0) + n);
      const key = s.owners.map((o) => o.pid).join(',');
      if (known.get(s.inode) !== key) {
        known.set(s.inode, key);
        newSockets.push(s);
      }
      // Only this event has sk_rcvbuf; reading `fields` of the others would build them for nothing.
      if (ev.event === 'sock:sock_rcvqueue_full') {
        const rb = ev.fields.sk_rcvbuf;
        if (typeof rb === 'number' && rb > 0) rcvbuf.push([s.inode, rb]);
      }
    } else if (ev.match === 'global') slot.global += n;
    else slot.unattributed += n;
  });
  // Said once each, in the header (e.g. owners that could not be read).
  const warned = new Set<string>();
  tracer.on('warning', (e) => {
    if (warned.has(e.message)) return;
    warned.add(e.message);
    post({ type: 'notice', message: `warning: ${e.message}` });
  });
  tracer.on('lost', (ev) => (lost += ev.lost));
  tracer.on('error', (e) => {
    errors++;
    lastError = e.message;
  });

  const flush = (all: boolean): void => {
    const now = Number(process.hrtime.bigint());
    const out: SlotCounts[] = [];
    for (const [end, slot] of slots) {
      if (!all && end > now) continue; // still filling
      out.push({ endNs: end, sockets: [...slot.sockets], global: slot.global, unattributed: slot.unattributed });
      slots.delete(end);
    }
    out.sort((a, b) => a.endNs - b.endNs);
    // Deduplicate sk_rcvbuf: the last value per inode.
    const rb = [...new Map(rcvbuf)];
    // Posted even when empty: `doneNs` tells the main thread how far the counts are complete.
    post({ type: 'counts', doneNs: now - PIPELINE_NS, slots: out, sockets: newSockets, rcvbuf: rb, lost, errors, lastError });
    newSockets = [];
    rcvbuf = [];
    lost = 0;
  };
  const timer = setInterval(() => flush(false), POST_MS);
  // Forget sockets not seen for a while, so that `known` stays bounded under socket churn.
  const sweep = setInterval(() => known.clear(), 60_000);

  parentPort!.on('message', async (m: unknown) => {
    if (m !== 'close') return;
    clearInterval(timer);
    clearInterval(sweep);
    await tracer.close();
    flush(true);
    post({ type: 'closed' });
    process.exit(0);
  });
  post({ type: 'ready', events: tracer.plan.events.map((e) => e.compiled.event) });
}

void main();
