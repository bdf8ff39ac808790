// Issue 13, live: TCP listen overflows. A listener with listen(fd, 1) that never accepts, flooded
// with non-blocking connects. The kernel fires no per-packet drop event for them (the SYN at a
// full accept queue is consumed, not freed with a reason: KERNEL.md), so rxtrace reports them
// from the counters: TcpExt ListenOverflows/ListenDrops in `stats` (equal to nstat's), and the
// listener's sk_drops through sock_diag in `sockets --proto tcp` (equal to `ss -ltm`'s d), with
// its owner, and in `stats` as the socket whose drops rose. How the drop is made: docs/tcp-drops.md.
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { assertBuilt, runCli, stopAllCli, startCli, TIME_SCALE } from '../helpers/cli.js';
import { describeLive } from '../helpers/live.js';
import { nstat, pollUntil } from '../helpers/procnet-read.js';
import { freePort } from '../helpers/ports.js';
import { STORM, ssDrops, startListener, stopAllListeners } from '../helpers/tcp-listener.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Json = Record<string, any>;

describeLive('TCP listen overflows: counters and the listener socket (sock_diag)', () => {
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    await stopAllCli();
    stopAllListeners();
  });

  it('listen(fd, 1) never accepting, 200 connects: stats TcpExt = nstat, the listener with drops = ss -ltm and its owner', async () => {
    const l = await startListener();
    const n0 = nstat();
    // The intervals must enclose the storm, however long rxtrace takes to start (seconds under
    // qemu TCG): the storm waits for the first interval, and stats runs two whole intervals
    // past the storm's end. Their sum is the rise from the first read to the last.
    const stats = startCli(['stats', '-i', '1', '--format', 'ndjson']);
    await stats.waitForLines(1);
    execFileSync('python3', ['-c', STORM, String(l.port)]);
    await stats.waitForLines(stats.lines.length + 2);
    stats.signal('SIGINT');
    const r = await stats.exited;
    expect(r.code, r.stderr).toBe(0);
    await sleep(200);
    const n1 = nstat();
    const ivs = r.stdout.trim().split('\n').map((x) => JSON.parse(x) as Json);
    const sum = (f: (iv: Json) => number | undefined) => ivs.reduce((n, iv) => n + (f(iv) ?? 0), 0);
    const mine = ivs.flatMap((iv) => (iv.delta.sockets as Json[]).filter((s) => s.inode === l.inode));
    const iv = {
      tcp: {
        TcpExt: { ListenOverflows: sum((x) => x.tcp?.TcpExt.ListenOverflows), ListenDrops: sum((x) => x.tcp?.TcpExt.ListenDrops) },
        drops: sum((x) => x.tcp?.drops),
        socket_drops: sum((x) => x.tcp?.socket_drops),
      },
    };
    const inStats: Json | undefined = mine.length > 0 ? { ...mine[0], drops: mine.reduce((n, s) => n + s.drops, 0) } : undefined;
    const overflows = n1.TcpExtListenOverflows - n0.TcpExtListenOverflows;
    const drops = n1.TcpExtListenDrops - n0.TcpExtListenDrops;
    const ss = ssDrops(l.port);
    const sockets = await runCli(['sockets', '--proto', 'tcp', '--format', 'ndjson']);
    expect(sockets.code, sockets.stderr).toBe(0);
    const row = sockets.stdout.split('\n').filter(Boolean).map((x) => JSON.parse(x) as Json).find((x) => x.inode === l.inode);
    console.log(`[tcp-listen] port ${l.port}: nstat ListenOverflows +${overflows} ListenDrops +${drops}; stats (${ivs.length} intervals) ${JSON.stringify(iv.tcp)}; ss d${ss}; sockets row ${JSON.stringify(row)}; stats socket ${JSON.stringify(inStats)}`);
    expect(overflows).toBeGreaterThan(100);
    // The stats interval encloses the storm; nstat's reads enclose the interval.
    expect(iv.tcp.TcpExt.ListenOverflows).toBe(overflows);
    expect(iv.tcp.TcpExt.ListenDrops).toBe(drops);
    expect(iv.tcp.drops).toBeGreaterThanOrEqual(drops);
    // The listener: sk_drops as ss shows it, its queue against its backlog, its owner.
    expect(row).toMatchObject({ table: 'tcp', state_name: 'LISTEN', drops: ss, backlog: 1, local: `127.0.0.1:${l.port}` });
    expect(row!.owners).toContainEqual(expect.objectContaining({ pid: l.pid, comm: 'rxt-listener' }));
    expect(ss).toBe(drops); // a new listener: all of ListenDrops is its own (a quiet machine)
    // stats names the socket whose drops rose: the listener, with its owner.
    expect(inStats).toMatchObject({ table: 'tcp', drops: ss });
    expect(inStats!.owners).toContainEqual(expect.objectContaining({ pid: l.pid, comm: 'rxt-listener' }));
    expect(iv.tcp.socket_drops).toBeGreaterThanOrEqual(ss);
    // text form, as ss -tam: Recv-Q is the accept queue, Send-Q the backlog
    const text = await runCli(['sockets', '--proto', 'tcp', '--format', 'text']);
    expect(text.stdout).toMatch(new RegExp(`tcp\\s+LISTEN\\s+\\d+\\s+1\\s+127\\.0\\.0\\.1:${l.port}\\s+0\\.0\\.0\\.0:0\\s+${ss}\\s+${l.inode}\\s+\\d+\\s+rxt-listener\\[${l.pid}\\]`));
    l.stop();
  });

  it('rxtrace top during a connect storm names the overflowing listener and its process, and shows the tcp line', async () => {
    const l = await startListener();
    // As above: the storm waits for top's first screen, and top draws two more after it.
    const top = startCli(['top', '-i', '1']);
    const screens = () => top.lines.filter((x) => x.startsWith('rxtrace top ')).length;
    await top.waitForLines(1);
    execFileSync('python3', ['-c', STORM, String(l.port)]);
    const after = screens() + 2;
    await pollUntil(screens, (n) => n >= after, 20_000 * TIME_SCALE);
    top.signal('SIGINT');
    const r = await top.exited;
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((x) => x.includes(`127.0.0.1:${l.port}`));
    console.log(`[tcp-listen] top rows for ${l.port}:\n${rows.join('\n')}`);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row).toMatch(new RegExp(`\\btcp\\s+127\\.0\\.0\\.1:${l.port}\\s+rxt-listener\\[${l.pid}\\]`));
    // at least one refresh saw its drops rise (a rate above 0)
    expect(rows.some((x) => /^\s*[1-9][\d.]*[kM]?\*?\s/.test(x))).toBe(true);
    expect(r.stdout).toMatch(/^\s+tcp\s+.*ListenDrops [1-9]/m);
    l.stop();
  });

  it('serve: TcpExt listen counters rise with nstat, and the listener is a socket series with its drops and owner', async () => {
    const l = await startListener();
    const port = await freePort(); // free for UDP; serve binds TCP on it, and says so if it cannot
    const serve = startCli(['serve', '--listen', `127.0.0.1:${port}`]);
    const scrape = async (): Promise<string> => {
      for (let i = 0; i < 50 * TIME_SCALE; i++) {
        try {
          return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        } catch {
          await sleep(100);
        }
      }
      throw new Error(`serve did not answer on ${port}: ${serve.stderr()}`);
    };
    const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    const m0 = await scrape();
    const n0 = nstat();
    execFileSync('python3', ['-c', STORM, String(l.port)]);
    await sleep(300);
    const n1 = nstat();
    const m1 = await scrape();
    serve.signal('SIGTERM');
    await serve.exited;
    const d = metric(m1, 'rxtrace_tcpext_listen_overflows_total') - metric(m0, 'rxtrace_tcpext_listen_overflows_total');
    const series = m1.split('\n').find((x) => x.startsWith('rxtrace_socket_drops_total{') && x.includes(`local="127.0.0.1:${l.port}"`));
    const ss = ssDrops(l.port);
    console.log(`[tcp-listen] serve: ListenOverflows +${d} (nstat +${n1.TcpExtListenOverflows - n0.TcpExtListenOverflows}), ${series}, ss d${ss}`);
    expect(d).toBe(n1.TcpExtListenOverflows - n0.TcpExtListenOverflows);
    expect(d).toBeGreaterThan(100);
    expect(series).toMatch(/table="tcp"/);
    expect(series).toMatch(/comm="rxt-listener"/);
    expect(Number(series!.split(' ').pop())).toBe(ss);
    l.stop();
  });
});
