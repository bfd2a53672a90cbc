import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { Metrics, parseListen, startHttpServer, type HttpServer, type HttpServerOptions, type Readiness } from '../../../src/metrics/index.js';
import { failureOf, rejectionOf } from '../../support/failure.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(options: Partial<HttpServerOptions> = {}): Promise<HttpServer> {
  const server = await startHttpServer({
    listen: '127.0.0.1:0',
    metrics: new Metrics({ defaultMetrics: false }),
    ready: async () => ({ ready: true, checks: { informer: true } }),
    log: silentLogger(),
    ...options,
  });
  cleanups.push(() => server.stop());
  return server;
}

describe('startHttpServer', () => {
  describe('when listening on 127.0.0.1:0', () => {
    it('picks a free port and reports its URL', async () => {
      const s = await start();
      expect(s.port).toBeGreaterThan(0);
      expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    });
  });

  describe('GET /metrics', () => {
    it('serves the Prometheus text format with the metrics recorded so far', async () => {
      const metrics = new Metrics({ defaultMetrics: false });
      metrics.reconciled('requeue', 0.5);
      const s = await start({ metrics });
      const res = await fetch(`${s.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await res.text()).toContain('bundle_promoter_reconcile_total{result="requeue"} 1\n');
    });

    it('still answers 200 when the queue callback fails', async () => {
      const metrics = new Metrics({ defaultMetrics: false });
      metrics.setQueueCounts(() => Promise.reject(new Error('redis down')));
      const s = await start({ metrics });
      const res = await fetch(`${s.url}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('bundle_promoter_metrics_collect_errors_total{collector="queue_jobs"} 1');
    });
  });

  describe('GET /healthz', () => {
    it('answers 200 even when not ready', async () => {
      const s = await start({ ready: async () => ({ ready: false, checks: {} }) });
      const res = await fetch(`${s.url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok\n');
    });
  });

  describe('GET /readyz', () => {
    it('answers 200 with the checks when ready', async () => {
      const s = await start({ ready: async () => ({ ready: true, checks: { informer: true, redis: true } }) });
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await res.json()).toEqual({ ready: true, checks: { informer: true, redis: true } });
    });

    it('answers 503 with the checks when not ready, and follows the answer from call to call', async () => {
      let readiness: Readiness = { ready: false, checks: { informer: true, redis: 'connect ECONNREFUSED 127.0.0.1:6379' } };
      const s = await start({ ready: async () => readiness });
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual(readiness);
      readiness = { ready: true, checks: { informer: true, redis: true } };
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    });

    it('answers 503 naming the error when the readiness check throws', async () => {
      const s = await start({ ready: () => Promise.reject(new Error('lease unknown')) });
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ ready: false, checks: { readiness: 'lease unknown' } });
    });
  });

  describe('GET /status', () => {
    it('serves the status callback as JSON, sync or async', async () => {
      const s = await start({ status: () => ({ promotions: [{ name: 'a', phase: 'Succeeded' }] }) });
      const res = await fetch(`${s.url}/status`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ promotions: [{ name: 'a', phase: 'Succeeded' }] });
      const s2 = await start({ status: async () => ({ ok: 1 }) });
      expect(await (await fetch(`${s2.url}/status`)).json()).toEqual({ ok: 1 });
    });

    it('answers 404 when no status callback was given', async () => {
      const s = await start();
      expect((await fetch(`${s.url}/status`)).status).toBe(404);
    });

    it('answers 500 when the status callback throws, and keeps serving', async () => {
      const s = await start({ status: () => { throw new Error('boom'); } });
      expect((await fetch(`${s.url}/status`)).status).toBe(500);
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    });
  });

  describe('other requests', () => {
    it('answers 404 for unknown paths and 405 for other methods; HEAD works without a body', async () => {
      const s = await start();
      expect((await fetch(`${s.url}/nope`)).status).toBe(404);
      const post = await fetch(`${s.url}/metrics`, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
      const head = await fetch(`${s.url}/healthz`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
      expect((await fetch(`${s.url}/metrics?x=1`)).status).toBe(200);
    });
  });

  describe('stop', () => {
    it('closes the port, even with a kept-alive connection open, and is idempotent', async () => {
      const s = await start();
      await fetch(`${s.url}/metrics`); // fetch keeps the connection alive
      await s.stop();
      await s.stop();
      await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
    });
  });

  describe('when the port is taken', () => {
    it('fails with INVALID_CONFIG naming the address', async () => {
      const busy = createServer().listen(0, '127.0.0.1');
      await once(busy, 'listening');
      cleanups.push(async () => void busy.close());
      const listen = `127.0.0.1:${(busy.address() as AddressInfo).port}`;
      const e = await rejectionOf(start({ listen }));
      expect(e.code).toBe('INVALID_CONFIG');
      expect(e.message).toContain(listen);
      expect(e.message).toContain('EADDRINUSE');
    });
  });
});

describe('parseListen', () => {
  it('reads :port as every interface, host:port and [ipv6]:port', () => {
    expect(parseListen(':8080')).toEqual({ host: undefined, port: 8080 });
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('metrics.local:9090')).toEqual({ host: 'metrics.local', port: 9090 });
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
  });

  it('refuses addresses without a port, with a bad port, or an unbracketed IPv6 address', () => {
    for (const bad of ['8080', 'localhost', ':', ':99999', ':http', '::1:8080', '']) {
      expect(failureOf(() => parseListen(bad)).code, bad).toBe('INVALID_CONFIG');
    }
  });
});
