// `rxtrace --version [--format ndjson|text]`: the version, the commit, how this copy runs (npm
// package or single executable) and, in NDJSON, the contract versions. Handled before commander,
// whose own --version prints a bare version and exits before it would read --format.
import { CONTRACTS, buildInfo } from '../version.js';
import { RxtraceError } from '../errors.js';

/**
 * The output format when `args` (argv without node and the script) ask for the version: only
 * --version/-V and --format, in any order. undefined for anything else (commander's business).
 */
export function versionRequest(args: string[]): 'ndjson' | 'text' | undefined {
  if (!args.some((a) => a === '--version' || a === '-V')) return undefined;
  let format: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--version' || a === '-V') continue;
    if (a === '--format' && i + 1 < args.length) format = args[++i];
    else if (a.startsWith('--format=')) format = a.slice('--format='.length);
    else return undefined;
  }
  if (format === undefined) return 'text';
  if (format !== 'ndjson' && format !== 'text') {
    throw new RxtraceError('EUSAGE', `--format is ndjson or text, got "${format}"`, { hint: 'rxtrace --version --format ndjson' });
  }
  return format;
}

export function versionText(format: 'ndjson' | 'text'): string {
  const b = buildInfo();
  const commit = `${b.commit}${b.dirty ? '-dirty' : ''}`;
  const runtime = b.runtime === 'sea' ? 'single executable' : 'npm package';
  if (format === 'text') return `rxtrace ${b.version} (commit ${commit}, ${runtime}, Node ${process.versions.node}, ${process.platform}-${process.arch})\n`;
  return (
    JSON.stringify({
      event: 'version',
      version: b.version,
      commit: b.commit,
      dirty: b.dirty,
      runtime: b.runtime,
      node: process.versions.node,
      platform: `${process.platform}-${process.arch}`,
      contracts: CONTRACTS,
    }) + '\n'
  );
}
