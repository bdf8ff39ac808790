// `serve --labels unit,container,pod`: owner labels on the per-socket and per-drop series, off by
// default because each multiplies the series a socket can have (cardinality is the user's
// choice). Values are every owner's, sorted, unique and comma-joined like `comm`; a container is
// its 12-hex short id (as docker ps shows it), '' when the owner's cgroup path shows none.
import { InvalidArgumentError } from 'commander';
import type { SocketOwner } from '../decode/events.js';

export const OWNER_LABELS = ['unit', 'container', 'pod'] as const;
export type OwnerLabel = (typeof OWNER_LABELS)[number];

/** `--labels unit,container` → ['unit', 'container']; anything else is a usage error. */
export function labelsOption(v: string, prev: OwnerLabel[] = []): OwnerLabel[] {
  const out = [...prev];
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(OWNER_LABELS as readonly string[]).includes(part)) {
      throw new InvalidArgumentError(`--labels takes ${OWNER_LABELS.join(', ')} (comma-separated), got "${part}"`);
    }
    if (!out.includes(part as OwnerLabel)) out.push(part as OwnerLabel);
  }
  return out;
}

function value(o: SocketOwner, label: OwnerLabel): string {
  if (label === 'container') return o.container?.slice(0, 12) ?? '';
  return o[label] ?? '';
}

export function ownerLabelValues(owners: readonly SocketOwner[], labels: readonly OwnerLabel[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) out[l] = [...new Set(owners.map((o) => value(o, l)).filter(Boolean))].sort().join(',');
  return out;
}
