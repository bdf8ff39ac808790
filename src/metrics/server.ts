// The HTTP side of `rxtrace serve`: /metrics (Prometheus text format), /healthz, and a clean
// close that does not wait for Prometheus' keep-alive connections to time out.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { errnoCode, RxtraceError } from '../errors.js';
import type { Scrape } from './registry.js';

export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULT_LISTEN = '127.0.0.1:9469';

/**
 * `HOST:PORT` or `[IPV6]:PORT` → address. HOST is an IP literal or `localhost`; a bare port or
 * `:PORT` is refused, so listening beyond loopback is always spelled out (0.0.0.0:9469).
 */
export function parseListen(text: string): ListenAddress {
  const bad = (why: string): RxtraceError =>
    new RxtraceError('EBADLISTEN', `bad --listen address "${text}" (EBADLISTEN): ${why}`, {
      hint: 'give HOST:PORT, e.g. 127.0.0.1:9469, [::1]:9469, or 0.0.0.0:9469 to listen on every interface',
      details: { listen: text },
    });
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(text.trim());
  if (!m) throw bad('expected HOST:PORT');
  const host = m[1] ?? m[2];
  if (host === '') throw bad('the host is missing (use 0.0.0.0 to listen on every interface)');
  if (m[1] !== undefined && isIP(host) !== 6) throw bad(`${host} is not an IPv6 address`);
  if (m[2] !== undefined && host !== 'localhost' && isIP(host) !== 4) throw bad(`${host} is not an IPv4 address (IPv6 goes in brackets: [::1]:9469)`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port > 65535) throw bad(`port ${m[3]} is not 0-65535`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export function formatAddress(a: ListenAddress): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export interface MetricsServer {
  /** Where it listens (the real port when 0 was asked). */
  address: ListenAddress;
  server: Server;
  /**
   * Stop accepting, end idle keep-alive connections, wait for requests in flight (a scrape's
   * connection is cut after 5 s), and resolve once every scrape begun has settled, so that the
   * caller may then close what the scrapes read.
   */
  close(): Promise<void>;
}

export interface MetricsServerOptions extends ListenAddress {
  /** Renders /metrics (MetricsRegistry.scrape, or plainScrape(registry)). */
  scrape: () => Promise<Scrape>;
  /** Called when a scrape fails (it answers 500 with the message). */
  onScrapeError?: (e: unknown) => void;
}

async function handle(opts: MetricsServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
    return;
  }
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok');
    return;
  }
  if (path === '/metrics') {
    let scrape: Scrape;
    try {
      scrape = await opts.scrape();
    } catch (e) {
      opts.onScrapeError?.(e);
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`scrape failed: ${e instanceof Error ? e.message : String(e)}\n`);
      return;
    }
    // Delivered means written in full to a client still there: a scraper that timed out has
    // closed the connection by now, and what this scrape showed did not reach it.
    let finished = false;
    res.once('finish', () => (finished = true));
    res.once('close', () => scrape.delivered(finished && req.method !== 'HEAD'));
    res.writeHead(200, { 'content-type': scrape.contentType });
    res.end(req.method === 'HEAD' ? undefined : scrape.body);
    return;
  }
  if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<html><head><title>rxtrace</title></head><body><h1>rxtrace</h1><p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p></body></html>\n');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
}

/** Listen; rejects with RxtraceError EADDRINUSE / EADDRNOTAVAIL / EACCES when the address cannot be bound. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  // Scrapes begun and not yet settled. On a loaded host a scrape (the /proc reads) can outlast
  // close()'s 5 s grace: its connection is cut, but the scrape itself runs on, and if close()
  // resolved then, `serve` would close the drop counters under it and print "scrape failed: the
  // drop counters are closed" after its last line, "stopped (SIGTERM)" (seen under qemu TCG).
  const inflight = new Set<Promise<Scrape>>();
  const tracked: MetricsServerOptions = {
    ...opts,
    scrape: () => {
      const p = opts.scrape();
      inflight.add(p);
      const settled = (): void => void inflight.delete(p);
      p.then(settled, settled);
      return p;
    },
  };
  const server = createServer((req, res) => void handle(tracked, req, res));
  // Prometheus scrapes every few seconds over one keep-alive connection; let it stay open a
  // little longer than a typical interval, and let close() end it (closeIdleConnections).
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((e: unknown) => {
    const code = errnoCode(e) ?? 'EIO';
    const where = formatAddress(opts);
    const hint =
      code === 'EADDRINUSE'
        ? 'another process listens there (ss -ltnp); pick another port with --listen'
        : code === 'EADDRNOTAVAIL'
          ? 'that address is not on this host; use 127.0.0.1, or 0.0.0.0 for every interface'
          : code === 'EACCES'
            ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
            : undefined;
    throw new RxtraceError(code, `cannot listen on ${where} (${code}): ${e instanceof Error ? e.message : String(e)}`, {
      errno: (e as NodeJS.ErrnoException).errno,
      syscall: (e as NodeJS.ErrnoException).syscall ?? 'listen',
      hint,
      cause: e,
    });
  });
  const a = server.address();
  const address = a && typeof a === 'object' ? { host: opts.host, port: a.port } : { host: opts.host, port: opts.port };
  let closing: Promise<void> | undefined;
  return {
    address,
    server,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
        // A scrape still being answered gets a few seconds, then its connection is cut.
        const force = setTimeout(() => server.closeAllConnections(), 5000);
        force.unref();
      }).then(async () => {
        // No connection is left, so no scrape can begin: wait for those that did.
        await Promise.allSettled([...inflight]);
      });
      return closing;
    },
  };
}
