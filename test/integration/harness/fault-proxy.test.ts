import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../support/fault-proxy.js';
import { RawClient } from '../../support/raw-client.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';

describe('FaultProxy', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let client: RawClient;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'basic' });
    proxy = await FaultProxy.start(registry);
    client = new RawClient({ baseUrl: proxy.url, username: 'testuser', password: 'testpass' });
  });
  afterAll(async () => {
    await proxy.stop();
    await registry.stop();
  });
  afterEach(() => {
    proxy.clearFaults();
    proxy.clearRequests();
  });

  describe('when nothing is injected', () => {
    it('forwards and records every request in order, uploads included', async () => {
      const digest = await client.pushBlob('app', Buffer.from('through the proxy'));
      expect(await client.blobExists('app', digest)).toBe(true);
      const seen = proxy.requests.map((r) => `${r.method} ${r.path.replace(/uploads\/.+$/, 'uploads/<id>')} ${r.status}`);
      expect(seen).toEqual([
        'POST /v2/app/blobs/uploads/ 401',
        'POST /v2/app/blobs/uploads/ 202',
        'PUT /v2/app/blobs/uploads/<id> 201',
        `HEAD /v2/app/blobs/${digest} 200`,
      ]);
      expect(proxy.requests.map((r) => r.seq)).toEqual([...proxy.requests.keys()].map((i) => proxy.requests[0]!.seq + i));
      expect(proxy.requests[2]?.query).toContain(`digest=${encodeURIComponent(digest)}`);
    });
  });

  describe('when a 503 is injected once', () => {
    it('answers the first matching request with 503 and forwards the next', async () => {
      const handle = proxy.inject({ match: (r) => r.method === 'GET' && r.path.endsWith('/tags/list'), times: 1, action: 'status', status: 503 });
      await expect(client.listTags('app')).rejects.toMatchObject({ status: 503 });
      await expect(client.listTags('app')).resolves.toEqual([]);
      expect(handle.hits).toBe(1);
      expect(handle.remaining).toBe(0);
      const lists = proxy.requests.filter((r) => r.path.endsWith('/tags/list'));
      expect(lists[0]).toMatchObject({ status: 503, fault: 'status' });
      expect(lists.at(-1)).toMatchObject({ status: 404 });
      expect(lists.filter((r) => r.fault !== undefined)).toHaveLength(1);
    });
  });

  describe('when a 429 with Retry-After is injected', () => {
    it('sends the header and a TOOMANYREQUESTS body', async () => {
      proxy.inject({ match: () => true, times: 1, action: 'status', status: 429, retryAfter: '2' });
      const res = await fetch(`${proxy.url}/v2/`);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('TOOMANYREQUESTS');
    });
  });

  describe('when a reset is injected', () => {
    it('destroys the connection without an answer', async () => {
      proxy.inject({ match: (r) => r.path === '/v2/', times: 1, action: 'reset' });
      await expect(fetch(`${proxy.url}/v2/`)).rejects.toThrow();
      expect(proxy.requests.at(-1)).toMatchObject({ path: '/v2/', status: undefined, fault: 'reset' });
      expect((await fetch(`${proxy.url}/v2/`)).status).toBe(401);
    });
  });

  describe('when the registry behind it uses TLS and tokens', () => {
    it('keeps uploads on the proxy (Location points back at it)', async () => {
      const tlsRegistry = await startRegistry({ tls: true, auth: 'token' });
      const tlsProxy = await FaultProxy.start(tlsRegistry);
      try {
        const viaProxy = new RawClient({ baseUrl: tlsProxy.url, username: 'testuser', password: 'testpass' });
        const digest = await viaProxy.pushBlob('x/y', Buffer.from('tls'));
        expect(await viaProxy.blobExists('x/y', digest)).toBe(true);
        expect(tlsProxy.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['POST 401', 'POST 202', 'PUT 201', 'HEAD 200']);
      } finally {
        await tlsProxy.stop();
        await tlsRegistry.stop();
      }
    });
  });
});
