import { rejectionOf } from '../../support/failure.js';
import { eventually } from '../../support/eventually.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import {
  MANIFEST_ACCEPT,
  MAX_REFERRER_PAGES,
  MediaTypes,
  digestOf,
  staticKeychain,
} from '../../../src/oci/index.js';
import { FakeRegistry, error, type Seen } from './fake-registry.js';
import { TEST_MANIFEST, fakeRegistryHarness } from './fake-registry-harness.js';

const MANIFEST = TEST_MANIFEST;
const OTHER_DIGEST = `sha256:${'f'.repeat(64)}`;

const { cleanup, fake, client, repo } = fakeRegistryHarness({ client: { retry: { baseDelayMs: 5, maxDelayMs: 20 } } });

/**
 * Makes `f` serve blob `key` as `bytes`: the first `head` bytes at once, the rest only when `ready()` holds
 * (polled, 10 s deadline). A test can so be sure a streamed copy is mid-upload when the source's tail arrives.
 */
function serveHoldingTail(f: FakeRegistry, key: string, bytes: Buffer, head: number, ready: () => boolean): void {
  f.hook = async (req, res, seen) => {
    if (req.method !== 'GET' || `${seen.path.split('/')[2]}@${seen.path.split('/').at(-1)}` !== key) return false;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.write(bytes.subarray(0, head));
    await eventually('the upload to be under way', () => ready(), { timeoutMs: 10_000, intervalMs: 5 });
    res.end(bytes.subarray(head));
    return true;
  };
}


/** Answers the requests `match` picks with `respond`; the fake's own routes answer the rest. */
function answer(f: FakeRegistry, match: (method: string, path: string, seen: Seen) => boolean, respond: (res: ServerResponse, seen: Seen) => void): void {
  f.hook = (req, res, seen) => (match(req.method ?? '', seen.path, seen) ? (respond(res, seen), true) : false);
}

/** An OCI index of `manifests`, as the referrers API and the fallback tag hold them. */
const ociIndex = (manifests: readonly object[]): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
const referrerOf = (hex: string) => ({ mediaType: MediaTypes.ociManifest, digest: `sha256:${hex.repeat(64)}`, size: 10 });

describe('RegistryClient', () => {
  describe('when a manifest is fetched', () => {
    it('sends the full Accept list and returns the exact bytes with their digest', async () => {
      const f = await fake();
      const digest = f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const c = client([f.host]);
      const raw = await c.getManifest({ ...repo(f, 'app'), tag: 'v1' });
      expect(raw).toEqual({ mediaType: MediaTypes.ociManifest, digest, bytes: MANIFEST });
      for (const t of MANIFEST_ACCEPT) expect(f.seen[0]?.headers.accept).toContain(t);
      expect(f.seen[0]?.headers['user-agent']).toMatch(/^bundle-promoter\//);
      expect(c.stats.byKind['GET manifest']).toBe(1);
    });

    it('refuses bytes that do not hash to the requested digest', async () => {
      const f = await fake();
      const wanted = `sha256:${'9'.repeat(64)}`;
      f.manifests.set(`app:${wanted}`, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST });
      const e = await rejectionOf(client([f.host]).getManifest({ ...repo(f, 'app'), digest: wanted }));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(wanted);
    });

    it('HEAD reports the descriptor, and undefined on 404', async () => {
      const f = await fake();
      const digest = f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const c = client([f.host]);
      expect(await c.headManifest({ ...repo(f, 'app'), tag: 'v1' })).toEqual({ mediaType: MediaTypes.ociManifest, digest, size: MANIFEST.length });
      expect(await c.headManifest({ ...repo(f, 'app'), tag: 'nope' })).toBeUndefined();
    });

    it('PUT sends Content-Type = mediaType and returns the registry digest', async () => {
      const f = await fake();
      const c = client([f.host]);
      const digest = await c.putManifest({ ...repo(f, 'app'), tag: 'v2' }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST });
      expect(digest).toBe(digestOf(MANIFEST));
      expect(f.requests('PUT')[0]?.headers['content-type']).toBe(MediaTypes.ociManifest);
      expect(f.manifests.get('app:v2')?.bytes.equals(MANIFEST)).toBe(true);
    });
  });

  describe('when the registry fails transiently', () => {
    it('retries a 503 and then succeeds', async () => {
      const f = await fake();
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      let n = 0;
      f.hook = (_req, res) => (n++ === 0 ? (error(res, 503, 'UNAVAILABLE', 'try later'), true) : false);
      const c = client([f.host]);
      expect((await c.getManifest({ ...repo(f, 'app'), tag: 'v1' })).bytes.equals(MANIFEST)).toBe(true);
      expect(f.requests('GET')).toHaveLength(2);
      expect(c.stats.byKind['GET manifest']).toBe(2);
    });

    it('waits for Retry-After on a 429', async () => {
      const f = await fake();
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      let n = 0;
      f.hook = (_req, res) => (n++ === 0 ? (error(res, 429, 'TOOMANYREQUESTS', 'slow down', { 'retry-after': '1' }), true) : false);
      const started = performance.now();
      await client([f.host]).getManifest({ ...repo(f, 'app'), tag: 'v1' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(900);
      expect(f.requests('GET')).toHaveLength(2);
    });

    it('fails at once with REGISTRY_THROTTLED and retryAfterMs when Retry-After exceeds the cap', async () => {
      const f = await fake();
      f.hook = (_req, res) => (error(res, 429, 'TOOMANYREQUESTS', 'slow down', { 'retry-after': '120' }), true);
      const e = await rejectionOf(client([f.host]).getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_THROTTLED');
      expect(e.retryAfterMs).toBe(120_000);
      expect(f.seen).toHaveLength(1);
    });

    it('retries a connection reset in the middle of a response body', async () => {
      const f = await fake();
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      let n = 0;
      f.hook = (_req, res) => {
        if (n++ > 0) return false;
        res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'content-length': MANIFEST.length });
        res.write(MANIFEST.subarray(0, 10), () => res.socket?.destroy());
        return true;
      };
      const raw = await client([f.host]).getManifest({ ...repo(f, 'app'), tag: 'v1' });
      expect(raw.bytes.equals(MANIFEST)).toBe(true);
      expect(f.requests('GET')).toHaveLength(2);
    });

    it('gives up after maxAttempts with REGISTRY_UNAVAILABLE', async () => {
      const f = await fake();
      f.hook = (_req, res) => (error(res, 502, 'BAD_GATEWAY', 'upstream'), true);
      const e = await rejectionOf(client([f.host], { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } }).getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_UNAVAILABLE');
      expect(e.message).toContain('BAD_GATEWAY: upstream');
      expect(f.seen).toHaveLength(3);
    });
  });

  describe('when the answer is permanent', () => {
    it('does not retry a 404 and names the reference', async () => {
      const f = await fake();
      const e = await rejectionOf(client([f.host]).getManifest({ ...repo(f, 'app'), tag: 'missing' }));
      expect(e.code).toBe('MANIFEST_NOT_FOUND');
      expect(e.message).toContain(`${f.host}/app:missing`);
      expect(f.seen).toHaveLength(1);
    });

    it('refuses a manifest over 4 MiB announced by Content-Length', async () => {
      const f = await fake();
      f.hook = (_req, res) => {
        res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'content-length': 5 * 1024 * 1024 });
        res.end(Buffer.alloc(5 * 1024 * 1024, 0x20));
        return true;
      };
      const e = await rejectionOf(client([f.host]).getManifest({ ...repo(f, 'app'), tag: 'big' }));
      expect(e.code).toBe('MANIFEST_TOO_LARGE');
      expect(e.message).toContain('app:big');
    });

    it('refuses a manifest over 4 MiB while reading a chunked body', async () => {
      const f = await fake();
      f.hook = (_req, res) => {
        res.writeHead(200, { 'content-type': MediaTypes.ociManifest }); // no Content-Length: chunked
        res.end(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
        return true;
      };
      const e = await rejectionOf(client([f.host]).getManifest({ ...repo(f, 'app'), tag: 'big' }));
      expect(e.code).toBe('MANIFEST_TOO_LARGE');
    });

    it('treats 403 as absent in findManifest only when asked', async () => {
      const f = await fake();
      f.hook = (_req, res) => (error(res, 403, 'DENIED', 'requested access to the resource is denied'), true);
      const c = client([f.host]);
      expect(await c.findManifest({ ...repo(f, 'app'), tag: 'x.sig' }, { absentIfDenied: true })).toBeUndefined();
      expect((await rejectionOf(c.findManifest({ ...repo(f, 'app'), tag: 'x.sig' }))).code).toBe('REGISTRY_DENIED');
    });
  });

  describe('when the registry wants a bearer token', () => {
    it('answers the 401 with the token flow, then asks for new scopes without another 401', async () => {
      const f = await fake({ auth: 'token' });
      f.putManifest('a', 'v1', MANIFEST, MediaTypes.ociManifest);
      f.putManifest('b', 'v1', MANIFEST, MediaTypes.ociManifest);
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      await c.getManifest({ ...repo(f, 'a'), tag: 'v1' });
      await c.getManifest({ ...repo(f, 'b'), tag: 'v1' });
      await c.getManifest({ ...repo(f, 'a'), tag: 'v1' });
      expect(f.seen.map((s) => `${s.method} ${s.path} ${s.status}`)).toEqual([
        'GET /v2/a/manifests/v1 401',
        'GET /token 200',
        'GET /v2/a/manifests/v1 200',
        'GET /token 200',
        'GET /v2/b/manifests/v1 200',
        'GET /v2/a/manifests/v1 200',
      ]);
      expect(f.requests('GET', /^\/token$/)[0]?.query.getAll('scope')).toEqual(['repository:a:pull']);
      expect(f.requests('GET', /^\/token$/)[0]?.headers.authorization).toMatch(/^Basic /);
      expect(c.stats.byKind['GET token']).toBe(2);
    });

    it('reports wrong credentials as REGISTRY_UNAUTHORIZED without the password', async () => {
      const f = await fake({ auth: 'token' });
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'wrong-Pa55word' }) });
      const e = await rejectionOf(c.getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(e.message).toContain(f.host);
      expect(e.message).not.toContain('wrong-Pa55word');
      expect(e.message).not.toContain(Buffer.from('user:wrong-Pa55word').toString('base64'));
    });

    it('drops a token the registry refuses, re-challenges once, then fails naming registry and repository', async () => {
      const f = await fake({ auth: 'token' });
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      await c.getManifest({ ...repo(f, 'app'), tag: 'v1' });
      f.tokens.clear(); // every issued token is now unknown to the registry
      f.hook = (req, res) => {
        if (req.url?.startsWith('/token')) return false;
        error(res, 401, 'UNAUTHORIZED', 'token revoked', { 'www-authenticate': `Bearer realm="http://${f.host}/token",service="fake",scope="repository:app:pull"` });
        return true;
      };
      const before = f.seen.length;
      const e = await rejectionOf(c.getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(e.message).toContain(f.host);
      expect(e.message).toContain('repository app');
      expect(f.seen.slice(before).map((s) => `${s.method} ${s.path}`)).toEqual(['GET /v2/app/manifests/v1', 'GET /token', 'GET /v2/app/manifests/v1']);
    });
  });

  describe('when the registry wants Basic', () => {
    it('learns it from the first 401 and sends credentials from then on', async () => {
      const f = await fake({ auth: 'basic' });
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      await c.getManifest({ ...repo(f, 'app'), tag: 'v1' });
      await c.getManifest({ ...repo(f, 'app'), tag: 'v1' });
      expect(f.seen.map((s) => s.status)).toEqual([401, 200, 200]);
    });

    it('fails with REGISTRY_UNAUTHORIZED after one retry when the password is wrong', async () => {
      const f = await fake({ auth: 'basic' });
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'nope-secret' }) });
      const e = await rejectionOf(c.getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(e.message).not.toContain('nope-secret');
      expect(f.seen).toHaveLength(2);
    });
  });

  describe('when a blob GET is redirected to another origin', () => {
    it('follows the 307 without sending Authorization there', async () => {
      const bytes = randomBytes(1000);
      const digest = digestOf(bytes);
      const storageSeen: IncomingMessage['headers'][] = [];
      const storage: Server = createServer((req, res) => {
        storageSeen.push(req.headers);
        res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      }).listen(0, '127.0.0.1');
      await once(storage, 'listening');
      cleanup(async () => {
        storage.closeAllConnections();
        storage.close();
      });
      const f = await fake({ auth: 'basic' });
      f.hook = (req, res) => {
        if (!req.url?.includes('/blobs/') || req.headers.authorization === undefined) return false;
        res.writeHead(307, { location: `http://127.0.0.1:${(storage.address() as AddressInfo).port}/bucket/obj?X-Amz-Signature=abc` }).end();
        return true;
      };
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      const got = await c.readBlob(repo(f, 'app'), digest, 10_000);
      expect(got.equals(bytes)).toBe(true);
      expect(f.seen.at(-1)?.headers.authorization).toMatch(/^Basic /);
      expect(storageSeen).toHaveLength(1);
      expect(storageSeen[0]?.authorization).toBeUndefined();
    });
  });

  describe('when copying a blob between registries', () => {
    it('costs POST + HEAD + GET + PUT for a new blob until a self-mount answered 201, then POST + GET + PUT; one POST when present', async () => {
      const src = await fake();
      const dst = await fake();
      const bytes = randomBytes(200_000);
      const digest = src.putBlob('src/app', bytes);
      const c = client([src.host, dst.host]);
      const source = { repo: repo(src, 'src/app'), descriptor: { mediaType: MediaTypes.ociLayerGzip, digest, size: bytes.length } };
      expect(await c.copyBlob(source, repo(dst, 'dst/app'))).toBe('uploaded');
      expect(dst.blobs.get(`dst/app@${digest}`)?.equals(bytes)).toBe(true);
      expect(c.stats.requests).toBe(4);
      const post = dst.requests('POST')[0];
      expect(post?.query.get('mount')).toBe(digest);
      expect(post?.query.get('from')).toBe('dst/app');
      const put = dst.requests('PUT')[0];
      expect(put?.headers['content-type']).toBe('application/octet-stream');
      expect(put?.headers['content-length']).toBe(String(bytes.length));
      expect(put?.query.get('digest')).toBe(digest);

      expect(await c.copyBlob(source, repo(dst, 'dst/app'))).toBe('present');
      expect(c.stats.requests).toBe(5);

      const other = randomBytes(1000);
      const otherDigest = src.putBlob('src/app', other);
      const next = { repo: repo(src, 'src/app'), descriptor: { mediaType: MediaTypes.ociLayerGzip, digest: otherDigest, size: other.length } };
      expect(await c.copyBlob(next, repo(dst, 'dst/app'))).toBe('uploaded');
      expect(c.stats.requests).toBe(8);
      expect(dst.requests('HEAD')).toHaveLength(1);
    });

    it('aborts the PUT when the source serves wrong bytes, so the registry never commits them', async () => {
      const src = await fake();
      const dst = await fake();
      const good = randomBytes(300_000);
      const digest = digestOf(good);
      // Right bytes first, then a wrong tail held back until the PUT is under way: the mismatch is found mid-upload
      // on every run, however loaded the machine (the guard this replaces skipped the check when it was not).
      const bad = Buffer.concat([good.subarray(0, 200_000), randomBytes(good.length - 200_000)]);
      serveHoldingTail(src, `app@${digest}`, bad, 200_000, () => (dst.requests('PUT')[0]?.bodyBytes ?? 0) > 0);
      const c = client([src.host, dst.host]);
      const e = await rejectionOf(c.copyBlob({ repo: repo(src, 'app'), descriptor: { mediaType: 'x', digest, size: good.length } }, repo(dst, 'app')));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(digest);
      expect(e.message).toContain(`${src.host}/app`);
      expect(e.message).toContain(`; upload to ${dst.host}/app aborted`);
      expect((e.cause as { code?: string } | undefined)?.code).toBe('DIGEST_MISMATCH');
      const put = dst.requests('PUT')[0];
      expect(put, 'the PUT reached the target before the mismatch').toBeDefined();
      await put!.settled;
      expect(put!.bodyBytes).toBeGreaterThan(0);
      expect(put!.complete).toBe(false);
      expect(put!.bodyBytes).toBeLessThan(good.length);
      expect(dst.blobs.size).toBe(0);
      expect(dst.requests('POST')).toHaveLength(1); // a mismatch is not retried
    });

    it('aborts the PUT when the source serves too few bytes', async () => {
      const src = await fake();
      const dst = await fake();
      const bytes = randomBytes(300_000); // several chunks, so that the PUT is under way when the source ends
      const digest = src.putBlob('app', bytes);
      serveHoldingTail(src, `app@${digest}`, bytes, 200_000, () => (dst.requests('PUT')[0]?.bodyBytes ?? 0) > 0);
      const c = client([src.host, dst.host]);
      const e = await rejectionOf(c.copyBlob({ repo: repo(src, 'app'), descriptor: { mediaType: 'x', digest, size: bytes.length + 10 } }, repo(dst, 'app')));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(`got ${bytes.length} bytes, expected ${bytes.length + 10}`);
      const put = dst.requests('PUT')[0];
      expect(put, 'the PUT reached the target before the short source ended').toBeDefined();
      await put!.settled;
      expect(put!.complete).toBe(false);
      expect(dst.blobs.size).toBe(0);
    });

    it('restarts the whole copy from the POST after a 5xx on the streamed PUT', async () => {
      const src = await fake();
      const dst = await fake();
      const bytes = randomBytes(10_000);
      const digest = src.putBlob('app', bytes);
      let failed = false;
      dst.hook = (req, res) => {
        if (req.method !== 'PUT' || failed) return false;
        failed = true;
        error(res, 500, 'UNKNOWN', 'storage hiccup');
        return true;
      };
      const c = client([src.host, dst.host]);
      expect(await c.copyBlob({ repo: repo(src, 'app'), descriptor: { mediaType: 'x', digest, size: bytes.length } }, repo(dst, 'app'))).toBe('uploaded');
      expect(dst.requests('POST')).toHaveLength(2);
      expect(src.requests('GET')).toHaveLength(2);
      expect(dst.blobs.get(`app@${digest}`)?.equals(bytes)).toBe(true);
    });

    it('re-opens the source and PUTs to the new location on a 307, without following it', async () => {
      const src = await fake();
      const dst = await fake();
      const bytes = randomBytes(10_000);
      const digest = src.putBlob('app', bytes);
      let redirected = false;
      dst.hook = (req, res) => {
        if (req.method !== 'PUT' || redirected) return false;
        redirected = true;
        const id = [...dst.uploads.keys()][0];
        res.writeHead(307, { location: `/v2/app/blobs/uploads/${id}?_state=moved` }).end();
        return true;
      };
      const c = client([src.host, dst.host]);
      expect(await c.copyBlob({ repo: repo(src, 'app'), descriptor: { mediaType: 'x', digest, size: bytes.length } }, repo(dst, 'app'))).toBe('uploaded');
      expect(dst.requests('PUT').map((s) => s.query.get('_state'))).toEqual(['s', 'moved']);
      expect(src.requests('GET')).toHaveLength(2);
      expect(dst.requests('POST')).toHaveLength(1);
    });
  });

  describe('when copying a blob within one registry', () => {
    it('mounts it with one POST carrying mount and from', async () => {
      const f = await fake();
      const digest = f.putBlob('src', randomBytes(100));
      const c = client([f.host]);
      expect(await c.copyBlob({ repo: repo(f, 'src'), descriptor: { mediaType: 'x', digest, size: 100 } }, repo(f, 'dst'))).toBe('mounted');
      expect(f.seen.map((s) => `${s.method} ${s.path}?${s.query.toString()}`)).toEqual([`POST /v2/dst/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=src`]);
    });

    it('uploads instead when the token server refuses the mount scope, and does not try the mount again', async () => {
      const f = await fake({ auth: 'token', refuseMountFrom: ['other'] });
      const bytes = randomBytes(3000);
      const digest = f.putBlob('other', bytes);
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
      const c = client([f.host], { logger, keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      const source = { repo: repo(f, 'other'), descriptor: { mediaType: 'x', digest, size: bytes.length } };
      expect(await c.copyBlob(source, repo(f, 'dst'))).toBe('uploaded');
      const refusal = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'cross-repo mount refused; uploading');
      expect(refusal).toMatchObject({ registry: f.host, repository: 'dst', from: 'other' });
      expect(f.blobs.get(`dst@${digest}`)?.equals(bytes)).toBe(true);
      expect(f.requests('POST').map((s) => s.query.has('mount'))).toEqual([true, false]);
      expect(f.requests('POST')[1]?.path).toBe('/v2/dst/blobs/uploads/');

      f.blobs.delete(`dst@${digest}`);
      const tokensBefore = f.requests('GET', /^\/token$/).length;
      expect(await c.copyBlob(source, repo(f, 'dst2'))).toBe('uploaded');
      expect(f.requests('POST').map((s) => s.query.has('mount'))).toEqual([true, false, false]);
      expect(f.requests('GET', /^\/token$/).slice(tokensBefore).every((s) => s.query.getAll('scope').length === 1)).toBe(true);

      // What was refused is pull on that source: a mount from another repository is still tried.
      const fromSrc = { repo: repo(f, 'src'), descriptor: { mediaType: 'x', digest: f.putBlob('src', randomBytes(10)), size: 10 } };
      expect(await c.copyBlob(fromSrc, repo(f, 'dst'))).toBe('mounted');
    });

    it('asks for pull on the source in the same token, and uploads when the token server refuses that scope', async () => {
      const f = await fake({ auth: 'token', refuseScopesFor: ['secret'] });
      const bytes = randomBytes(100);
      const d1 = f.putBlob('src', bytes);
      const d2 = f.putBlob('secret', randomBytes(50));
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      expect(await c.copyBlob({ repo: repo(f, 'src'), descriptor: { mediaType: 'x', digest: d1, size: 100 } }, repo(f, 'dst'))).toBe('mounted');
      const tokenScopes = f.requests('GET', /^\/token$/).map((s) => s.query.getAll('scope'));
      expect(tokenScopes).toContainEqual(['repository:dst:pull,push', 'repository:src:pull']);

      const e = await rejectionOf(c.copyBlob({ repo: repo(f, 'secret'), descriptor: { mediaType: 'x', digest: d2, size: 50 } }, repo(f, 'dst')));
      // The mount was refused, so the client fell back to an upload; reading the source is refused too.
      expect(e.code).toBe('REGISTRY_DENIED');
      const posts = f.requests('POST');
      expect(posts.at(-1)?.query.get('mount')).toBeNull();
    });
  });

  describe('when the registry will not take a blob in one PUT', () => {
    /** Refuses the first PUT that carries a body, as a registry without monolithic uploads does. */
    function refuseMonolithicOnce(f: FakeRegistry): void {
      let refused = false;
      f.hook = (req, res, seen) => {
        if (req.method !== 'PUT' || seen.bodyBytes === 0 || refused) return false;
        refused = true;
        error(res, 416, 'BLOB_UPLOAD_INVALID', 'monolithic uploads unsupported');
        return true;
      };
    }

    it('falls back to PATCH chunks with Content-Range and a closing PUT', async () => {
      const f = await fake();
      refuseMonolithicOnce(f);
      const bytes = randomBytes(2500);
      const c = client([f.host], { chunkSize: 1000 });
      const result = await c.pushBlob(repo(f, 'app'), bytes);
      expect(result).toEqual({ digest: digestOf(bytes), outcome: 'uploaded' });
      expect(f.requests('PATCH').map((s) => s.headers['content-range'])).toEqual(['0-999', '1000-1999', '2000-2499']);
      expect(f.requests('PATCH').every((s) => s.headers['content-type'] === 'application/octet-stream')).toBe(true);
      const last = f.requests('PUT').at(-1);
      expect(last?.bodyBytes).toBe(0);
      expect(last?.query.get('digest')).toBe(digestOf(bytes));
      expect(f.blobs.get(`app@${digestOf(bytes)}`)?.equals(bytes)).toBe(true);
    });

    it('sends a blob under the default chunk size of 8 MiB in one PATCH', async () => {
      const f = await fake();
      refuseMonolithicOnce(f);
      const bytes = randomBytes(100_000);
      expect((await client([f.host]).pushBlob(repo(f, 'app'), bytes)).outcome).toBe('uploaded');
      expect(f.requests('PATCH').map((s) => s.headers['content-range'])).toEqual(['0-99999']);
    });

    it('pushBlob of a present blob costs one POST', async () => {
      const f = await fake();
      const bytes = randomBytes(10);
      f.putBlob('app', bytes);
      const c = client([f.host]);
      expect(await c.pushBlob(repo(f, 'app'), bytes)).toEqual({ digest: digestOf(bytes), outcome: 'present' });
      expect(f.seen).toHaveLength(1);
    });
  });

  describe('when listing tags', () => {
    it('follows Link rel="next" pages', async () => {
      const f = await fake();
      f.hook = (req, res) => {
        if (!req.url?.includes('/tags/list')) return false;
        const last = new URL(req.url, 'http://x').searchParams.get('last');
        const page = last === null ? { tags: ['a', 'b'], link: '</v2/app/tags/list?n=2&last=b>; rel="next"' } : { tags: ['c'], link: undefined };
        res.writeHead(200, { 'content-type': 'application/json', ...(page.link && { link: page.link }) }).end(JSON.stringify({ name: 'app', tags: page.tags }));
        return true;
      };
      expect(await client([f.host]).listTags(repo(f, 'app'))).toEqual(['a', 'b', 'c']);
    });

    it('answers undefined for an unknown repository', async () => {
      const f = await fake();
      expect(await client([f.host]).listTags(repo(f, 'nope'))).toBeUndefined();
    });
  });

  describe('when the referrers API is missing', () => {
    it('falls back to the sha256-<hex> tag and remembers not to ask again', async () => {
      const f = await fake();
      const subject = `sha256:${'a'.repeat(64)}`;
      const referrer = { mediaType: MediaTypes.ociManifest, digest: `sha256:${'b'.repeat(64)}`, size: 10, artifactType: 'application/x' };
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [referrer] }));
      f.putManifest('app', `sha256-${'a'.repeat(64)}`, index, MediaTypes.ociIndex);
      const c = client([f.host]);
      expect(await c.listReferrers(repo(f, 'app'), subject)).toEqual([referrer]);
      expect(await c.listReferrers(repo(f, 'app'), `sha256:${'c'.repeat(64)}`)).toEqual([]);
      expect(f.requests('GET', /\/referrers\//)).toHaveLength(1);
      expect(f.requests('GET', /\/referrers\//)[0]?.headers.accept).toBe(MediaTypes.ociIndex);
    });

    it('uses the API when it answers an OCI index', async () => {
      const f = await fake();
      const referrer = { mediaType: MediaTypes.ociManifest, digest: `sha256:${'b'.repeat(64)}`, size: 10 };
      f.hook = (req, res) => {
        if (!req.url?.includes('/referrers/')) return false;
        res.writeHead(200, { 'content-type': MediaTypes.ociIndex }).end(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [referrer] }));
        return true;
      };
      expect(await client([f.host]).listReferrers(repo(f, 'app'), `sha256:${'a'.repeat(64)}`)).toEqual([referrer]);
      expect(f.requests('GET', /\/manifests\//)).toHaveLength(0);
    });
  });

  describe('when a blob is opened as a stream', () => {
    it('delivers the verified bytes', async () => {
      const f = await fake();
      const bytes = randomBytes(200_000);
      const digest = f.putBlob('app', bytes);
      const stream = await client([f.host]).openBlob(repo(f, 'app'), { mediaType: 'x', digest, size: bytes.length });
      const chunks: Buffer[] = [];
      for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    });

    it('fails the stream with DIGEST_MISMATCH when the content is wrong', async () => {
      const f = await fake();
      const digest = `sha256:${'e'.repeat(64)}`;
      f.blobs.set(`app@${digest}`, randomBytes(1000));
      const stream = await client([f.host]).openBlob(repo(f, 'app'), { mediaType: 'x', digest, size: 1000 });
      const consume = async (): Promise<void> => {
        for await (const _ of stream as AsyncIterable<Buffer>) void _;
      };
      expect((await rejectionOf(consume())).code).toBe('DIGEST_MISMATCH');
    });
  });

  describe('when configured', () => {
    it('logs method, registry, path, status and ms at debug level, never headers', async () => {
      const f = await fake({ auth: 'basic', password: 'log-secret' });
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
      const c = client([f.host], { logger, keychain: staticKeychain({ username: 'user', password: 'log-secret' }) });
      await c.getManifest({ ...repo(f, 'app'), tag: 'v1' });
      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(entries.map((e) => [e['method'], e['registry'], e['path'], e['status']])).toEqual([
        ['GET', f.host, '/v2/app/manifests/v1', 401],
        ['GET', f.host, '/v2/app/manifests/v1', 200],
      ]);
      expect(entries.every((e) => typeof e['ms'] === 'number' && e['level'] === 20)).toBe(true);
      const all = lines.join('\n');
      expect(all).not.toContain('log-secret');
      expect(all).not.toContain(Buffer.from('user:log-secret').toString('base64'));
      expect(all.toLowerCase()).not.toContain('authorization');
    });

    it('sends bundle-promoter/<package version> as User-Agent, or the one it is given', async () => {
      const f = await fake();
      const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      await client([f.host]).headManifest({ ...repo(f, 'app'), tag: 'v1' });
      await client([f.host], { userAgent: 'custom/1' }).headManifest({ ...repo(f, 'app'), tag: 'v1' });
      expect(f.seen.map((s) => s.headers['user-agent'])).toEqual([`bundle-promoter/${version}`, 'custom/1']);
    });

    it('awaits onRequest before each request and counts bytes', async () => {
      const f = await fake();
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const events: string[] = [];
      const c = client([f.host], { onRequest: (e) => void events.push(`${e.kind} ${e.registry} ${e.path}`) });
      await c.getManifest({ ...repo(f, 'app'), tag: 'v1' });
      expect(events).toEqual([`GET manifest ${f.host} /v2/app/manifests/v1`]);
      expect(c.stats.bytesDownloaded).toBe(MANIFEST.length);
    });

    it('speaks https to a registry not listed as insecure', async () => {
      const f = await fake();
      const c = client([], { retry: { maxAttempts: 1 } });
      const e = await rejectionOf(c.getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(['TLS_CONFIG', 'REGISTRY_UNAVAILABLE']).toContain(e.code);
      expect(f.seen).toHaveLength(0); // a TLS hello is not an HTTP request
    });

    it('close is idempotent and later requests fail', async () => {
      const f = await fake();
      const c = client([f.host]);
      await c.close();
      await c.close();
      expect((await rejectionOf(c.getManifest({ ...repo(f, 'app'), tag: 'v1' }))).code).toBe('ABORTED');
    });

    it('stops waiting when the signal aborts', async () => {
      const f = await fake();
      f.hook = () => true; // never answers
      const controller = new AbortController();
      const pending = client([f.host]).getManifest({ ...repo(f, 'app'), tag: 'v1' }, controller.signal);
      await new Promise<void>((resolve) => {
        const t = setInterval(() => f.seen.length > 0 && (clearInterval(t), resolve()), 5);
      });
      controller.abort();
      expect((await rejectionOf(pending)).code).toBe('ABORTED');
    });
  });

  describe('when a manifest HEAD or GET answers incompletely', () => {
    it('when HEAD gives no digest and a generic Content-Type, takes the descriptor from one GET', async () => {
      const f = await fake();
      const digest = f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      answer(f, (method) => method === 'HEAD', (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end());
      expect(await client([f.host]).headManifest({ ...repo(f, 'app'), tag: 'v1' })).toEqual({ mediaType: MediaTypes.ociManifest, digest, size: MANIFEST.length });
      expect(f.seen.map((s) => s.method)).toEqual(['HEAD', 'GET']);
    });

    it('when HEAD by digest reports another digest, fails with DIGEST_MISMATCH naming it', async () => {
      const f = await fake();
      const digest = f.putManifest('app', undefined, MANIFEST, MediaTypes.ociManifest);
      answer(f, (method) => method === 'HEAD', (res) => void res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'content-length': 10, 'docker-content-digest': OTHER_DIGEST }).end());
      const e = await rejectionOf(client([f.host]).headManifest({ ...repo(f, 'app'), digest }));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(`registry reports digest ${OTHER_DIGEST}`);
    });

    it('when a reference has neither tag nor digest, fails with INVALID_REFERENCE and sends nothing', async () => {
      const f = await fake();
      const e = await rejectionOf(client([f.host]).headManifest(repo(f, 'app')));
      expect(e.code).toBe('INVALID_REFERENCE');
      expect(e.message).toContain('has neither tag nor digest');
      expect(f.seen).toHaveLength(0);
    });

    it('when a manifest is served as application/json, takes the media type the body declares, if it is a string', async () => {
      const f = await fake();
      const declared = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }));
      const odd = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 7, manifests: [] }));
      f.putManifest('app', 'declared', declared, 'application/json');
      f.putManifest('app', 'odd', odd, 'application/json');
      f.putManifest('app', 'broken', Buffer.from('{not json'), 'application/json');
      const c = client([f.host]);
      expect((await c.getManifest({ ...repo(f, 'app'), tag: 'declared' })).mediaType).toBe(MediaTypes.ociIndex);
      expect((await c.getManifest({ ...repo(f, 'app'), tag: 'odd' })).mediaType).toBe('application/json');
      expect((await c.getManifest({ ...repo(f, 'app'), tag: 'broken' })).mediaType).toBe('application/json');
    });
  });

  describe('when findManifest is told to treat denials as absence', () => {
    it('answers undefined when the token server denies the scope or refuses the credentials, and fails without the option', async () => {
      const denying = await fake({ auth: 'token', refuseScopesFor: ['app'] });
      const c = client([denying.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      const ref = { ...repo(denying, 'app'), tag: 'v1.sig' };
      expect(await c.findManifest(ref, { absentIfDenied: true })).toBeUndefined();
      expect((await rejectionOf(c.findManifest(ref))).code).toBe('REGISTRY_DENIED');

      const refusing = await fake({ auth: 'token' });
      const wrong = client([refusing.host], { keychain: staticKeychain({ username: 'user', password: 'wrong' }) });
      expect(await wrong.findManifest({ ...repo(refusing, 'app'), tag: 'v1.sig' }, { absentIfDenied: true })).toBeUndefined();
      expect((await rejectionOf(wrong.findManifest({ ...repo(refusing, 'app'), tag: 'v1.sig' }))).code).toBe('REGISTRY_UNAUTHORIZED');
    });

    it('still fails on other errors', async () => {
      const f = await fake();
      f.hook = (_req, res) => (error(res, 501, 'UNSUPPORTED', 'not here'), true);
      expect((await rejectionOf(client([f.host]).findManifest({ ...repo(f, 'app'), tag: 'v1' }, { absentIfDenied: true }))).code).toBe('REGISTRY_UNAVAILABLE');
    });
  });

  describe('when a manifest is put', () => {
    it('refuses a manifest over 4 MiB before sending anything', async () => {
      const f = await fake();
      const e = await rejectionOf(client([f.host]).putManifest({ ...repo(f, 'app'), tag: 'big' }, { mediaType: MediaTypes.ociManifest, bytes: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) }));
      expect(e.code).toBe('MANIFEST_TOO_LARGE');
      expect(e.message).toContain(`is ${4 * 1024 * 1024 + 1} bytes, more than ${4 * 1024 * 1024}`);
      expect(f.seen).toHaveLength(0);
    });

    it('sends a manifest of exactly 4 MiB', async () => {
      const f = await fake();
      const bytes = Buffer.alloc(4 * 1024 * 1024, 0x20);
      expect(await client([f.host]).putManifest({ ...repo(f, 'app'), tag: 'big' }, { mediaType: MediaTypes.ociManifest, bytes })).toBe(digestOf(bytes));
      expect(f.manifests.get('app:big')?.bytes.length).toBe(bytes.length);
    });

    it('refuses bytes that do not hash to the digest of the reference before sending anything', async () => {
      const f = await fake();
      const e = await rejectionOf(client([f.host]).putManifest({ ...repo(f, 'app'), digest: OTHER_DIGEST }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST }));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(`hashes to ${digestOf(MANIFEST)}`);
      expect(f.seen).toHaveLength(0);
    });

    it('returns the digest the registry reports, its own when the registry reports none, and counts the bytes', async () => {
      const f = await fake();
      let reported: string | undefined = OTHER_DIGEST;
      answer(f, (method) => method === 'PUT', (res) => void res.writeHead(201, reported === undefined ? {} : { 'docker-content-digest': reported }).end());
      const c = client([f.host]);
      const put = () => c.putManifest({ ...repo(f, 'app'), tag: 'v1' }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST });
      expect(await put()).toBe(OTHER_DIGEST);
      reported = undefined;
      expect(await put()).toBe(digestOf(MANIFEST));
      expect(c.stats.bytesUploaded).toBe(2 * MANIFEST.length);
    });

    it('when a PUT by digest is answered 400 TAG_INVALID, fails with REGISTRY_REJECTED naming the PUT', async () => {
      const f = await fake();
      f.hook = (req, res) => (req.method === 'PUT' ? (error(res, 400, 'TAG_INVALID', 'refused'), true) : false);
      const e = await rejectionOf(client([f.host]).putManifest({ ...repo(f, 'app'), digest: digestOf(MANIFEST) }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST }));
      expect(e.code).toBe('REGISTRY_REJECTED');
      expect(e.message).toContain('PUT manifest');
      expect(f.requests('HEAD')).toHaveLength(0);
    });

    it('when a tag answered 409 names nothing, reports TAG_IMMUTABLE naming "another manifest"; when it names a digest, that digest', async () => {
      const f = await fake();
      f.hook = (req, res) => (req.method === 'PUT' ? (error(res, 409, 'CONFLICT', 'tag is immutable'), true) : false);
      const c = client([f.host]);
      const put = () => c.putManifest({ ...repo(f, 'app'), tag: 'v1' }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST });
      const absent = await rejectionOf(put());
      expect(absent.code).toBe('TAG_IMMUTABLE');
      expect(absent.message).toContain(`names another manifest, not ${digestOf(MANIFEST)}: CONFLICT: tag is immutable`);
      const held = f.putManifest('app', 'v1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] })), MediaTypes.ociIndex);
      expect((await rejectionOf(put())).message).toContain(`names ${held}, not`);
    });
  });

  describe('when referrers are listed through the API', () => {
    const subject = `sha256:${'a'.repeat(64)}`;
    /** Serves the referrers API: `pages[i]` on the i-th page, each linking to the next. */
    function referrersPages(f: FakeRegistry, pages: readonly { type?: string; body: Buffer }[]): void {
      answer(f, (_m, path) => path.includes('/referrers/'), (res, seen) => {
        const i = Number(seen.query.get('page') ?? 0);
        const link = i + 1 < pages.length ? { link: `</v2/app/referrers/${subject}?page=${i + 1}>; rel="next"` } : {};
        res.writeHead(200, { 'content-type': pages[i]?.type ?? MediaTypes.ociIndex, ...link }).end(pages[i]?.body);
      });
    }

    it('reports the API unknown before and supported after it answered an index, and then writes no fallback tag', async () => {
      const f = await fake();
      referrersPages(f, [{ body: ociIndex([referrerOf('b')]) }]);
      const c = client([f.host]);
      expect(c.referrersApi(f.host)).toBe('unknown');
      expect(await c.listReferrers(repo(f, 'app'), subject)).toEqual([referrerOf('b')]);
      expect(c.referrersApi(f.host)).toBe('supported');
      expect(await c.indexReferrers(repo(f, 'app'), subject, [referrerOf('c')])).toBe(false);
      expect(f.requests('PUT')).toHaveLength(0);
    });

    it('follows Link pages and joins them', async () => {
      const f = await fake();
      referrersPages(f, [{ body: ociIndex([referrerOf('b')]) }, { body: ociIndex([referrerOf('c')]) }]);
      expect(await client([f.host]).listReferrers(repo(f, 'app'), subject)).toEqual([referrerOf('b'), referrerOf('c')]);
    });

    it('fails with REGISTRY_PROTOCOL when a later page is not an OCI index', async () => {
      const f = await fake();
      referrersPages(f, [{ body: ociIndex([referrerOf('b')]) }, { type: 'application/json', body: ociIndex([]) }]);
      const e = await rejectionOf(client([f.host]).listReferrers(repo(f, 'app'), subject));
      expect(e.code).toBe('REGISTRY_PROTOCOL');
      expect(e.message).toContain(`referrers of ${subject} in ${f.host}/app: a later page is not an OCI index`);
    });

    it('when the first answer is 200 but not an OCI index, falls back to the tag and marks the API unsupported', async () => {
      const f = await fake();
      referrersPages(f, [{ type: 'application/json', body: ociIndex([referrerOf('b')]) }]);
      f.putManifest('app', `sha256-${'a'.repeat(64)}`, ociIndex([referrerOf('c')]), MediaTypes.ociIndex);
      const c = client([f.host]);
      expect(await c.listReferrers(repo(f, 'app'), subject)).toEqual([referrerOf('c')]);
      expect(c.referrersApi(f.host)).toBe('unsupported');
    });

    it('stops when a page links to a page already read, keeping what was listed', async () => {
      const f = await fake();
      answer(f, (_m, path) => path.includes('/referrers/'), (res, seen) => {
        const page = seen.query.get('page') ?? '0';
        // Page 1 links back to itself: a pager without a memory would read it forever.
        res.writeHead(200, { 'content-type': MediaTypes.ociIndex, link: `</v2/app/referrers/${subject}?page=1>; rel="next"` }).end(ociIndex([referrerOf(page === '0' ? 'b' : 'c')]));
      });
      expect(await client([f.host]).listReferrers(repo(f, 'app'), subject)).toEqual([referrerOf('b'), referrerOf('c')]);
      expect(f.requests('GET', /referrers/)).toHaveLength(2);
    });

    it(`fails with REGISTRY_PROTOCOL after MAX_REFERRER_PAGES (${MAX_REFERRER_PAGES}) pages of new links`, async () => {
      const f = await fake();
      answer(f, (_m, path) => path.includes('/referrers/'), (res, seen) => {
        const i = Number(seen.query.get('page') ?? 0);
        res.writeHead(200, { 'content-type': MediaTypes.ociIndex, link: `</v2/app/referrers/${subject}?page=${i + 1}>; rel="next"` }).end(ociIndex([]));
      });
      const e = await rejectionOf(client([f.host]).listReferrers(repo(f, 'app'), subject));
      expect(e.code).toBe('REGISTRY_PROTOCOL');
      expect(e.message).toContain(`referrers of ${subject} in ${f.host}/app: more than ${MAX_REFERRER_PAGES} pages`);
      expect(f.requests('GET', /referrers/)).toHaveLength(MAX_REFERRER_PAGES);
    });

    it('refuses an answer over 4 MiB with MANIFEST_TOO_LARGE', async () => {
      const f = await fake();
      referrersPages(f, [{ body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) }]);
      const e = await rejectionOf(client([f.host]).listReferrers(repo(f, 'app'), subject));
      expect(e.code).toBe('MANIFEST_TOO_LARGE');
      expect(e.message).toContain(`referrers of ${subject} in ${f.host}/app exceed ${4 * 1024 * 1024} bytes`);
    });
  });

  describe('when referrers are indexed under the fallback tag', () => {
    const subject = `sha256:${'a'.repeat(64)}`;
    const tag = `sha256-${'a'.repeat(64)}`;

    it('writes the merged index and answers true, then answers false and writes nothing when all are listed', async () => {
      const f = await fake();
      f.putManifest('app', tag, ociIndex([referrerOf('b')]), MediaTypes.ociIndex);
      const c = client([f.host]);
      expect(await c.indexReferrers(repo(f, 'app'), subject, [referrerOf('c')])).toBe(true);
      expect(await c.listReferrers(repo(f, 'app'), subject)).toEqual([referrerOf('b'), referrerOf('c')]);
      expect(await c.indexReferrers(repo(f, 'app'), subject, [referrerOf('b'), referrerOf('c')])).toBe(false);
      expect(f.requests('PUT')).toHaveLength(1);
    });

    it('lists no referrers, and refuses to index, when the tag holds an image manifest', async () => {
      const f = await fake();
      f.putManifest('app', tag, MANIFEST, MediaTypes.ociManifest);
      const c = client([f.host]);
      expect(await c.listReferrers(repo(f, 'app'), subject)).toEqual([]);
      const e = await rejectionOf(c.indexReferrers(repo(f, 'app'), subject, [referrerOf('c')]));
      expect(e.code).toBe('MANIFEST_INVALID');
      expect(e.message).toContain(`${f.host}/app:${tag} exists but is not an OCI image index`);
    });

    it('writes the template byte for byte when the tag is missing and the template lists exactly the referrers', async () => {
      const f = await fake();
      const template = Buffer.from(`${ociIndex([referrerOf('c')]).toString()}\n`);
      await client([f.host]).indexReferrers(repo(f, 'app'), subject, [referrerOf('c')], { template: { mediaType: MediaTypes.ociIndex, digest: digestOf(template), bytes: template } });
      expect(f.manifests.get(`app:${tag}`)?.bytes.equals(template)).toBe(true);
    });

    it('merges instead when the template lists only some of the referrers, or others, or is no index', async () => {
      const templates = [{ mediaType: MediaTypes.ociIndex, bytes: ociIndex([referrerOf('c')]) }, { mediaType: MediaTypes.ociIndex, bytes: ociIndex([referrerOf('c'), referrerOf('e')]) }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST }];
      for (const { mediaType, bytes } of templates) {
        const f = await fake();
        await client([f.host]).indexReferrers(repo(f, 'app'), subject, [referrerOf('c'), referrerOf('d')], { template: { mediaType, digest: digestOf(bytes), bytes } });
        expect(await client([f.host]).listReferrers(repo(f, 'app'), subject)).toEqual([referrerOf('c'), referrerOf('d')]);
      }
    });

    it('when another writer added the referrers between the two reads of the tag, writes nothing and answers false', async () => {
      const f = await fake();
      f.putManifest('app', tag, ociIndex([]), MediaTypes.ociIndex);
      let reads = 0;
      answer(f, (method, path) => method === 'GET' && path.endsWith(`/manifests/${tag}`) && reads++ === 1, (res) => {
        res.writeHead(200, { 'content-type': MediaTypes.ociIndex }).end(ociIndex([referrerOf('c')]));
      });
      expect(await client([f.host]).indexReferrers(repo(f, 'app'), subject, [referrerOf('c')])).toBe(false);
      expect(f.requests('PUT')).toHaveLength(0);
    });
  });
});
