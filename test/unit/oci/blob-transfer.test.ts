import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { rejectionOf } from '../../support/failure.js';
import { createLogger, type Logger } from '../../../src/log.js';
import { MediaTypes, RegistryClient, digestOf, staticKeychain, type RegistryClientOptions, type Repository } from '../../../src/oci/index.js';
import { FakeRegistry, error, type FakeRegistryOptions, type Seen } from './fake-registry.js';

// Blob reads and the upload fallbacks of src/oci/blob-transfer.ts, each with an oracle a plausible bug breaks.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fake(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const f = await FakeRegistry.start(options);
  cleanups.push(() => f.close());
  return f;
}

function client(hosts: readonly string[], options: RegistryClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ insecure: hosts, retry: { baseDelayMs: 5, maxDelayMs: 20 }, ...options });
  cleanups.push(() => c.close());
  return c;
}

const repo = (f: FakeRegistry, name: string): Repository => ({ registry: f.host, repository: name });

type Res = Parameters<NonNullable<FakeRegistry['hook']>>[1];

/** A debug logger whose lines the test reads back as objects. */
function debugLog(): { logger: Logger; entries: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  return { logger, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** Answers the first `times` requests that `match` picks with `answer`; the fake's own routes answer the rest. */
function intercept(f: FakeRegistry, match: (method: string, seen: Seen) => boolean, answer: (res: Res, seen: Seen) => void, times = 1): void {
  let n = 0;
  f.hook = (req, res, seen) => {
    if (n >= times || !match(req.method ?? '', seen)) return false;
    n++;
    answer(res, seen);
    return true;
  };
}

/** The first PUT that carries blob bytes. */
const blobPut = (method: string, seen: Seen): boolean => method === 'PUT' && seen.bodyBytes > 0;

/** `bytes` stored as a layer in `f`'s `app`, as a copy source. */
const layer = (f: FakeRegistry, bytes: Buffer) => ({ repo: repo(f, 'app'), descriptor: { mediaType: MediaTypes.ociLayer, digest: f.putBlob('app', bytes), size: bytes.length } });

describe('BlobTransfer', () => {
  describe('when a whole blob is read into memory (configs, bundle layers)', () => {
    it('refuses bytes that do not hash to the requested digest: DIGEST_MISMATCH naming digest and repository', async () => {
      const f = await fake();
      const good = randomBytes(4096);
      const digest = digestOf(good);
      f.blobs.set(`app@${digest}`, randomBytes(good.length)); // same size, other content
      const e = await rejectionOf(client([f.host]).readBlob(repo(f, 'app'), digest, 1 << 20));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(digest);
      expect(e.message).toContain(`${f.host}/app`);
    });

    it('refuses a truncated blob (a prefix of the right bytes) as well', async () => {
      const f = await fake();
      const good = randomBytes(4096);
      const digest = digestOf(good);
      f.blobs.set(`app@${digest}`, good.subarray(0, 4000));
      const e = await rejectionOf(client([f.host]).readBlob(repo(f, 'app'), digest, 1 << 20));
      expect(e.code).toBe('DIGEST_MISMATCH');
    });

    it('returns the bytes when they match', async () => {
      const f = await fake();
      const bytes = randomBytes(1000);
      const digest = f.putBlob('app', bytes);
      const c = client([f.host]);
      expect((await c.readBlob(repo(f, 'app'), digest, 1 << 20)).equals(bytes)).toBe(true);
      expect(c.stats.byKind['GET blob']).toBe(1);
    });

    it('refuses a blob larger than maxBytes with BLOB_TOO_LARGE, a missing one with BLOB_NOT_FOUND, each naming blob and repository', async () => {
      const f = await fake();
      const digest = f.putBlob('app', randomBytes(1000));
      const c = client([f.host]);
      const large = await rejectionOf(c.readBlob(repo(f, 'app'), digest, 999));
      expect(large.code).toBe('BLOB_TOO_LARGE');
      expect(large.message).toContain(`blob ${digest} in ${f.host}/app is larger than 999 bytes`);
      const missing = await rejectionOf(c.readBlob(repo(f, 'other'), digest, 1000));
      expect(missing.code).toBe('BLOB_NOT_FOUND');
      expect(missing.message).toContain(`blob ${digest} in ${f.host}/other not found (GET answered 404)`);
    });

    it('refuses a malformed digest before any request, naming the repository', async () => {
      const f = await fake();
      const e = await rejectionOf(client([f.host]).readBlob(repo(f, 'app'), 'sha256:short', 1000));
      expect(e.message).toContain(`blob in ${f.host}/app`);
      expect(f.seen).toHaveLength(0);
    });
  });

  describe('when a blob is streamed', () => {
    it('counts the bytes as downloaded once the stream is consumed', async () => {
      const f = await fake();
      const bytes = randomBytes(50_000);
      const c = client([f.host]);
      const stream = await c.openBlob(repo(f, 'app'), layer(f, bytes).descriptor);
      const closed = new Promise((resolve) => (stream as NodeJS.ReadableStream & { once(e: 'close', l: () => void): void }).once('close', () => resolve(undefined)));
      for await (const _ of stream as AsyncIterable<Buffer>) void _;
      await closed;
      expect(c.stats.bytesDownloaded).toBe(bytes.length);
    });
  });

  describe('when the bytes to copy are already in memory', () => {
    it('refuses bytes that do not match the descriptor (digest or size) before any request', async () => {
      const f = await fake();
      const bytes = randomBytes(100);
      const c = client([f.host]);
      const wrongBytes = await rejectionOf(c.copyBlob({ ...layer(f, bytes), bytes: randomBytes(100) }, repo(f, 'dst')));
      expect(wrongBytes.code).toBe('DIGEST_MISMATCH');
      expect(wrongBytes.message).toContain(`for ${f.host}/dst: the given 100 bytes hash to`);
      const { descriptor } = layer(f, bytes);
      const wrongSize = await rejectionOf(c.copyBlob({ repo: repo(f, 'app'), descriptor: { ...descriptor, size: 99 }, bytes }, repo(f, 'dst')));
      expect(wrongSize.code).toBe('DIGEST_MISMATCH');
      expect(f.seen).toHaveLength(0);
    });

    it('sends them in one PUT without Content-Range and counts them as uploaded', async () => {
      const f = await fake();
      const bytes = randomBytes(1000);
      const c = client([f.host]);
      expect((await c.pushBlob(repo(f, 'app'), bytes)).outcome).toBe('uploaded');
      const put = f.requests('PUT')[0];
      expect(put?.headers['content-range']).toBeUndefined();
      expect(c.stats.bytesUploaded).toBe(bytes.length);
      expect(c.stats.byKind['POST upload']).toBe(1);
      expect(f.requests('POST')[0]?.headers['content-length']).toBe('0');
      expect(c.stats.byKind['PUT upload']).toBe(1);
    });
  });

  describe('when the upload start fails', () => {
    it('retries a 503 to the POST', async () => {
      const f = await fake();
      intercept(f, (method) => method === 'POST', (res) => error(res, 503, 'UNAVAILABLE', 'try later'));
      expect((await client([f.host]).pushBlob(repo(f, 'app'), randomBytes(100))).outcome).toBe('uploaded');
      expect(f.requests('POST')).toHaveLength(2);
    });

    it('does not restart the copy when the POST keeps failing: the transport retried it already', async () => {
      const f = await fake();
      intercept(f, (method) => method === 'POST', (res) => error(res, 503, 'UNAVAILABLE', 'try later'), 100);
      const e = await rejectionOf(client([f.host], { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }).pushBlob(repo(f, 'app'), randomBytes(100)));
      expect(e.code).toBe('REGISTRY_UNAVAILABLE');
      expect(f.requests('POST')).toHaveLength(2);
    });

    it('reports a refusal of the POST as it is, naming the POST, without a second POST and without REPOSITORY_NOT_FOUND', async () => {
      const f = await fake();
      intercept(f, (method) => method === 'POST', (res) => error(res, 403, 'DENIED', 'no push here'), 100);
      const e = await rejectionOf(client([f.host]).pushBlob(repo(f, 'app'), randomBytes(100)));
      expect(e.code).toBe('REGISTRY_DENIED');
      expect(e.message).toContain('(POST blob sha256:');
      expect(f.requests('POST')).toHaveLength(1);
    });

    it('when a cross-repository mount fails otherwise than by a refusal, fails without an upload', async () => {
      const f = await fake();
      const source = layer(f, randomBytes(100));
      intercept(f, (method) => method === 'POST', (res) => error(res, 501, 'UNSUPPORTED', 'no'), 100);
      expect((await rejectionOf(client([f.host]).copyBlob(source, repo(f, 'dst')))).code).toBe('REGISTRY_UNAVAILABLE');
      expect(f.requests('POST')).toHaveLength(1);
    });
  });

  describe('when the monolithic PUT is not accepted', () => {
    /** Refuses the first PUT carrying a body with `answer`, then behaves. */
    const refuseFirstPut = (f: FakeRegistry, answer: (res: Res) => void): void => intercept(f, blobPut, answer);

    it('after a 400 BLOB_UPLOAD_INVALID, uploads in PATCH chunks from a fresh session and closes with an empty PUT', async () => {
      const f = await fake();
      refuseFirstPut(f, (res) => error(res, 400, 'BLOB_UPLOAD_INVALID', 'monolithic uploads unsupported'));
      const bytes = randomBytes(2500);
      const c = client([f.host], { chunkSize: 1000 });
      expect(await c.pushBlob(repo(f, 'app'), bytes)).toEqual({ digest: digestOf(bytes), outcome: 'uploaded' });
      expect(f.requests('POST')).toHaveLength(2); // the refused session is not reused
      expect(f.requests('PATCH').map((s) => s.headers['content-range'])).toEqual(['0-999', '1000-1999', '2000-2499']);
      expect(f.requests('PUT').at(-1)?.bodyBytes).toBe(0);
      expect(f.blobs.get(`app@${digestOf(bytes)}`)?.equals(bytes)).toBe(true);
    });

    it('after a 202 to the PUT, falls back to PATCH as well', async () => {
      const f = await fake();
      refuseFirstPut(f, (res) => void res.writeHead(202, { location: '/v2/app/blobs/uploads/nowhere', range: '0-0' }).end());
      const bytes = randomBytes(1500);
      const c = client([f.host], { chunkSize: 1000 });
      expect(await c.pushBlob(repo(f, 'app'), bytes)).toEqual({ digest: digestOf(bytes), outcome: 'uploaded' });
      expect(f.requests('PATCH')).toHaveLength(2);
      expect(f.blobs.get(`app@${digestOf(bytes)}`)?.equals(bytes)).toBe(true);
    });

    it('after a streamed copy is refused with 202, sends the whole blob in one PATCH re-read from the source', async () => {
      const src = await fake();
      const dst = await fake();
      const bytes = randomBytes(3000);
      const digest = src.putBlob('app', bytes);
      refuseFirstPut(dst, (res) => void res.writeHead(202, { location: '/v2/app/blobs/uploads/nowhere', range: '0-0' }).end());
      const c = client([src.host, dst.host], { chunkSize: 1000 });
      const outcome = await c.copyBlob({ repo: repo(src, 'app'), descriptor: { mediaType: MediaTypes.ociLayerGzip, digest, size: bytes.length } }, repo(dst, 'app'));
      expect(outcome).toBe('uploaded');
      expect(dst.requests('PATCH').map((s) => s.bodyBytes)).toEqual([bytes.length]);
      expect(src.requests('GET')).toHaveLength(2);
      expect(dst.blobs.get(`app@${digest}`)?.equals(bytes)).toBe(true);
    });

    it('when the blob arrived before the fallback session starts (201 to its POST), sends no PATCH', async () => {
      const f = await fake();
      const bytes = randomBytes(1500);
      refuseFirstPut(f, (res) => (f.putBlob('app', bytes), void res.writeHead(202, { location: '/v2/app/blobs/uploads/nowhere' }).end()));
      expect((await client([f.host], { chunkSize: 1000 }).pushBlob(repo(f, 'app'), bytes)).outcome).toBe('uploaded');
      expect(f.requests('PATCH')).toHaveLength(0);
    });

    it('after a 413 to bytes in memory, PATCHes them in chunkSize pieces without reading any source', async () => {
      const f = await fake();
      refuseFirstPut(f, (res) => void res.writeHead(413, { 'content-type': 'text/html' }).end('<h1>413 Request Entity Too Large</h1>'));
      const bytes = randomBytes(150);
      expect((await client([f.host], { chunkSize: 64 }).pushBlob(repo(f, 'app'), bytes)).outcome).toBe('uploaded');
      expect(f.requests('PATCH').map((r) => r.headers['content-range'])).toEqual(['0-63', '64-127', '128-149']);
      expect(f.requests('GET')).toHaveLength(0);
    });

    it('follows the Location of each PATCH answer (a 204 with one too), closes at the last one with an empty octet-stream PUT', async () => {
      const f = await fake();
      let patches = 0;
      f.hook = (req, res, seen, body) => {
        const id = /\/blobs\/uploads\/([^/]+)$/.exec(seen.path)?.[1];
        if (id === undefined) return false;
        if (req.method === 'PUT' && body.length > 0) return (error(res, 416, 'BLOB_UPLOAD_INVALID', 'no monolithic'), true);
        if (req.method !== 'PATCH') return false;
        f.uploads.get(id)?.data.push(body);
        res.writeHead(patches === 0 ? 204 : 202, { location: `/v2/app/blobs/uploads/${id}?_state=p${patches++}` }).end();
        return true;
      };
      const bytes = randomBytes(25);
      const c = client([f.host], { chunkSize: 10 });
      expect((await c.pushBlob(repo(f, 'app'), bytes)).outcome).toBe('uploaded');
      expect(f.requests('PATCH').map((r) => r.query.get('_state'))).toEqual(['s', 'p0', 'p1']);
      const close = f.requests('PUT').at(-1);
      expect(close?.query.get('_state')).toBe('p2');
      expect(close?.headers['content-type']).toBe('application/octet-stream');
      expect(c.stats.byKind['PATCH upload']).toBe(3);
      expect(c.stats.byKind['PUT upload']).toBe(2);
      expect(f.blobs.get(`app@${digestOf(bytes)}`)?.equals(bytes)).toBe(true);
    });

    it('fails with REGISTRY_PROTOCOL when a PATCH is answered 202 without a Location', async () => {
      const f = await fake();
      f.hook = (req, res, seen) => {
        if (blobPut(req.method ?? '', seen)) return (error(res, 416, 'BLOB_UPLOAD_INVALID', 'no monolithic'), true);
        return req.method === 'PATCH' ? (res.writeHead(202).end(), true) : false;
      };
      const e = await rejectionOf(client([f.host], { chunkSize: 10 }).pushBlob(repo(f, 'app'), randomBytes(25)));
      expect(e.code).toBe('REGISTRY_PROTOCOL');
      expect(e.message).toContain('answered 202 without a Location');
    });

    it('waits timeouts.commitMs, not headersMs, for the answer to the closing PUT', async () => {
      const f = await fake();
      f.hook = async (req, res, seen) => {
        if (blobPut(req.method ?? '', seen)) return (error(res, 416, 'BLOB_UPLOAD_INVALID', 'no monolithic'), true);
        // Longer than undici's coarse timer needs to notice a 100 ms headers timeout.
        if (req.method === 'PUT') await new Promise((r) => setTimeout(r, 1_500));
        return false;
      };
      const c = client([f.host], { chunkSize: 10, timeouts: { headersMs: 100, commitMs: 5_000 } });
      expect((await c.pushBlob(repo(f, 'app'), randomBytes(25))).outcome).toBe('uploaded');
      expect(f.requests('PUT')).toHaveLength(2);
      expect(f.requests('HEAD')).toHaveLength(1); // the one before the upload: no look after a lost answer
    });

    it('when the closing PUT fails with a 5xx, does not repeat it alone but restarts the copy from a new POST', async () => {
      const f = await fake();
      let refusedMonolithic = false;
      let failedClose = false;
      f.hook = (req, res, seen) => {
        if (blobPut(req.method ?? '', seen) && !refusedMonolithic) return (refusedMonolithic = true, error(res, 416, 'BLOB_UPLOAD_INVALID', 'no monolithic'), true);
        if (req.method !== 'PUT' || seen.bodyBytes > 0 || failedClose) return false;
        return (failedClose = true, error(res, 500, 'UNKNOWN', 'storage hiccup'), true);
      };
      const bytes = randomBytes(25);
      expect((await client([f.host], { chunkSize: 10 }).pushBlob(repo(f, 'app'), bytes)).outcome).toBe('uploaded');
      expect(f.requests('POST')).toHaveLength(3);
      expect(f.blobs.get(`app@${digestOf(bytes)}`)?.equals(bytes)).toBe(true);
    });

    it('after a 400 with another error code (DIGEST_INVALID), fails without a fallback', async () => {
      const f = await fake();
      refuseFirstPut(f, (res) => error(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content'));
      const e = await rejectionOf(client([f.host], { chunkSize: 1000 }).pushBlob(repo(f, 'app'), randomBytes(1500)));
      expect(e.code).toBe('REGISTRY_REJECTED');
      expect(e.message).toContain('PUT blob sha256:');
      expect(e.message).toContain('DIGEST_INVALID');
      expect(f.requests('PUT')).toHaveLength(1);
      expect(f.requests('PATCH')).toHaveLength(0);
      expect(f.blobs.size).toBe(0);
    });
  });

  describe('when the upload start answers 202 without a Location', () => {
    it('fails with REGISTRY_PROTOCOL naming the registry, and sends no PUT', async () => {
      const f = await fake();
      f.hook = (req, res) => {
        if (req.method !== 'POST') return false;
        res.writeHead(202, { range: '0-0' }).end();
        return true;
      };
      const e = await rejectionOf(client([f.host]).pushBlob(repo(f, 'app'), randomBytes(100)));
      expect(e.code).toBe('REGISTRY_PROTOCOL');
      expect(e.message).toContain(f.host);
      expect(e.message).toContain('without a Location');
      expect(f.requests('PUT')).toHaveLength(0);
    });
  });

  describe('when a PUT is redirected', () => {
    const redirect = (f: FakeRegistry, query: string) => (res: Res) => void res.writeHead(307, { location: `/v2/app/blobs/uploads/${[...f.uploads.keys()][0] ?? ''}?${query}` }).end();

    it('keeps the digest a 307 Location carries instead of adding it again', async () => {
      const src = await fake();
      const dst = await fake();
      const source = layer(src, randomBytes(1000));
      intercept(dst, blobPut, redirect(dst, `_state=moved&digest=${encodeURIComponent(source.descriptor.digest)}`));
      expect(await client([src.host, dst.host]).copyBlob(source, repo(dst, 'app'))).toBe('uploaded');
      expect(dst.requests('PUT').map((r) => r.query.getAll('digest'))).toEqual([[source.descriptor.digest], [source.descriptor.digest]]);
    });

    it('follows one 307 only: a second fails with REGISTRY_PROTOCOL', async () => {
      const src = await fake();
      const dst = await fake();
      intercept(dst, blobPut, redirect(dst, '_state=moved'), 2);
      const e = await rejectionOf(client([src.host, dst.host]).copyBlob(layer(src, randomBytes(1000)), repo(dst, 'app')));
      expect(e.code).toBe('REGISTRY_PROTOCOL');
      expect(e.message).toContain('answered an unexpected 307');
      expect(dst.requests('PUT')).toHaveLength(2);
    });
  });

  describe('when a streamed source is PATCHed in pieces after a 413', () => {
    const tooLarge = (f: FakeRegistry) => intercept(f, (method, seen) => method === 'PUT' && seen.bodyBytes > 0, (res) => void res.writeHead(413).end());

    it('counts every byte read and sent once per piece', async () => {
      const src = await fake();
      const dst = await fake();
      tooLarge(dst);
      const c = client([src.host, dst.host], { chunkSize: 64 });
      expect(await c.copyBlob(layer(src, randomBytes(256)), repo(dst, 'app'))).toBe('uploaded');
      // The fake reads a whole body before it answers: the refused PUT carried all 256 bytes, the pieces 256 more.
      expect(c.stats.bytesUploaded).toBe(512);
      expect(c.stats.bytesDownloaded).toBe(512);
      expect(dst.requests('PATCH').map((r) => r.headers['content-range'])).toEqual(['0-63', '64-127', '128-191', '192-255']);
      expect(dst.requests('PATCH').every((r) => r.headers['content-type'] === 'application/octet-stream')).toBe(true);
      expect(c.stats.byKind['PATCH upload']).toBe(4);
    });

    it('reports a refused piece naming the PATCH', async () => {
      const src = await fake();
      const dst = await fake();
      dst.hook = (req, res, seen) => {
        if (blobPut(req.method ?? '', seen)) return (res.writeHead(413).end(), true);
        return req.method === 'PATCH' ? (error(res, 400, 'BLOB_UPLOAD_INVALID', 'piece refused'), true) : false;
      };
      const e = await rejectionOf(client([src.host, dst.host], { chunkSize: 64 }).copyBlob(layer(src, randomBytes(200)), repo(dst, 'app')));
      expect(e.code).toBe('REGISTRY_REJECTED');
      expect(e.message).toContain('PATCH blob sha256:');
      expect(dst.requests('PATCH')).toHaveLength(1);
    });

    it('aborts with DIGEST_MISMATCH naming the target when the re-read source is wrong, and commits nothing', async () => {
      const src = await fake();
      const dst = await fake();
      const source = layer(src, randomBytes(300));
      // The first read (for the refused PUT) is right; the re-read for the pieces is not.
      intercept(dst, blobPut, (res) => (src.blobs.set(`app@${source.descriptor.digest}`, randomBytes(300)), void res.writeHead(413).end()));
      const e = await rejectionOf(client([src.host, dst.host], { chunkSize: 64 }).copyBlob(source, repo(dst, 'app')));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(`; upload to ${dst.host}/app aborted`);
      expect((e.cause as { code?: string } | undefined)?.code).toBe('DIGEST_MISMATCH');
      expect(dst.blobs.size).toBe(0);
      expect(dst.requests('PUT').filter((r) => r.bodyBytes === 0)).toHaveLength(0);
    });
  });

  describe('when a copy fails while its bytes flow', () => {
    it('restarts it maxAttempts times in all, then fails', async () => {
      const f = await fake();
      intercept(f, blobPut, (res) => error(res, 500, 'UNKNOWN', 'broken'), 100);
      const { logger, entries } = debugLog();
      const e = await rejectionOf(client([f.host], { logger, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } }).pushBlob(repo(f, 'app'), randomBytes(100)));
      expect(e.code).toBe('REGISTRY_UNAVAILABLE');
      expect(f.requests('PUT')).toHaveLength(3);
      const restarts = entries().filter((l) => l['msg'] === 'blob copy restarts');
      expect(restarts.map((l) => [l['registry'], l['repository'], l['attempt'], l['code']])).toEqual([[f.host, 'app', 1, 'REGISTRY_UNAVAILABLE'], [f.host, 'app', 2, 'REGISTRY_UNAVAILABLE']]);
    });

    it('counts a HEAD that fails as "not there" and uploads', async () => {
      const src = await fake();
      const dst = await fake();
      dst.hook = (req, res, seen) => {
        if (req.method === 'HEAD') return (error(res, 500, 'UNKNOWN', 'broken'), true);
        if (req.method !== 'POST' || !seen.query.has('mount')) return false; // ECR: a 202 to every mount
        dst.uploads.set('ecr', { repo: 'app', data: [] });
        return (res.writeHead(202, { location: '/v2/app/blobs/uploads/ecr' }).end(), true);
      };
      expect(await client([src.host, dst.host], { retry: { maxAttempts: 1 } }).copyBlob(layer(src, randomBytes(100)), repo(dst, 'app'))).toBe('uploaded');
      expect(dst.requests('HEAD')).toHaveLength(1);
    });

    it('waits a Retry-After up to maxRetryAfterMs before restarting', async () => {
      const f = await fake();
      intercept(f, blobPut, (res) => error(res, 503, 'UNAVAILABLE', 'later', { 'retry-after': '0' }));
      expect((await client([f.host], { retry: { maxRetryAfterMs: 0 } }).pushBlob(repo(f, 'app'), randomBytes(100))).outcome).toBe('uploaded');
      expect(f.requests('PUT')).toHaveLength(2);
    });

    it('waits at least half the throttle ceiling after a 429 without Retry-After', async () => {
      const f = await fake();
      const at: number[] = [];
      f.hook = (req, res, seen) => {
        if (!blobPut(req.method ?? '', seen)) return false;
        at.push(performance.now());
        return at.length === 1 ? (error(res, 429, 'TOOMANYREQUESTS', 'slow down'), true) : false;
      };
      await client([f.host], { retry: { baseDelayMs: 1, maxDelayMs: 2, throttleBaseDelayMs: 200, throttleMaxDelayMs: 200 } }).pushBlob(repo(f, 'app'), randomBytes(100));
      expect(at).toHaveLength(2);
      expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(98);
    });

    it('after a 5xx waits the short backoff, not the throttle delay', async () => {
      const f = await fake();
      intercept(f, blobPut, (res) => error(res, 500, 'UNKNOWN', 'hiccup'));
      const started = performance.now();
      await client([f.host], { retry: { throttleBaseDelayMs: 60_000, throttleMaxDelayMs: 60_000 } }).pushBlob(repo(f, 'app'), randomBytes(100));
      expect(performance.now() - started).toBeLessThan(10_000); // a throttle wait would be at least 30 s
      expect(f.requests('PUT')).toHaveLength(2);
    });
  });

  describe('when a token expires while bytes flow', () => {
    const expire = (f: FakeRegistry) => (res: Res) => {
      f.tokens.clear();
      error(res, 401, 'UNAUTHORIZED', 'token expired', { 'www-authenticate': `Bearer realm="http://${f.host}/token",service="fake",scope="repository:app:pull,push",error="invalid_token"` });
    };
    const auth = { keychain: staticKeychain({ username: 'user', password: 'pass' }) };

    it('restarts the blob once only', async () => {
      const f = await fake({ auth: 'token' });
      intercept(f, blobPut, expire(f), 100);
      const { logger, entries } = debugLog();
      const e = await rejectionOf(client([f.host], { ...auth, logger }).pushBlob(repo(f, 'app'), randomBytes(100)));
      expect(e.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(entries().filter((l) => l['msg'] === 'blob copy restarts after a 401').map((l) => l['repository'])).toEqual(['app']);
      // Bytes in memory: the transport re-sends each PUT once with a fresh token itself, the copy restarts once.
      expect(f.requests('PUT')).toHaveLength(4);
    });

    it('does not count that restart of a streamed copy as an attempt', async () => {
      const src = await fake();
      const f = await fake({ auth: 'token' });
      let puts = 0;
      f.hook = (req, res, seen) => {
        if (!blobPut(req.method ?? '', seen)) return false;
        puts++;
        if (puts === 1) return (expire(f)(res), true);
        return puts === 2 ? (error(res, 500, 'UNKNOWN', 'hiccup'), true) : false;
      };
      expect(await client([src.host, f.host], { ...auth, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }).copyBlob(layer(src, randomBytes(100)), repo(f, 'app'))).toBe('uploaded');
      expect(puts).toBe(3);
    });

    it('does not restart when the upload start is refused', async () => {
      const f = await fake({ auth: 'token' });
      intercept(f, (method) => method === 'POST', expire(f), 100);
      expect((await rejectionOf(client([f.host], auth).pushBlob(repo(f, 'app'), randomBytes(100)))).code).toBe('REGISTRY_UNAUTHORIZED');
      expect(f.requests('POST')).toHaveLength(2);
    });
  });
});
