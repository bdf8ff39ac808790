// Small formatting helpers shared by the text renderers.
import type { SocketOwner } from '../decode/events.js';

/** 0, 12, 3.5, 950, 1.23k, 950.1k, 1.23M, 4.56G. */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return a >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
  if (a < 1e6) return `${(n / 1e3).toFixed(a < 1e4 ? 2 : 1)}k`;
  if (a < 1e9) return `${(n / 1e6).toFixed(a < 1e7 ? 2 : 1)}M`;
  return `${(n / 1e9).toFixed(2)}G`;
}

/**
 * `comm[pid],comm[pid]`, or `-` for a socket without a known owner. Each owner shows its
 * container's short id (12 hex, as docker and podman print it) or else its systemd unit:
 * `feed[812](ctr 3f6d2a8b9c0e)`, `named[455](named.service)`.
 */
export function ownersText(owners: readonly SocketOwner[], none = '-'): string {
  return owners.length ? owners.map(ownerText).join(',') : none;
}

export function ownerText(o: SocketOwner): string {
  const where = o.container !== undefined ? `(ctr ${o.container.slice(0, 12)})` : o.unit !== undefined ? `(${o.unit})` : '';
  return `${o.comm}[${o.pid}]${where}`;
}
