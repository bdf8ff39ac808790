// `--listen` parsing and the HTTP server of `rxtrace serve` on loopback: /healthz, /metrics,
// 404/405, a scrape that fails, address in use, and a close that does not hang on keep-alive.
import http from 'node:http';
import { Registry, Gauge } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RxtraceError } from '../../../src/errors.js';
import { exitCodeFor } from '../../../src/cli/exit-codes.js';
import { formatAddress, isLoopback, parseListen, startMetricsServer } from '../../../src/metrics/server.js';
import { plainScrape } from '../../../src/metrics/registry.js';

function get(port: number, path: string, method = 'GET', agent?: http.Agent): Promise<{ status: number; body: string; type?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function pollFor(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:9469', { host: '127.0.0.1', port: 9469 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['[::1]:9469', { host: '::1', port: 9469 }],
    ['[::]:80', { host: '::', port: 80 }],
    ['localhost:9469', { host: 'localhost', port: 9469 }],
  ])('%s', (text, want) => {
    expect(parseListen(text)).toEqual(want);
  });

  it.each(['9469', ':9469', 'nohost:9469', '127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:-1', '::1:9469', '[127.0.0.1]:9469', '[::1]9469', '1.2.3:80', ''])(
    'rejects %j with EBADLISTEN (exit 2)',
    (text) => {
      let err: unknown;
      try {
        parseListen(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RxtraceError);
      expect(err).toMatchObject({ code: 'EBADLISTEN' });
      expect((err as RxtraceError).hint).toMatch(/HOST:PORT/);
      expect(exitCodeFor(err)).toBe(2);
    },
  );

  it('knows loopback and formats v6', () => {
    expect(isLoopback('127.0.0.2')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(formatAddress({ host: '::1', port: 1 })).toBe('[::1]:1');
  });
});

describe('metrics server', () => {
  it('answers /healthz, /metrics, 404 and 405, and closes despite a keep-alive connection', async () => {
    const registry = new Registry();
    new Gauge({ name: 'x_up', help: 'test', registers: [registry], collect() { this.set(1); } });
    const srv = await startMetricsServer({ host: '127.0.0.1', port: 0, scrape: plainScrape(registry) });
    const port = srv.address.port;
    expect(port).toBeGreaterThan(0);
    const agent = new http.Agent({ keepAlive: true });
    expect(await get(port, '/healthz', 'GET', agent)).toMatchObject({ status: 200, body: 'ok' });
    const m = await get(port, '/metrics', 'GET', agent);
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(m.body).toContain('x_up 1');
    expect((await get(port, '/metrics', 'HEAD')).body).toBe('');
    expect((await get(port, '/nope')).status).toBe(404);
    expect((await get(port, '/metrics', 'POST')).status).toBe(405);
    const t0 = Date.now();
    await Promise.all([srv.close(), srv.close()]);
    expect(Date.now() - t0).toBeLessThan(2000);
    agent.destroy();
  });

  it('tells the scrape whether its response was delivered: GET yes, HEAD no', async () => {
    const outcomes: boolean[] = [];
    const srv = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      scrape: async () => ({ body: 'x 1\n', contentType: 'text/plain; version=0.0.4; charset=utf-8', delivered: (ok) => outcomes.push(ok) }),
    });
    await get(srv.address.port, '/metrics');
    await get(srv.address.port, '/metrics', 'HEAD');
    await pollFor(() => outcomes.length === 2);
    expect(outcomes).toEqual([true, false]);
    await srv.close();
  });

  it('answers 500 when a scrape fails, and keeps serving', async () => {
    const registry = new Registry();
    let fail = true;
    new Gauge({
      name: 'x_flaky',
      help: 'test',
      registers: [registry],
      collect() {
        if (fail) throw new Error('cannot read');
        this.set(2);
      },
    });
    const errors: unknown[] = [];
    const srv = await startMetricsServer({ host: '127.0.0.1', port: 0, scrape: plainScrape(registry), onScrapeError: (e) => errors.push(e) });
    const r = await get(srv.address.port, '/metrics');
    expect(r.status).toBe(500);
    expect(r.body).toContain('cannot read');
    expect(errors).toHaveLength(1);
    fail = false;
    expect((await get(srv.address.port, '/metrics')).body).toContain('x_flaky 2');
    await srv.close();
  });

  it('close() waits for a scrape its scraper gave up on, so serve may then close what it reads', async () => {
    // A loaded host: the scrape outlasts the scraper's timeout, which hangs up. close() must not
    // resolve while the scrape still runs (serve would close the drop counters under it).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let began = false;
    const srv = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      scrape: async () => {
        began = true;
        await gate;
        return { body: 'x 1\n', contentType: 'text/plain; version=0.0.4; charset=utf-8', delivered: () => {} };
      },
    });
    const req = http.request({ host: '127.0.0.1', port: srv.address.port, path: '/metrics', agent: false });
    req.on('error', () => {});
    req.end();
    await pollFor(() => began);
    req.destroy();
    let closed = false;
    const closing = srv.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    release();
    await closing;
    expect(closed).toBe(true);
  });

  it('an address in use is EADDRINUSE (exit 75), with a hint', async () => {
    const registry = new Registry();
    const a = await startMetricsServer({ host: '127.0.0.1', port: 0, scrape: plainScrape(registry) });
    let err: unknown;
    try {
      await startMetricsServer({ host: '127.0.0.1', port: a.address.port, scrape: plainScrape(registry) });
    } catch (e) {
      err = e;
    }
    await a.close();
    expect(err).toBeInstanceOf(RxtraceError);
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'listen' });
    expect((err as RxtraceError).hint).toMatch(/another process/);
    expect(exitCodeFor(err)).toBe(75);
  });
});
