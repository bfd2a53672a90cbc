import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { MediaTypes, staticKeychain } from '../../../src/oci/index.js';
import { PlanExecutor, type PromotionPlan } from '../../../src/promote/index.js';
import { rejectionOf } from '../../support/failure.js';
import { FakeRegistry, error } from './fake-registry.js';
import { TEST_MANIFEST, fakeRegistryHarness } from './fake-registry-harness.js';

const MANIFEST = TEST_MANIFEST;
const OTHER = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: `sha256:${'2'.repeat(64)}`, size: 2 }, layers: [] }));

const { fake, client, repo } = fakeRegistryHarness({ client: { retry: { baseDelayMs: 5, maxDelayMs: 20 } } });

/** Answers every manifest PUT to an existing tag like an ECR repository with immutable tags. */
function immutableTags(f: FakeRegistry): void {
  f.hook = (req, res, seen) => {
    const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(seen.path);
    if (req.method !== 'PUT' || !m || m[2]?.startsWith('sha256:') || !f.manifests.has(`${m[1]}:${m[2]}`)) return false;
    error(res, 400, 'TAG_INVALID', `The image tag '${m[2]}' already exists in the repository and cannot be overwritten because the repository is immutable.`);
    return true;
  };
}

describe('RegistryClient hardening (issue #9)', () => {
  describe('when a tag already holds the digest (immutable tags)', () => {
    it('writeBundleTags HEADs each tag and skips the PUT when it already names the digest', async () => {
      const f = await fake();
      immutableTags(f);
      const digest = f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const executor = new PlanExecutor({ registry: client([f.host]), log: silentLogger() });
      const plan = { target: repo(f, 'app'), targetTags: ['v1', 'v2'], root: { mediaType: MediaTypes.ociManifest, bytes: MANIFEST }, rootDigest: digest } as unknown as PromotionPlan;
      expect(await executor.writeBundleTags(plan)).toBe(1);
      expect(f.requests('PUT', /manifests\/v1$/)).toHaveLength(0);
      expect(f.requests('PUT', /manifests\/v2$/)).toHaveLength(1);
    });

    it('treats TAG_INVALID on a PUT of the same digest as success', async () => {
      const f = await fake();
      immutableTags(f);
      const digest = f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      expect(await client([f.host]).putManifest({ ...repo(f, 'app'), tag: 'v1' }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST })).toBe(digest);
    });

    it('reports TAG_IMMUTABLE when the immutable tag names a different digest (TAG_INVALID or 409)', async () => {
      const f = await fake();
      immutableTags(f);
      f.putManifest('app', 'v1', OTHER, MediaTypes.ociManifest);
      const e = await rejectionOf(client([f.host]).putManifest({ ...repo(f, 'app'), tag: 'v1' }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST }));
      expect(e.code).toBe('TAG_IMMUTABLE');
      expect(e.message).toContain('v1');

      const g = await fake();
      g.putManifest('app', 'v1', OTHER, MediaTypes.ociManifest);
      g.hook = (req, res) => (req.method === 'PUT' ? (error(res, 409, 'CONFLICT', 'tag is immutable'), true) : false);
      expect((await rejectionOf(client([g.host]).putManifest({ ...repo(g, 'app'), tag: 'v1' }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST }))).code).toBe('TAG_IMMUTABLE');
    });

    it('still reports any other 400 on a manifest PUT as REGISTRY_REJECTED', async () => {
      const f = await fake();
      f.hook = (req, res) => (req.method === 'PUT' ? (error(res, 400, 'MANIFEST_INVALID', 'bad'), true) : false);
      const e = await rejectionOf(client([f.host]).putManifest({ ...repo(f, 'app'), tag: 'v1' }, { mediaType: MediaTypes.ociManifest, bytes: MANIFEST }));
      expect(e.code).toBe('REGISTRY_REJECTED');
      expect(e.message).toContain(`PUT manifest ${f.host}/app:v1: registry ${f.host} answered 400: MANIFEST_INVALID`);
    });
  });

  describe('when the registry throttles without Retry-After', () => {
    it('retries a 429 past maxAttempts with growing waits of at least half the throttle ceiling', async () => {
      const f = await fake();
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      let n = 0;
      const at: number[] = [];
      f.hook = (_req, res) => {
        at.push(performance.now());
        return n++ < 5 ? (error(res, 429, 'TOOMANYREQUESTS', 'slow down'), true) : false;
      };
      const c = client([f.host], { retry: { maxAttempts: 2, throttleBaseDelayMs: 20, throttleMaxDelayMs: 100, deadlineMs: 10_000 } });
      await c.getManifest({ ...repo(f, 'app'), tag: 'v1' });
      expect(at).toHaveLength(6);
      const gaps = at.slice(1).map((t, i) => t - (at[i] ?? 0));
      [10, 20, 40, 50, 50].forEach((min, i) => expect(gaps[i]).toBeGreaterThanOrEqual(min - 2));
    });

    it('gives up with REGISTRY_THROTTLED once the next wait would cross the deadline', async () => {
      const f = await fake();
      f.hook = (_req, res) => (error(res, 429, 'TOOMANYREQUESTS', 'slow down'), true);
      const c = client([f.host], { retry: { throttleBaseDelayMs: 40, throttleMaxDelayMs: 40, deadlineMs: 150 } });
      const started = performance.now();
      const e = await rejectionOf(c.getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_THROTTLED');
      expect(performance.now() - started).toBeLessThan(1000);
      expect(f.seen.length).toBeGreaterThanOrEqual(3);
      expect(f.seen.length).toBeLessThanOrEqual(8);
    });

    it('never restarts a blob copy sooner than a Retry-After longer than the cap asks', async () => {
      const f = await fake();
      const blob = Buffer.from('some layer bytes');
      const src = f.putBlob('src', blob);
      const g = await fake();
      g.hook = (req, res) => (req.method === 'PUT' ? (error(res, 429, 'TOOMANYREQUESTS', 'slow down', { 'retry-after': '30' }), true) : false);
      const c = client([f.host, g.host], { retry: { maxRetryAfterMs: 50 } });
      const e = await rejectionOf(c.copyBlob({ repo: repo(f, 'src'), descriptor: { mediaType: MediaTypes.ociLayer, digest: src, size: blob.length } }, repo(g, 'dst')));
      expect(e.code).toBe('REGISTRY_THROTTLED');
      expect(e.retryAfterMs).toBe(30_000);
      expect(g.requests('PUT')).toHaveLength(1);
    });
  });

  describe('when the registry takes long to commit an uploaded blob', () => {
    const isCommit = (method: string | undefined, path: string): boolean => method === 'PUT' && path.includes('/blobs/uploads/');

    it('waits timeouts.commitMs, not headersMs, for the answer to the blob PUT and sends the blob once', async () => {
      const f = await fake();
      f.hook = async (req, _res, seen) => {
        if (isCommit(req.method, seen.path)) await new Promise((r) => setTimeout(r, 300));
        return false;
      };
      const c = client([f.host], { timeouts: { headersMs: 100, commitMs: 5_000 } });
      const { outcome } = await c.pushBlob(repo(f, 'app'), Buffer.from('a large layer, slowly committed'));
      expect(outcome).toBe('uploaded');
      expect(f.requests('PUT', /blobs\/uploads/)).toHaveLength(1);
    });

    it('HEADs the blob after a commit timeout and does not send it again when it arrived', async () => {
      const f = await fake();
      const bytes = Buffer.from('committed, but the answer came too late');
      f.hook = (req, res, seen, body) => {
        if (!isCommit(req.method, seen.path)) return false;
        f.blobs.set(`app@${seen.query.get('digest') ?? ''}`, body);
        setTimeout(() => res.destroyed || res.writeHead(201).end(), 1_000);
        return true;
      };
      const c = client([f.host], { timeouts: { commitMs: 100 } });
      const { outcome } = await c.pushBlob(repo(f, 'app'), bytes);
      expect(outcome).toBe('uploaded');
      expect(f.requests('PUT', /blobs\/uploads/)).toHaveLength(1);
      // One before the upload (no mount has answered 201 yet), one after the lost answer.
      expect(f.requests('HEAD', /\/blobs\/sha256:/)).toHaveLength(2);
    });
  });

  describe('when a registry answers 202 to every mount (ECR, Artifactory)', () => {
    /** Drops `mount`/`from` so that every POST starts an upload, as ECR does. */
    function ignoreMounts(f: FakeRegistry): void {
      f.hook = (req, res, seen) => {
        if (req.method !== 'POST' || !seen.query.has('mount')) return false;
        const name = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(seen.path)?.[1] ?? '';
        f.uploads.set('ecr-upload', { repo: name, data: [] });
        res.writeHead(202, { location: `/v2/${name}/blobs/uploads/ecr-upload` }).end();
        return true;
      };
    }

    it('HEADs the blob after the 202 and uploads nothing when the target has it', async () => {
      const src = await fake();
      const dst = await fake();
      ignoreMounts(dst);
      const bytes = Buffer.from('a shared base layer');
      const digest = src.putBlob('app', bytes);
      dst.putBlob('app', bytes);
      const c = client([src.host, dst.host]);
      const source = { repo: repo(src, 'app'), descriptor: { mediaType: MediaTypes.ociLayer, digest, size: bytes.length } };
      expect(await c.copyBlob(source, repo(dst, 'app'))).toBe('present');
      expect(dst.requests('PUT')).toHaveLength(0);
      expect(src.requests('GET')).toHaveLength(0);
      expect(dst.requests('HEAD', /\/blobs\//)).toHaveLength(1);
    });

    it('still uploads a blob the HEAD does not find', async () => {
      const src = await fake();
      const dst = await fake();
      ignoreMounts(dst);
      const bytes = Buffer.from('a new layer');
      const digest = src.putBlob('app', bytes);
      const c = client([src.host, dst.host]);
      expect(await c.copyBlob({ repo: repo(src, 'app'), descriptor: { mediaType: MediaTypes.ociLayer, digest, size: bytes.length } }, repo(dst, 'app'))).toBe('uploaded');
      expect(dst.blobs.get(`app@${digest}`)?.equals(bytes)).toBe(true);
    });

    it('skips the HEAD when the caller knows the target repository is new (a cold promotion)', async () => {
      const src = await fake();
      const dst = await fake();
      ignoreMounts(dst);
      const bytes = Buffer.from('a layer for a new repository');
      const digest = src.putBlob('app', bytes);
      const c = client([src.host, dst.host]);
      const source = { repo: repo(src, 'app'), descriptor: { mediaType: MediaTypes.ociLayer, digest, size: bytes.length }, targetIsNew: true };
      expect(await c.copyBlob(source, repo(dst, 'fresh'))).toBe('uploaded');
      expect(dst.requests('HEAD', /\/blobs\//)).toHaveLength(0);
      expect(dst.blobs.get(`fresh@${digest}`)?.equals(bytes)).toBe(true);
    });
  });

  describe('when Nexus refuses a PUT because the blob cannot be updated', () => {
    function cannotUpdate(f: FakeRegistry, store: boolean): void {
      f.hook = (req, res, seen, body) => {
        if (req.method !== 'PUT' || !seen.path.includes('/blobs/uploads/')) return false;
        if (store) f.blobs.set(`app@${seen.query.get('digest') ?? ''}`, body);
        error(res, 400, 'BLOB_UPLOAD_INVALID', 'Repository does not allow updating assets: docker-hosted; asset cannot be updated');
        return true;
      };
    }

    it('checks the blob with a HEAD and never falls back to PATCH chunks', async () => {
      const f = await fake();
      cannotUpdate(f, true);
      const { outcome } = await client([f.host]).pushBlob(repo(f, 'app'), Buffer.from('arrived meanwhile'));
      expect(outcome).toBe('present');
      expect(f.requests('PATCH')).toHaveLength(0);
    });

    it('reports REGISTRY_REJECTED when the blob is not there either', async () => {
      const f = await fake();
      cannotUpdate(f, false);
      const e = await rejectionOf(client([f.host]).pushBlob(repo(f, 'app'), Buffer.from('refused')));
      expect(e.code).toBe('REGISTRY_REJECTED');
      expect(e.message).toContain('PUT blob sha256:');
      expect(e.message).toContain('cannot be updated');
      expect(f.requests('PATCH')).toHaveLength(0);
    });
  });

  describe('when listing tags', () => {
    function tagPages(f: FakeRegistry, answer: (query: URLSearchParams, res: ServerResponse) => void): void {
      f.hook = (_req, res, seen) => (seen.path.endsWith('/tags/list') ? (answer(seen.query, res), true) : false);
    }
    const page = (res: ServerResponse, tags: string[], link?: string): void =>
      void res.writeHead(200, { 'content-type': 'application/json', ...(link && { link }) }).end(JSON.stringify({ name: 'app', tags }));

    it('asks for n=1000, and lists without n when the registry refuses that size (Quay)', async () => {
      const f = await fake();
      tagPages(f, (q, res) => {
        if (q.has('n') && Number(q.get('n')) > 100) return error(res, 400, 'TOO_MANY_TAGS_REQUESTED', 'too many tags requested');
        page(res, ['a', 'b']);
      });
      expect(await client([f.host]).listTags(repo(f, 'app'))).toEqual(['a', 'b']);
      expect(f.requests('GET', /tags/).map((r) => r.query.get('n'))).toEqual(['1000', null]);
    });

    it('stops when the Link repeats a page already read', async () => {
      const f = await fake();
      tagPages(f, (q, res) => (q.get('last') === 'b' ? page(res, ['c'], '</v2/app/tags/list?last=b>; rel="next"') : page(res, ['a', 'b'], '</v2/app/tags/list?last=b>; rel="next"')));
      expect(await client([f.host]).listTags(repo(f, 'app'))).toEqual(['a', 'b', 'c']);
      expect(f.requests('GET', /tags/)).toHaveLength(2);
    });

    it('fails with REGISTRY_PROTOCOL after MAX_TAG_PAGES pages', async () => {
      const f = await fake();
      let i = 0;
      tagPages(f, (_q, res) => page(res, [`t${i}`], `</v2/app/tags/list?last=t${i++}>; rel="next"`));
      const e = await rejectionOf(client([f.host]).listTags(repo(f, 'app')));
      expect(e.code).toBe('REGISTRY_PROTOCOL');
      expect(e.message).toContain(`tags of ${f.host}/app: more than 1000 pages`);
      expect(f.requests('GET', /tags/)).toHaveLength(1000);
    });

    it('when the plain listing is refused too, fails with REGISTRY_REJECTED after two requests', async () => {
      const f = await fake();
      tagPages(f, (_q, res) => error(res, 400, 'TOO_MANY_TAGS_REQUESTED', 'too many tags requested'));
      expect((await rejectionOf(client([f.host]).listTags(repo(f, 'app')))).code).toBe('REGISTRY_REJECTED');
      expect(f.requests('GET', /tags/)).toHaveLength(2);
    });

    it('when the size is refused and the plain listing answers 404, answers undefined', async () => {
      const f = await fake();
      tagPages(f, (q, res) => (q.has('n') ? error(res, 400, 'TOO_MANY_TAGS_REQUESTED', 'too many') : error(res, 404, 'NAME_UNKNOWN', 'unknown')));
      expect(await client([f.host]).listTags(repo(f, 'app'))).toBeUndefined();
    });

    it('follows a Link written without quotes and with a space before the semicolon, drops duplicates and non-strings', async () => {
      const f = await fake();
      tagPages(f, (q, res) => (q.get('last') === 'b' ? page(res, ['b', 'c']) : page(res, ['a', 'b', 3] as string[], '</v2/app/tags/list?last=b> ;rel=next')));
      expect(await client([f.host]).listTags(repo(f, 'app'))).toEqual(['a', 'b', 'c']);
    });

    it('when a repository has no tags (distribution answers "tags": null), answers an empty list', async () => {
      const f = await fake();
      tagPages(f, (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"name":"app","tags":null}'));
      expect(await client([f.host]).listTags(repo(f, 'app'))).toEqual([]);
    });

    it('fails with REGISTRY_PROTOCOL when a page is not JSON, or JSON but not an object', async () => {
      const f = await fake();
      let body = '{"tags": [';
      tagPages(f, (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(body));
      const c = client([f.host]);
      const invalid = await rejectionOf(c.listTags(repo(f, 'app')));
      expect(invalid.code).toBe('REGISTRY_PROTOCOL');
      expect(invalid.message).toContain(`tags of ${f.host}/app: the registry answered invalid JSON`);
      expect(invalid.cause).toBeInstanceOf(SyntaxError);
      for (body of ['null', '"tags"']) {
        const e = await rejectionOf(c.listTags(repo(f, 'app')));
        expect(e.code).toBe('REGISTRY_PROTOCOL');
        expect(e.message).toContain(`tags of ${f.host}/app: the registry answered JSON that is not an object`);
      }
    });

    it('with absentIfDenied, treats a token server denying the scope like a missing repository; other failures still fail', async () => {
      const f = await fake({ auth: 'token', refuseScopesFor: ['new'] });
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      expect(await c.listTags(repo(f, 'new'), { absentIfDenied: true })).toBeUndefined();
      expect((await rejectionOf(c.listTags(repo(f, 'new')))).code).toBe('REGISTRY_DENIED');
      const wrong = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'wrong' }) });
      expect(await wrong.listTags(repo(f, 'app'), { absentIfDenied: true })).toBeUndefined();
      expect((await rejectionOf(wrong.listTags(repo(f, 'app')))).code).toBe('REGISTRY_UNAUTHORIZED');
      const g = await fake();
      tagPages(g, (_q, res) => error(res, 501, 'UNSUPPORTED', 'no listing'));
      expect((await rejectionOf(client([g.host]).listTags(repo(g, 'app'), { absentIfDenied: true }))).code).toBe('REGISTRY_UNAVAILABLE');
    });

    it('with absentIfDenied, treats a 401 like a missing repository; without, fails with REGISTRY_UNAUTHORIZED', async () => {
      const f = await fake({ auth: 'token', refuseScopesFor: [] });
      tagPages(f, (_q, res) => error(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': `Bearer realm="http://${f.host}/token",service="fake",scope="repository:new:pull"` }));
      const c = client([f.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      expect(await c.listTags(repo(f, 'new'), { absentIfDenied: true })).toBeUndefined();
      expect((await rejectionOf(c.listTags(repo(f, 'new')))).code).toBe('REGISTRY_UNAUTHORIZED');
    });
  });

  describe('smaller registry quirks', () => {
    const layer = (f: FakeRegistry, bytes: Buffer) => ({ repo: repo(f, 'app'), descriptor: { mediaType: MediaTypes.ociLayer, digest: f.putBlob('app', bytes), size: bytes.length } });

    it('when a token expires while a blob streams (401 on the PUT), fetches a new one and restarts the blob once', async () => {
      const src = await fake();
      const dst = await fake({ auth: 'token' });
      let refused = 0;
      dst.hook = (req, res, seen) => {
        if (req.method !== 'PUT' || !seen.path.includes('/blobs/uploads/') || refused++ > 0) return false;
        dst.tokens.clear(); // every token issued so far expires
        error(res, 401, 'UNAUTHORIZED', 'token expired', { 'www-authenticate': `Bearer realm="http://${dst.host}/token",service="fake",scope="repository:app:pull,push",error="invalid_token"` });
        return true;
      };
      const bytes = Buffer.from('streamed while the token expired');
      const c = client([src.host, dst.host], { keychain: staticKeychain({ username: 'user', password: 'pass' }) });
      expect(await c.copyBlob(layer(src, bytes), repo(dst, 'app'))).toBe('uploaded');
      expect(dst.requests('PUT', /blobs\/uploads/)).toHaveLength(2);
      expect(dst.blobs.get(`app@${layer(src, bytes).descriptor.digest}`)?.equals(bytes)).toBe(true);
    });

    it('when a PATCH is answered 204 without Location, takes it as accepted', async () => {
      const f = await fake();
      f.hook = (req, res, seen, body) => {
        const id = /\/blobs\/uploads\/([^/]+)$/.exec(seen.path)?.[1];
        if (id === undefined) return false;
        if (req.method === 'PUT' && body.length > 0) return (res.writeHead(202, { location: seen.path }).end(), true);
        if (req.method !== 'PATCH') return false;
        f.uploads.get(id)?.data.push(body);
        res.writeHead(204).end();
        return true;
      };
      const { outcome } = await client([f.host], { chunkSize: 10 }).pushBlob(repo(f, 'app'), Buffer.from('twenty-five bytes of it!!'));
      expect(outcome).toBe('uploaded');
      expect(f.requests('PATCH')).toHaveLength(3);
    });

    it('when a proxy answers 413 to the whole blob, PATCHes a streamed blob in chunkSize pieces', async () => {
      const src = await fake();
      const dst = await fake();
      dst.hook = (req, res, seen) => {
        if (seen.bodyBytes <= 100) return false;
        res.writeHead(413, { 'content-type': 'text/html' }).end('<html><center><h1>413 Request Entity Too Large</h1></center></html>');
        return true;
      };
      const bytes = Buffer.alloc(300, 7);
      const c = client([src.host, dst.host], { chunkSize: 64 });
      expect(await c.copyBlob(layer(src, bytes), repo(dst, 'app'))).toBe('uploaded');
      expect(dst.requests('PATCH').map((r) => r.headers['content-range'])).toEqual(['0-63', '64-127', '128-191', '192-255', '256-299']);
      expect(dst.blobs.get(`app@${layer(src, bytes).descriptor.digest}`)?.equals(bytes)).toBe(true);
      expect(src.requests('GET', /blobs/)).toHaveLength(2);
    });

    it('when ECR answers the upload POST with 404 NAME_UNKNOWN, reports REPOSITORY_NOT_FOUND', async () => {
      const f = await fake();
      f.hook = (req, res) => (req.method === 'POST' ? (error(res, 404, 'NAME_UNKNOWN', 'The repository with name \'app\' does not exist in the registry'), true) : false);
      const e = await rejectionOf(client([f.host]).pushBlob(repo(f, 'app'), Buffer.from('x')));
      expect(e.code).toBe('REPOSITORY_NOT_FOUND');
      expect(e.message).toContain('NAME_UNKNOWN');
      expect((e.cause as { code?: string } | undefined)?.code).toBe('BLOB_NOT_FOUND');
    });
  });

  describe('when credentials expire while the client runs', () => {
    /** A keychain (a credential helper) that answers `first` until asked again after a forget. */
    function rotating(first: string, next: string): { keychain: import('../../../src/oci/index.js').Keychain; asked: () => number } {
      let current = first;
      let asked = 0;
      return {
        keychain: {
          resolve: async () => (asked++, { username: 'user', password: current }),
          forget: () => void (current = next),
        },
        asked: () => asked,
      };
    }

    it('asks the keychain again when the registry refuses Basic credentials, and succeeds with the new ones', async () => {
      const f = await fake({ auth: 'basic', password: 'new' });
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const { keychain, asked } = rotating('old', 'new');
      const c = client([f.host], { keychain });
      expect((await c.getManifest({ ...repo(f, 'app'), tag: 'v1' })).bytes.equals(MANIFEST)).toBe(true);
      expect(asked()).toBe(2);
    });

    it('asks the keychain again when the token server refuses the credentials', async () => {
      const f = await fake({ auth: 'token', password: 'new' });
      f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
      const { keychain, asked } = rotating('old', 'new');
      const c = client([f.host], { keychain });
      expect((await c.getManifest({ ...repo(f, 'app'), tag: 'v1' })).bytes.equals(MANIFEST)).toBe(true);
      expect(asked()).toBe(2);
    });

    it('fails with REGISTRY_UNAUTHORIZED when the keychain answers the same again', async () => {
      const f = await fake({ auth: 'basic', password: 'right' });
      const { keychain, asked } = rotating('wrong', 'wrong');
      const e = await rejectionOf(client([f.host], { keychain }).getManifest({ ...repo(f, 'app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(asked()).toBe(2);
    });
  });
});
