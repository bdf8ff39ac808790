// The `drops` strategy names a socket only because its counter was the one that rose in the
// event's window. A socket the reads never saw (created and closed between two reads, or in a
// namespace not yet known) can drop in the same window, and its drops would then be named on the
// one that rose. The counter bounds that: no more drops are named on a socket by `drops` than
// its counter rose; a window's drops that would pass that bound are all `ambiguous`, not a guess.
import type { TableRead } from './history.js';
import type { Verdict } from './strategies.js';

interface Window {
  before?: TableRead;
  after?: TableRead;
}

interface Credit {
  /** The counter up to which rises were credited, and the read it came from. */
  drops: number;
  at: TableRead;
  /** Rises not yet spent on named drops. */
  left: number;
}

/**
 * Counted per socket, not per window: a drop counts in the counter as it happens and its event is
 * stamped a moment later, so a read can fall between the two and one window's events outnumber
 * its own rise by what the window before had left over. A socket's drops that no event names
 * (other reasons, IPv4 drops of a dual-stack socket) only leave credit: this bound can miss a
 * wrong name, never make one.
 */
export class DropsCap {
  private readonly credit = new Map<number, Credit>();

  /**
   * `verdicts[i]` with match `drops` and its window `windows[i]`, in batch order; `weight[i]`:
   * the drops event i stands for (an aggregate stands for several).
   */
  apply(verdicts: Verdict[], windows: readonly (Window | undefined)[], weight: (i: number) => number): void {
    // Group by socket and window, in order of first appearance.
    const groups = new Map<string, { inode: number; w: Required<Window>; idx: number[]; n: number }>();
    const ids = new WeakMap<TableRead, number>();
    let next = 0;
    const id = (r: TableRead): number => ids.get(r) ?? (ids.set(r, ++next), next);
    for (let i = 0; i < verdicts.length; i++) {
      const v = verdicts[i];
      const w = windows[i];
      if (v.match !== 'drops' || !w?.before || !w.after) continue;
      const key = `${v.row.inode}:${id(w.before)}:${id(w.after)}`;
      let g = groups.get(key);
      if (g === undefined) groups.set(key, (g = { inode: v.row.inode, w: { before: w.before, after: w.after }, idx: [], n: 0 }));
      g.idx.push(i);
      g.n += weight(i);
    }
    for (const g of groups.values()) {
      const a = g.w.after.rows.get(g.inode)?.drops;
      if (a === undefined) continue; // `drops` names only a socket whose counter the after-read shows
      let c = this.credit.get(g.inode);
      if (c === undefined) {
        if (this.credit.size >= 65536) this.credit.clear();
        this.credit.set(g.inode, (c = { drops: g.w.before.rows.get(g.inode)?.drops ?? 0, at: g.w.before, left: 0 }));
      }
      if (g.w.after.startNs > c.at.startNs) {
        c.left += Math.max(0, a - c.drops);
        c.drops = a;
        c.at = g.w.after;
      }
      if (g.n <= c.left) {
        c.left -= g.n;
        continue;
      }
      const amb: Verdict = { match: 'ambiguous', candidates: [g.inode] };
      for (const i of g.idx) verdicts[i] = amb;
    }
  }
}
