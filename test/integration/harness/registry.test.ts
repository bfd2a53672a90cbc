import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { RawClient } from '../../support/raw-client.js';
import { parseAccessLog, startRegistry, trustCertificate, type RegistryOptions } from '../../support/registry.js';

describe('startRegistry', () => {
  describe.each<{ name: string; options: RegistryOptions; status: number; challenge: RegExp | null }>([
    { name: 'plain', options: {}, status: 200, challenge: null },
    { name: 'basic', options: { auth: 'basic' }, status: 401, challenge: /^Basic realm="test-realm"$/ },
    { name: 'token', options: { auth: 'token' }, status: 401, challenge: /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="test-registry"$/ },
    { name: 'tls', options: { tls: true }, status: 200, challenge: null },
  ])('when started as $name', ({ options, status, challenge }) => {
    it('answers GET /v2/ with the distribution API header', async () => {
      const registry = await startRegistry(options);
      try {
        expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(registry.url).toBe(`${options.tls === true ? 'https' : 'http'}://${registry.host}`);
        if (registry.caFile !== undefined) trustCertificate(await readFile(registry.caFile, 'utf8'));
        const res = await fetch(`${registry.url}/v2/`);
        expect(res.status).toBe(status);
        expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
        const header = res.headers.get('www-authenticate');
        if (challenge === null) expect(header).toBeNull();
        else expect(header).toMatch(challenge);
      } finally {
        await registry.stop();
      }
    });
  });

  describe('when started with TLS', () => {
    it('returns a CA file and a skopeo cert dir, and refuses plain HTTP', async () => {
      const registry = await startRegistry({ tls: true });
      try {
        expect(await readFile(registry.caFile ?? '', 'utf8')).toContain('BEGIN CERTIFICATE');
        expect(existsSync(`${registry.certDir ?? ''}/ca.crt`)).toBe(true);
        expect(registry.skopeoFlags('dest')).toEqual(['--dest-cert-dir', registry.certDir]);
        const res = await fetch(`http://${registry.host}/v2/`);
        expect(res.status).toBe(400);
      } finally {
        await registry.stop();
      }
    });
  });

  describe('when stopped', () => {
    it('ends the process, removes its temp dir and tolerates a second stop', async () => {
      const registry = await startRegistry();
      await registry.stop();
      await registry.stop();
      expect(existsSync(registry.dir)).toBe(false);
      await expect(fetch(`${registry.url}/v2/`)).rejects.toThrow();
    });
  });

  describe('when the access log is on', () => {
    it('reports the requests the registry answered, without the readiness probe', async () => {
      const registry = await startRegistry({ accessLog: true, auth: 'basic' });
      try {
        expect(await registry.requestCount()).toBe(0);
        await fetch(`${registry.url}/v2/`);
        await fetch(`${registry.url}/v2/app/tags/list?n=1`, {
          headers: { Authorization: `Basic ${Buffer.from('testuser:testpass').toString('base64')}` },
        });
        expect(await registry.requests()).toEqual([
          { method: 'GET', path: '/v2/', query: '', status: 401 },
          { method: 'GET', path: '/v2/app/tags/list', query: 'n=1', status: 404 },
        ]);
        // The line is in the file as soon as the answer has been read: no waiting needed between request and count.
        const client = RawClient.for(registry);
        const digest = await client.pushBlob('app', Buffer.alloc(2 * 1024 * 1024, 7));
        const before = await registry.requestCount();
        for (let i = 1; i <= 10; i++) {
          await client.getBlob('app', digest);
          expect(await registry.requestCount()).toBe(before + i);
        }
      } finally {
        await registry.stop();
      }
    });
  });

  describe('when the access log is off', () => {
    it('refuses to count requests', async () => {
      const registry = await startRegistry();
      try {
        await expect(registry.requestCount()).rejects.toThrow(/accessLog: true/);
      } finally {
        await registry.stop();
      }
    });
  });
});

describe('parseAccessLog', () => {
  describe('when a line has a user and a query string', () => {
    it('splits method, path, query and status', () => {
      const line = '127.0.0.1 - testuser [28/Nov/2026:07:12:11 +0000] "PUT /v2/a/blobs/uploads/u?_state=x&digest=sha256%3A1 HTTP/1.1" 201 0 "" "node"';
      expect(parseAccessLog(`${line}\nnot a log line\n`)).toEqual([
        { method: 'PUT', path: '/v2/a/blobs/uploads/u', query: '_state=x&digest=sha256%3A1', status: 201 },
      ]);
    });
  });
});
