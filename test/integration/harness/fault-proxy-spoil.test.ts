import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { seededBytes } from '../../support/fixtures.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** GET with node:http, one connection, reporting what arrived and whether the body ended cleanly. */
function get(url: string): Promise<{ status: number; length: string | undefined; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (complete: boolean) => resolve({ status: res.statusCode ?? 0, length: res.headers['content-length'], body: Buffer.concat(chunks), complete });
      res.on('end', () => done(true));
      res.on('aborted', () => done(false));
      res.on('error', () => done(false));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('FaultProxy response spoils', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  const blob = seededBytes(100_000, 'spoil');
  let digest: string;
  const url = () => `${proxy.url}/v2/spoil/app/blobs/${digest}`;
  const spoilOnce = (spoil: Parameters<FaultProxy['inject']>[0] & { action: 'response' }) => proxy.inject(spoil);

  beforeAll(async () => {
    registry = await startRegistry();
    digest = await RawClient.for(registry).pushBlob('spoil/app', blob);
  });
  afterAll(async () => registry?.stop());
  beforeEach(async () => {
    proxy = await FaultProxy.start(registry);
  });
  afterEach(async () => proxy?.stop());

  const match = (r: { method: string; path: string }) => r.method === 'GET' && r.path.includes('/blobs/');

  it('corrupt: the same length and headers, one byte different, then the next request is clean', async () => {
    const rule = spoilOnce({ match, times: 1, action: 'response', spoil: { kind: 'corrupt', atByte: 10 } });
    const bad = await get(url());
    expect(bad).toMatchObject({ status: 200, length: String(blob.length), complete: true });
    expect(bad.body.length).toBe(blob.length);
    expect(sha256(bad.body)).not.toBe(digest);
    expect(bad.body.subarray(0, 10).equals(blob.subarray(0, 10))).toBe(true);
    expect(bad.body[10]).toBe(blob[10]! ^ 0xff);
    expect(rule.hits).toBe(1);
    expect(proxy.requests[0]?.fault).toBe('response');
    const good = await get(url());
    expect(sha256(good.body)).toBe(digest);
  });

  it('truncate: the full Content-Length declared, the body cut at atByte, the connection broken', async () => {
    spoilOnce({ match, times: 1, action: 'response', spoil: { kind: 'truncate', atByte: 1234 } });
    const r = await get(url());
    expect(r.length).toBe(String(blob.length));
    expect(r.complete).toBe(false);
    expect(r.body.length).toBe(1234);
  });

  it('content-length with a negative delta: a short body that looks complete', async () => {
    spoilOnce({ match, times: 1, action: 'response', spoil: { kind: 'content-length', delta: -10 } });
    const r = await get(url());
    expect(r).toMatchObject({ status: 200, length: String(blob.length - 10), complete: true });
    expect(r.body.equals(blob.subarray(0, blob.length - 10))).toBe(true);
  });

  it('content-length with a positive delta: the body ends early and the connection closes', async () => {
    spoilOnce({ match, times: 1, action: 'response', spoil: { kind: 'content-length', delta: 10 } });
    const r = await get(url());
    expect(r.length).toBe(String(blob.length + 10));
    expect(r.complete).toBe(false);
    expect(r.body.equals(blob)).toBe(true);
  });
});
