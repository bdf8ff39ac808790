// Signals for long-running commands: the first SIGINT/SIGTERM/SIGHUP asks for a clean stop
// (summary, fds closed, exit 0); a second SIGINT during shutdown exits at once with 130.
import { EXIT } from './exit-codes.js';

export function onStopSignals(stop: (signal: NodeJS.Signals) => void): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (signal === 'SIGINT') {
        process.stderr.write('rxtrace: interrupted again during shutdown; exiting now\n');
        process.exit(EXIT.INTERRUPTED);
      }
      return;
    }
    stopping = true;
    stop(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
