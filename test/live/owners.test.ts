// Issue 14, live: a sink moved into a cgroup the test creates (…/rxtest.slice/docker-<64 hex>.scope
// under this host's cgroup2 mount) drops; `rxtrace trace` names its owner with that cgroup, the
// container id and the unit, `--container <12 hex>` keeps its drops, another id keeps none of
// them (counted as filtered in the summary), and the text format shows the short id. The
// cgroup is removed afterwards. The kernel's own count is the sink's drops column.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { assertBuilt, startCli, stopAllCli } from '../helpers/cli.js';
import { withTestCgroup } from '../helpers/cgroup.js';
import { describeLive } from '../helpers/live.js';
import { settledUdpSocketDrops } from '../helpers/procnet-read.js';
import { addrPort, rxfloodPath, send, startSink, stopAllRxflood } from '../helpers/rxflood.js';
import { release } from 'node:os';
import { parseRelease } from '../helpers/kernel.js';

const N = 300;

describeLive('owners: cgroup, unit and container (live)', () => {
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    await stopAllCli();
    await stopAllRxflood();
  });
  afterAll(async () => {
    await stopAllRxflood();
  });

  it('a sink in a docker-<id>.scope cgroup: owners carry cgroup, unit, container; --container filters', async () => {
    await withTestCgroup(async (cg) => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxcgsink' });
      try {
        cg.add(sink.pid);
        expect(readFileSync(`/proc/${sink.pid}/cgroup`, 'utf8')).toContain(`0::${cg.path}\n`);
        const base = ['trace', '--port', String(sink.port), '--duration', '30'];
        // One after another: each may mount tracefs for its start-up and unmount it again.
        const mine = startCli([...base, '--format', 'ndjson', '--container', cg.containerId.slice(0, 12)]);
        await mine.waitForPerfFds(1);
        const text = startCli([...base, '--format', 'text', '--unit', `docker-${cg.containerId}`]);
        await text.waitForPerfFds(1);
        const other = startCli([...base, '--format', 'ndjson', '--container', cg.containerId[0] === 'f' ? '0' : 'f']);
        await other.waitForPerfFds(1);
        const before = (await settledUdpSocketDrops(sink.inode)) ?? 0;
        await send({ to: addrPort('127.0.0.1', sink.port), count: N });
        const drops = (await settledUdpSocketDrops(sink.inode)) - before;
        expect(drops).toBeGreaterThan(N / 2);
        await mine.waitForLines(drops);
        await text.waitForLines(1);
        await new Promise((r) => setTimeout(r, 500));
        for (const c of [mine, text, other]) c.signal('SIGINT');
        const [rm, rt, ro] = await Promise.all([mine.exited, text.exited, other.exited]);
        expect(rm.code, rm.stderr).toBe(0);
        const events = rm.stdout.trim().split('\n').map((l) => JSON.parse(l));
        expect(events).toHaveLength(drops);
        for (const e of events) {
          expect(e.socket.inode).toBe(sink.inode);
          expect(e.socket.owners).toEqual([
            { pid: sink.pid, comm: 'rxcgsink', cgroup: cg.path, unit: `docker-${cg.containerId}.scope`, container: cg.containerId },
          ]);
        }
        expect(rt.code, rt.stderr).toBe(0);
        expect(rt.stdout).toContain(`rxcgsink[${sink.pid}](ctr ${cg.containerId.slice(0, 12)})`);
        expect(ro.code, ro.stderr).toBe(0);
        expect(ro.stdout).toBe('');
        expect(ro.stderr).toMatch(/filtered|left out|0 events/);
      } finally {
        await sink.stop();
      }
    });
  }, 90_000);

  it('the socket\'s own cgroup (sock_diag INET_DIAG_CGROUP_ID): a sink that opened its socket inside the scope', async () => {
    await withTestCgroup(async (cg) => {
      // The socket's cgroup is its creator's at socket(): the shell joins the scope, then execs the sink.
      const child = spawn('sh', ['-c', `echo $$ > ${join(cg.dir, 'cgroup.procs')} && exec ${rxfloodPath()} sink --bind 127.0.0.1:0 --rcvbuf 1 --comm rxcgsock`], { stdio: ['pipe', 'pipe', 'pipe'] });
      try {
        const ready = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout!.setEncoding('utf8').on('data', (d: string) => {
            out += d;
            const m = /READY .*\n/.exec(out);
            if (m) resolve(m[0]);
          });
          child.once('exit', (code) => reject(new Error(`sink exited ${code}`)));
        });
        const [, port, inode] = ready.trim().split(/\s+/).map(Number);
        const run = startCli(['trace', '--port', String(port), '--format', 'ndjson', '--count', '5', '--duration', '20']);
        await run.waitForPerfFds(1);
        await send({ to: addrPort('127.0.0.1', port), count: 50 });
        const r = await run.exited;
        expect(r.code, r.stderr).toBe(0);
        const e = JSON.parse(r.stdout.split('\n')[0]);
        expect(e.socket.inode).toBe(inode);
        const { major, minor } = parseRelease(release());
        const diag = process.env.RXTRACE_SOCKET_SOURCE !== 'proc';
        if (diag && (major > 5 || (major === 5 && minor >= 8))) {
          expect(e.socket).toMatchObject({ cgroup: cg.path, unit: `docker-${cg.containerId}.scope`, container: cg.containerId });
        } else {
          // Before 5.8 sock_diag has no INET_DIAG_CGROUP_ID; the /proc source has no cgroup at all.
          expect(e.socket.cgroup).toBeUndefined();
        }
        expect(e.socket.owners[0]).toMatchObject({ comm: 'rxcgsock', container: cg.containerId });
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('close', r)));
      }
    });
  }, 90_000);

  it('serve --labels container,unit: the drop and socket series carry the container short id and unit', async () => {
    await withTestCgroup(async (cg) => {
      const sink = await startSink({ bind: '127.0.0.1:0', rcvbuf: 1, comm: 'rxcglabel' });
      try {
        cg.add(sink.pid);
        const serve = startCli(['serve', '--listen', '127.0.0.1:0', '--labels', 'container,unit', '--port', String(sink.port)]);
        // The counting fds open before the HTTP listener: wait for the line that says where it serves
        // (under TCG it came after the fds: the test read stderr too early once).
        const serving = /serving http:\/\/127\.0\.0\.1:(\d+)\/metrics/;
        await serve.waitForStderr(serving);
        const at = serving.exec(serve.stderr());
        expect(at, serve.stderr()).not.toBeNull();
        await send({ to: addrPort('127.0.0.1', sink.port), count: N });
        const drops = await settledUdpSocketDrops(sink.inode);
        const short = cg.containerId.slice(0, 12);
        const want = `rxtrace_drops_total{event="udp:udp_fail_queue_rcv_skb",table="udp",local="127.0.0.1:${sink.port}",comm="rxcglabel",container="${short}",unit="docker-${cg.containerId}.scope"}`;
        let text = '';
        // A new series shows 0 at its first scrape and its count from the next (docs/serve.md).
        for (let i = 0; i < 20 && !text.includes(`${want} ${drops}`); i++) {
          text = await (await fetch(`http://127.0.0.1:${at![1]}/metrics`)).text();
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(text).toContain(`${want} ${drops}`);
        expect(text).toContain(`rxtrace_socket_drops_total{table="udp",local="127.0.0.1:${sink.port}",comm="rxcglabel",container="${short}",unit="docker-${cg.containerId}.scope"} ${drops}`);
        serve.signal('SIGTERM');
        expect((await serve.exited).code).toBe(0);
      } finally {
        await sink.stop();
      }
    });
  }, 90_000);
});
