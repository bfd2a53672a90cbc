import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from './metrics.js';

/** What `/readyz` reports: ready or not, and each check's answer (`true`, `false`, or why not). */
export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, boolean | string>;
}

export interface HttpServerOptions {
  /** `:8080` (every interface), `127.0.0.1:0` (loopback, a free port), `host:port`, `[::1]:8080`. */
  listen: string;
  metrics: Metrics;
  /** Asked at every `/readyz`; a rejection counts as not ready. */
  ready: () => Promise<Readiness>;
  /** JSON served at `/status` (may return a promise). @defaultValue none: `/status` answers 404 */
  status?: () => unknown;
  log: Logger;
}

/** A listening server; `stop()` closes it and its connections, and is idempotent. */
export interface HttpServer {
  /** `http://host:port`, with 127.0.0.1 for a wildcard address. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text), `/healthz` (200 while the process lives), `/readyz` (200 or 503
 * with the checks as JSON) and `/status` (JSON) on node:http. Resolves once it listens.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { host, port } = parseListen(options.listen);
  const log = options.log;
  const server = createServer((req, res) => {
    handle(req, res, options).catch((e: unknown) => {
      log.warn({ path: pathOf(req), error: e instanceof Error ? e.message : String(e) }, 'http request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  server.listen(port, host);
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
  } catch (e) {
    server.close();
    throw new PromoteError('INVALID_CONFIG', `cannot listen on ${options.listen}: ${(e as Error).message}`, { cause: e });
  }
  const address = server.address() as AddressInfo;
  const wildcard = address.address === '::' || address.address === '0.0.0.0';
  const urlHost = wildcard ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}`;
  log.debug({ url }, 'http server listening');

  let stopped: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Prometheus keeps its connection alive between scrapes; don't wait for it to hang up.
        server.closeAllConnections();
      })),
  };
}

/** `:8080`, `host:port`, `[v6]:port` → host (undefined: every interface) and port. */
export function parseListen(listen: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port > 65_535) {
    throw new PromoteError('INVALID_CONFIG', `listen address ${JSON.stringify(listen)} is not ":port", "host:port" or "[ipv6]:port"`);
  }
  const host = m[1] ?? m[2];
  return { host: host === undefined || host === '' ? undefined : host, port };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: HttpServerOptions): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  switch (pathOf(req)) {
    case '/metrics': {
      const { contentType, body } = await options.metrics.render();
      send(res, 200, contentType, body);
      return;
    }
    case '/healthz':
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz': {
      let readiness: Readiness;
      try {
        readiness = await options.ready();
      } catch (e) {
        readiness = { ready: false, checks: { readiness: e instanceof Error ? e.message : String(e) } };
      }
      sendJson(res, readiness.ready ? 200 : 503, { ready: readiness.ready, checks: readiness.checks });
      return;
    }
    case '/status':
      if (options.status === undefined) {
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
        return;
      }
      sendJson(res, 200, await options.status());
      return;
    default:
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
}

function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '';
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value ?? null)}\n`);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
