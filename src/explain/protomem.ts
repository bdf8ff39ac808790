// The protocol's memory: every UDP socket together may hold at most udp_mem[2] pages (shared by
// UDP and UDP-Lite, IPv4 and IPv6); past it, a datagram is dropped even when its socket's own
// buffer has room (MemErrors, udp_fail_queue_rcv_skb rc -105, sock_exceed_buf_limit). tcp_mem is
// the same for TCP, where the kernel prunes or drops instead. The usage is sockstat's `mem`.
import { bytes, sysctlFix } from './format.js';
import { socketDropsAreProtoMem } from './socket.js';
import type { ExplainInput, Finding } from './types.js';

function udpMemErrors(input: ExplainInput): number {
  let n = 0;
  for (const r of input.interval.reconcile) n += r.MemErrors ?? 0;
  return n;
}

export function protoMemFindings(input: ExplainInput): Finding[] {
  const out: Finding[] = [];
  const exceed = input.traced?.exceed ?? {};
  const udpExceed = (exceed.UDP ?? 0) + (exceed.UDPv6 ?? 0) + (exceed.UDPLITE ?? 0) + (exceed.UDPLITEv6 ?? 0);
  const memErrors = udpMemErrors(input);
  const sockets = input.interval.delta.sockets.filter((s) => (s.table === 'udp' || s.table === 'udp6') && socketDropsAreProtoMem(input, s.inode, s.netns));
  const socketDrops = sockets.reduce((a, s) => a + s.drops, 0);
  const page = input.interval.gauges.page_size;
  if (memErrors > 0 || udpExceed > 0 || socketDrops > 0) {
    const limits = input.sysctl['net.ipv4.udp_mem'] ?? input.interval.gauges.udp_mem;
    const used = input.interval.gauges.sockstat.UDP?.mem;
    const drops = Math.max(memErrors, socketDrops);
    const evidence: Record<string, unknown> = {
      MemErrors: memErrors,
      sock_exceed_buf_limit: udpExceed,
      udp_mem: limits ?? null,
      sockstat_UDP_mem: used ?? null,
      page_size: page,
      sockets: sockets.slice(0, 5).map((s) => ({ inode: s.inode, local: s.local, drops: s.drops, rx_queue: input.interval.gauges.sockets[String(s.inode)]?.rx_queue ?? null, owners: s.owners })),
    };
    const fixes = [];
    if (limits) {
      // Scale all three thresholds so the max is at least twice both today's max and the usage seen.
      const factor = Math.max(2, Math.ceil((2 * (used ?? 0)) / Math.max(1, limits[2])));
      const next = limits.map((v) => v * factor).join(' ');
      fixes.push(sysctlFix('net.ipv4.udp_mem', limits.join(' '), next, `give UDP more memory in total (pages of ${page} bytes; the max is ${bytes(limits[2] * page)} today)`));
    }
    fixes.push({ kind: 'app' as const, text: 'or hold less: sockets that queue a lot (the largest rx_queue above) read faster or use a smaller SO_RCVBUF, since the sum of every UDP socket\'s queue is what udp_mem caps' });
    const top = sockets[0];
    out.push({
      place: 'udp',
      cause: 'udp_mem',
      drops,
      socket: sockets.length === 1 ? { table: top.table, inode: top.inode, local: top.local, remote: top.remote, netns: top.netns, owners: top.owners } : null,
      evidence,
      fixes,
      summary: `UDP as a whole is out of memory (udp_mem): ${drops} datagrams dropped although their sockets had room; sockstat UDP mem ${used ?? '?'} pages against udp_mem max ${limits?.[2] ?? '?'} pages${sockets.length ? `, ${sockets.length} socket(s) hit` : ''}`,
    });
  }
  const tcpExceed = (exceed.TCP ?? 0) + (exceed.TCPv6 ?? 0);
  if (tcpExceed > 0) {
    const limits = input.sysctl['net.ipv4.tcp_mem'];
    const fixes = [];
    if (limits) fixes.push(sysctlFix('net.ipv4.tcp_mem', limits.join(' '), limits.map((v) => v * 2).join(' '), 'give TCP more memory in total (pages)'));
    fixes.push({ kind: 'app' as const, text: 'or find the connections that hold the memory: ss -tm (skmem r, the receive queues) and read them faster' });
    out.push({
      place: 'tcp',
      cause: 'tcp_mem',
      drops: 0,
      socket: null,
      evidence: { sock_exceed_buf_limit: tcpExceed, tcp_mem: limits ?? null, page_size: page },
      fixes,
      summary: `TCP hit its global memory limit (tcp_mem) ${tcpExceed} times: the kernel then prunes receive queues and drops segments`,
    });
  }
  return out;
}
