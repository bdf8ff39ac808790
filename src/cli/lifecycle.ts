// Stop signals for the long-running commands (trace, top, serve, stats).
//
// - main.ts installs the handlers before it loads anything else (installStopSignals), so a
//   SIGINT/SIGTERM/SIGHUP during start-up is never the default action that kills the process
//   in the middle of its work (with tracefs mounted, say). A signal that arrives before a
//   command listens is kept, and handed to the command as soon as it calls onStopSignals().
// - The first stop signal asks for a clean stop: the command stops, prints its summary, closes
//   every fd and exits 0. From then on, output to stdout that makes no progress for
//   FINAL_FLUSH_MS is given up (output.ts), so a stuck reader cannot hold the exit forever.
// - Any second stop signal (SIGINT, SIGTERM or SIGHUP) exits at once with 130.
// - Commands that have no clean stop (sockets, and --help/--version) get the default actions
//   back (restoreDefaultSignals), with a signal that already arrived re-raised.
import { EXIT } from './exit-codes.js';

export type StopListener = (signal: NodeJS.Signals) => void;

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

let installed = false;
let received: NodeJS.Signals | undefined;
/** Whether a command has seen the signal in `received` (else it is still pending). */
let delivered = false;
const listeners = new Set<StopListener>();
const firstSignalHooks = new Set<StopListener>();

function onSignal(signal: NodeJS.Signals): void {
  if (received !== undefined) {
    process.stderr.write(`rxtrace: interrupted again during shutdown (${signal}); exiting now\n`);
    process.exit(EXIT.INTERRUPTED);
  }
  received = signal;
  for (const h of firstSignalHooks) h(signal);
  if (listeners.size === 0) return; // kept for the command that is starting
  delivered = true;
  for (const l of [...listeners]) l(signal);
}

/** Catch SIGINT, SIGTERM and SIGHUP from now on (idempotent). main.ts calls it first of all. */
export function installStopSignals(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

/**
 * The default actions again, for a command that has no clean stop. A stop signal that arrived
 * meanwhile (and that no command has handled) takes effect now.
 */
export function restoreDefaultSignals(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  if (received !== undefined && !delivered) process.kill(process.pid, received);
}

/**
 * Call `stop` on the first stop signal: at once, before this returns, if one already arrived
 * (while rxtrace was loading), so that no start-up work begins; else when it comes. Returns the
 * function that stops listening.
 */
export function onStopSignals(stop: StopListener): () => void {
  installStopSignals();
  let active = true;
  const listener: StopListener = (signal) => {
    if (active) stop(signal);
  };
  listeners.add(listener);
  if (received !== undefined) {
    delivered = true;
    listener(received);
  }
  return () => {
    active = false;
    listeners.delete(listener);
  };
}

/** The first stop signal received, if any. */
export function stopSignalReceived(): NodeJS.Signals | undefined {
  return received;
}

/** Run `hook` once on the first stop signal (at once if it came already). main.ts bounds the output with it. */
export function onFirstStopSignal(hook: StopListener): void {
  firstSignalHooks.add(hook);
  if (received !== undefined) hook(received);
}
