import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/metrics/index.js';
import {
  staticKeychain,
  type RegistryObserver,
  type RequestFinishedEvent,
  type RetryEvent,
} from '../../../src/oci/index.js';
import { rejectionOf } from '../../support/failure.js';
import { error } from '../oci/fake-registry.js';
import { TEST_MANIFEST, fakeRegistryHarness } from '../oci/fake-registry-harness.js';
import { parseExposition, valueOf } from './exposition.js';

const MANIFEST = TEST_MANIFEST;

const { fake, client } = fakeRegistryHarness({ client: { retry: { baseDelayMs: 1, maxDelayMs: 2 } }, seedManifest: true });

/** Records what the transport tells it. */
class Recorder implements RegistryObserver {
  readonly finished: RequestFinishedEvent[] = [];
  readonly retries: RetryEvent[] = [];
  requestFinished(e: RequestFinishedEvent): void {
    this.finished.push(e);
  }
  retried(e: RetryEvent): void {
    this.retries.push(e);
  }
  get statuses(): string[] {
    return this.finished.map((e) => `${e.kind} ${e.status}`);
  }
}

describe('RegistryObserver (oci hook) and Metrics.registryObserver', () => {
  describe('when a request succeeds at once', () => {
    it('is told once, with registry, method, kind, status and a duration', async () => {
      const f = await fake();
      const r = new Recorder();
      await client([f.host], { observer: r }).getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
      expect(r.finished).toHaveLength(1);
      expect(r.finished[0]).toMatchObject({ registry: f.host, method: 'GET', kind: 'GET manifest', status: 200 });
      expect(r.finished[0]?.durationMs).toBeGreaterThan(0);
      expect(r.finished[0]?.durationMs).toBeLessThan(10_000);
      expect(r.retries).toEqual([]);
    });
  });

  describe('when the registry answers 503, 429 and 408 before 200', () => {
    it('reports every attempt and retries as server-error, throttled and timeout', async () => {
      const f = await fake();
      const answers = [503, 429, 408];
      f.hook = (_req, res) => {
        const status = answers.shift();
        if (status === undefined) return false;
        error(res, status, 'X', 'later', status === 429 ? { 'retry-after': '0' } : {});
        return true;
      };
      const r = new Recorder();
      await client([f.host], { observer: r }).getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
      expect(r.statuses).toEqual(['GET manifest 503', 'GET manifest 429', 'GET manifest 408', 'GET manifest 200']);
      expect(r.retries).toEqual([
        { registry: f.host, reason: 'server-error' },
        { registry: f.host, reason: 'throttled' },
        { registry: f.host, reason: 'timeout' },
      ]);
    });

    it('reports no retry for the last attempt or for a status that is not retried', async () => {
      const f = await fake();
      f.hook = (_req, res) => (error(res, 502, 'BAD_GATEWAY', 'upstream'), true);
      const r = new Recorder();
      const c = client([f.host], { observer: r, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
      expect((await rejectionOf(c.getManifest({ registry: f.host, repository: 'app', tag: 'v1' }))).code).toBe('REGISTRY_UNAVAILABLE');
      expect(r.statuses).toEqual(['GET manifest 502', 'GET manifest 502']);
      expect(r.retries.map((e) => e.reason)).toEqual(['server-error']);

      f.hook = undefined;
      const r2 = new Recorder();
      await client([f.host], { observer: r2 }).headManifest({ registry: f.host, repository: 'app', tag: 'missing' });
      expect(r2.statuses).toEqual(['HEAD manifest 404']);
      expect(r2.retries).toEqual([]);
    });
  });

  describe('when the registry wants a bearer token', () => {
    it('reports the 401, the token request and the retry as auth-refresh', async () => {
      const f = await fake({ auth: 'token' });
      const r = new Recorder();
      const c = client([f.host], { observer: r, keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      await c.getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
      expect(r.statuses).toEqual(['GET manifest 401', 'GET token 200', 'GET manifest 200']);
      expect(r.retries).toEqual([{ registry: f.host, reason: 'auth-refresh' }]);
    });

    it('reports a refused login as 401s without an auth-refresh for the last one', async () => {
      const f = await fake({ auth: 'basic' });
      const r = new Recorder();
      const c = client([f.host], { observer: r, keychain: staticKeychain({ username: 'user', password: 'wrong' }) });
      expect((await rejectionOf(c.getManifest({ registry: f.host, repository: 'app', tag: 'v1' }))).code).toBe('REGISTRY_UNAUTHORIZED');
      expect(r.statuses).toEqual(['GET manifest 401', 'GET manifest 401']);
      expect(r.retries.map((e) => e.reason)).toEqual(['auth-refresh']);
    });
  });

  describe('when the network fails', () => {
    it('reports status 0 and retries as network', async () => {
      // A port that was just free: connection refused.
      const s = createServer().listen(0, '127.0.0.1');
      await once(s, 'listening');
      const host = `127.0.0.1:${(s.address() as AddressInfo).port}`;
      s.close();
      await once(s, 'close');
      const r = new Recorder();
      const c = client([host], { observer: r, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
      expect((await rejectionOf(c.getManifest({ registry: host, repository: 'app', tag: 'v1' }))).code).toBe('REGISTRY_UNAVAILABLE');
      expect(r.finished.map((e) => e.status)).toEqual([0, 0]);
      expect(r.retries).toEqual([{ registry: host, reason: 'network' }]);
    });

    it('reports a headers timeout as status 0 and retries as timeout', async () => {
      const f = await fake();
      let n = 0;
      f.hook = () => n++ === 0; // the first request never gets an answer
      const r = new Recorder();
      const c = client([f.host], { observer: r, timeouts: { headersMs: 100 } });
      await c.getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
      expect(r.finished.map((e) => e.status)).toEqual([0, 200]);
      expect(r.retries.map((e) => e.reason)).toEqual(['timeout']);
    });
  });

  describe('when the observer throws', () => {
    it('the request goes on as if it had not been told', async () => {
      const f = await fake();
      let n = 0;
      f.hook = (_req, res) => (n++ === 0 ? (error(res, 503, 'X', 'later'), true) : false);
      const observer: RegistryObserver = {
        requestFinished: () => {
          throw new Error('broken observer');
        },
        retried: () => {
          throw new Error('broken observer');
        },
      };
      const raw = await client([f.host], { observer }).getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
      expect(raw.bytes.equals(MANIFEST)).toBe(true);
    });
  });

  describe('when Metrics observes a client', () => {
    it('counts requests by code, throttles, retries and durations per registry', async () => {
      const f = await fake();
      const answers = [429, 503];
      f.hook = (_req, res) => {
        const status = answers.shift();
        if (status === undefined) return false;
        error(res, status, 'X', 'later', { 'retry-after': '0' });
        return true;
      };
      const m = new Metrics({ defaultMetrics: false });
      await client([f.host], { observer: m.registryObserver() }).getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
      const s = parseExposition((await m.render()).body);
      const reg = { registry: f.host };
      expect(valueOf(s, 'bundle_promoter_registry_requests_total', { ...reg, method: 'GET', code: '429' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_requests_total', { ...reg, method: 'GET', code: '503' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_requests_total', { ...reg, method: 'GET', code: '200' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_throttled_total', reg)).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_retries_total', { ...reg, reason: 'throttled' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_retries_total', { ...reg, reason: 'server-error' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_request_duration_seconds_count', { ...reg, method: 'GET' })).toBe(3);
    });
  });
});
