// `rxtrace explain` for people: one numbered block per finding (what, where, who, the numbers,
// the fixes in order), and the before/after table of --verify.
import type { Finding } from '../explain/types.js';
import type { VerifyLine } from '../explain/index.js';
import { ownersText } from './units.js';

const PLACE: Record<Finding['place'], string> = {
  nic: 'NIC ring',
  softnet: 'softnet',
  ip: 'IP',
  udp: 'UDP memory',
  tcp: 'TCP memory',
  socket: 'socket buffer',
  listener: 'accept queue',
};

function socketLine(f: Finding): string | undefined {
  const s = f.socket;
  if (!s) return undefined;
  return `${s.table} ${s.local} inode ${s.inode}${s.netns !== null ? ` netns ${s.netns}` : ''}, owned by ${ownersText(s.owners, 'no known process')}`;
}

export function findingsText(findings: Finding[], seconds: number): string[] {
  if (findings.length === 0) return [`no receive drops in ${seconds} s: nothing to explain`];
  const lines: string[] = [`${findings.length} finding(s) in ${seconds} s, most drops first:`];
  findings.forEach((f, i) => {
    lines.push('', `${i + 1}. [${PLACE[f.place]}] ${f.cause}: ${f.drops} drops`);
    const s = socketLine(f);
    if (s) lines.push(`   socket: ${s}`);
    for (const o of f.socket?.owners ?? []) {
      const parts = [o.container ? `container ${o.container.slice(0, 12)}` : '', o.pod ? `pod ${o.pod}` : '', o.unit ? `unit ${o.unit}` : '', o.cgroup && o.cgroup !== '/' ? `cgroup ${o.cgroup}` : ''].filter(Boolean);
      if (parts.length) lines.push(`   ${o.comm}[${o.pid}]: ${parts.join(', ')}`);
    }
    lines.push(`   ${f.summary}`);
    f.fixes.forEach((x, k) => lines.push(`   fix ${k + 1}: ${x.text}`));
  });
  return lines;
}

export function verifyText(rows: VerifyLine[]): string[] {
  if (rows.length === 0) return ['verify: no drops in either window'];
  const lines = ['verify: before → after (drops/s)'];
  for (const r of rows) {
    const who = r.socket ? ` ${r.socket.local} inode ${r.socket.inode}` : '';
    lines.push(`  ${r.cause}${who}: ${r.before.per_s}/s → ${r.after.per_s}/s  ${r.result.toUpperCase()}`);
  }
  return lines;
}
