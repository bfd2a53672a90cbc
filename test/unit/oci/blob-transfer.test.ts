import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { rejectionOf } from '../../support/failure.js';
import { MediaTypes, RegistryClient, digestOf, type RegistryClientOptions, type Repository } from '../../../src/oci/index.js';
import { FakeRegistry, error } from './fake-registry.js';

// Blob reads and the upload fallbacks of src/oci/blob-transfer.ts, each with an oracle a plausible bug breaks.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fake(): Promise<FakeRegistry> {
  const f = await FakeRegistry.start();
  cleanups.push(() => f.close());
  return f;
}

function client(hosts: readonly string[], options: RegistryClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ insecure: hosts, retry: { baseDelayMs: 5, maxDelayMs: 20 }, ...options });
  cleanups.push(() => c.close());
  return c;
}

const repo = (f: FakeRegistry, name: string): Repository => ({ registry: f.host, repository: name });

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
      expect((await client([f.host]).readBlob(repo(f, 'app'), digest, 1 << 20)).equals(bytes)).toBe(true);
    });
  });

  describe('when the monolithic PUT is not accepted', () => {
    /** Refuses the first PUT carrying a body with `answer`, then behaves. */
    const refuseFirstPut = (f: FakeRegistry, answer: (res: Parameters<NonNullable<FakeRegistry['hook']>>[1]) => void): void => {
      let refused = false;
      f.hook = (req, res, seen) => {
        if (req.method !== 'PUT' || seen.bodyBytes === 0 || refused) return false;
        refused = true;
        answer(res);
        return true;
      };
    };

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

    it('after a 400 with another error code (DIGEST_INVALID), fails without a fallback', async () => {
      const f = await fake();
      refuseFirstPut(f, (res) => error(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content'));
      const e = await rejectionOf(client([f.host], { chunkSize: 1000 }).pushBlob(repo(f, 'app'), randomBytes(1500)));
      expect(e.code).toBe('REGISTRY_REJECTED');
      expect(e.message).toContain('DIGEST_INVALID');
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
});
