import { rejectionOf } from '../../support/failure.js';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isPromoteError, type PromoteError } from '../../../src/errors.js';
import {
  MediaTypes,
  RegistryClient,
  digestOf,
  staticKeychain,
  type Descriptor,
  type Repository,
} from '../../../src/oci/index.js';
import { RawClient } from '../../support/raw-client.js';
import { TEST_PASSWORD, TEST_USERNAME, startRegistry, type TestRegistry } from '../../support/registry.js';

const clients: RegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

function clientFor(registries: readonly TestRegistry[], options: { password?: string; caFile?: string } = {}): RegistryClient {
  const c = new RegistryClient({
    insecure: registries.filter((r) => !r.tls).map((r) => r.host),
    keychain: staticKeychain({ username: TEST_USERNAME, password: options.password ?? TEST_PASSWORD }),
    ...(options.caFile !== undefined && { caFile: options.caFile }),
  });
  clients.push(c);
  return c;
}

function at(registry: TestRegistry, repository: string): Repository {
  return { registry: registry.host, repository };
}


/** Pushes config + one layer + an OCI manifest under `tag` with our client; returns the pieces. */
async function pushImage(client: RegistryClient, repo: Repository, tag: string, layerSize = 50_000) {
  const layer = randomBytes(layerSize);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, salt: randomBytes(8).toString('hex') }));
  const layerPush = await client.pushBlob(repo, layer);
  const configPush = await client.pushBlob(repo, config);
  const layerDesc: Descriptor = { mediaType: MediaTypes.ociLayerGzip, digest: layerPush.digest, size: layer.length };
  const configDesc: Descriptor = { mediaType: MediaTypes.ociConfig, digest: configPush.digest, size: config.length };
  // Deliberately odd formatting: byte-for-byte copies must keep it.
  const manifest = Buffer.from(`{"schemaVersion":2,  "mediaType":"${MediaTypes.ociManifest}",\n "config":${JSON.stringify(configDesc)},"layers":[${JSON.stringify(layerDesc)}]}`);
  const digest = await client.putManifest({ ...repo, tag }, { mediaType: MediaTypes.ociManifest, bytes: manifest });
  return { layer, layerDesc, config, configDesc, manifest, digest, outcomes: [layerPush.outcome, configPush.outcome] };
}

describe('RegistryClient against docker-registry', () => {
  describe('when the registry is anonymous', () => {
    let a: TestRegistry;
    let b: TestRegistry;
    beforeAll(async () => {
      [a, b] = await Promise.all([startRegistry({ accessLog: true }), startRegistry({ accessLog: true })]);
    });
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('pushes an image and reads the manifest back byte-identical', async () => {
      const client = clientFor([a]);
      const repo = at(a, 'roundtrip/app');
      const image = await pushImage(client, repo, 'v1');
      expect(image.outcomes).toEqual(['uploaded', 'uploaded']);
      expect(image.digest).toBe(digestOf(image.manifest));

      const raw = await client.getManifest({ ...repo, tag: 'v1' });
      expect(raw.bytes.equals(image.manifest)).toBe(true);
      expect(raw.mediaType).toBe(MediaTypes.ociManifest);
      expect((await RawClient.for(a).getManifest('roundtrip/app', image.digest)).bytes.equals(image.manifest)).toBe(true);
      expect(await client.headManifest({ ...repo, digest: image.digest })).toEqual({ mediaType: MediaTypes.ociManifest, digest: image.digest, size: image.manifest.length });
      expect((await client.readBlob(repo, image.layerDesc.digest, 1_000_000)).equals(image.layer)).toBe(true);
      expect((await rejectionOf(client.readBlob(repo, image.layerDesc.digest, 100))).code).toBe('BLOB_TOO_LARGE');
    });

    it('answers 404s as absent or MANIFEST_NOT_FOUND', async () => {
      const client = clientFor([a]);
      expect(await client.headManifest({ ...at(a, 'roundtrip/none'), tag: 'x' })).toBeUndefined();
      expect(await client.findManifest({ ...at(a, 'roundtrip/none'), tag: 'x' })).toBeUndefined();
      expect((await rejectionOf(client.getManifest({ ...at(a, 'roundtrip/none'), tag: 'x' }))).code).toBe('MANIFEST_NOT_FOUND');
    });

    it('pushBlob of a blob already in the repository is one request and reports present', async () => {
      const client = clientFor([a]);
      const bytes = randomBytes(1000);
      expect((await client.pushBlob(at(a, 'present/app'), bytes)).outcome).toBe('uploaded');
      const before = await a.requestCount();
      expect((await client.pushBlob(at(a, 'present/app'), bytes)).outcome).toBe('present');
      expect(await a.requestCount()).toBe(before + 1);
    });

    it('copies a blob across registries in 4 requests (a HEAD until a mount answered 201), finds it present in 1, then copies in 3', async () => {
      const client = clientFor([a, b]);
      const src = at(a, 'copy/src');
      const bytes = randomBytes(3 * 1024 * 1024 + 17);
      const { digest } = await client.pushBlob(src, bytes);
      const source = { repo: src, descriptor: { mediaType: MediaTypes.ociLayerGzip, digest, size: bytes.length } };
      const [aBefore, bBefore] = [await a.requestCount(), await b.requestCount()];

      expect(await client.copyBlob(source, at(b, 'copy/dst'))).toBe('uploaded');
      expect((await a.requests()).slice(aBefore).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200']);
      expect((await b.requests()).slice(bBefore).map((r) => `${r.method} ${r.status}`)).toEqual(['POST 202', 'HEAD 404', 'PUT 201']);
      expect((await RawClient.for(b).getBlob('copy/dst', digest)).equals(bytes)).toBe(true);

      const bAgain = await b.requestCount();
      expect(await client.copyBlob(source, at(b, 'copy/dst'))).toBe('present');
      expect((await b.requests()).slice(bAgain).map((r) => `${r.method} ${r.status}`)).toEqual(['POST 201']);

      // b has now answered a mount with 201: its 202 means "absent", no HEAD needed.
      const other = randomBytes(1000);
      const pushed = await client.pushBlob(src, other);
      const bNew = await b.requestCount();
      expect(await client.copyBlob({ repo: src, descriptor: { mediaType: MediaTypes.ociLayerGzip, digest: pushed.digest, size: other.length } }, at(b, 'copy/dst'))).toBe('uploaded');
      expect((await b.requests()).slice(bNew).map((r) => `${r.method} ${r.status}`)).toEqual(['POST 202', 'PUT 201']);
    });

    it('mounts a blob within one registry with a single POST', async () => {
      const client = clientFor([a]);
      const bytes = randomBytes(2000);
      const { digest } = await client.pushBlob(at(a, 'mount/src'), bytes);
      const before = await a.requestCount();
      const outcome = await client.copyBlob({ repo: at(a, 'mount/src'), descriptor: { mediaType: 'x', digest, size: bytes.length } }, at(a, 'mount/dst'));
      expect(outcome).toBe('mounted');
      const requests = (await a.requests()).slice(before);
      expect(requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['POST /v2/mount/dst/blobs/uploads/ 201']);
      expect(await RawClient.for(a).blobExists('mount/dst', digest)).toBe(true);
    });

    it('copies an image and its index across registries with identical digests', async () => {
      const client = clientFor([a, b]);
      const src = at(a, 'index/src');
      const dst = at(b, 'index/dst');
      const image = await pushImage(client, src, 'img');
      const index = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: [{ mediaType: MediaTypes.ociManifest, digest: image.digest, size: image.manifest.length, platform: { os: 'linux', architecture: 'amd64' } }],
      }));
      const indexDigest = await client.putManifest({ ...src, tag: 'idx' }, { mediaType: MediaTypes.ociIndex, bytes: index });

      for (const d of [image.configDesc, image.layerDesc]) expect(await client.copyBlob({ repo: src, descriptor: d }, dst)).toBe('uploaded');
      const child = await client.getManifest({ ...src, digest: image.digest });
      await client.putManifest({ ...dst, digest: child.digest }, child);
      const parent = await client.getManifest({ ...src, tag: 'idx' });
      expect(await client.putManifest({ ...dst, tag: 'idx' }, parent)).toBe(indexDigest);
      expect((await RawClient.for(b).getManifest('index/dst', 'idx')).bytes.equals(index)).toBe(true);
    });

    it('lists tags, and undefined for an unknown repository', async () => {
      const client = clientFor([a]);
      const repo = at(a, 'tags/app');
      await pushImage(client, repo, 'one', 10);
      const image = await client.getManifest({ ...repo, tag: 'one' });
      await client.putManifest({ ...repo, tag: 'two' }, image);
      expect((await client.listTags(repo))?.sort()).toEqual(['one', 'two']);
      expect(await client.listTags(at(a, 'tags/none'))).toBeUndefined();
    });

    it('falls back to the sha256-<hex> tag for referrers, asking the API only once', async () => {
      const client = clientFor([a]);
      const repo = at(a, 'refs/app');
      const image = await pushImage(client, repo, 'v1', 10);
      const empty = Buffer.from('{}');
      await client.pushBlob(repo, empty);
      const emptyDesc = { mediaType: MediaTypes.ociEmpty, digest: digestOf(empty), size: empty.length };
      const referrer = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        artifactType: 'application/vnd.example.sbom',
        config: emptyDesc,
        layers: [emptyDesc],
        subject: { mediaType: MediaTypes.ociManifest, digest: image.digest, size: image.manifest.length },
      }));
      const referrerDigest = await client.putManifest({ ...repo, digest: digestOf(referrer) }, { mediaType: MediaTypes.ociManifest, bytes: referrer });
      const entry = { mediaType: MediaTypes.ociManifest, digest: referrerDigest, size: referrer.length, artifactType: 'application/vnd.example.sbom' };
      const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [entry] }));
      await client.putManifest({ ...repo, tag: `sha256-${image.digest.slice(7)}` }, { mediaType: MediaTypes.ociIndex, bytes: fallback });

      const before = await a.requestCount();
      expect(await client.listReferrers(repo, image.digest)).toEqual([entry]);
      expect(await client.listReferrers(repo, referrerDigest)).toEqual([]);
      const paths = (await a.requests()).slice(before).map((r) => `${r.method} ${r.status} ${r.path.includes('/referrers/') ? 'referrers' : 'manifest'}`);
      expect(paths).toEqual(['GET 404 referrers', 'GET 200 manifest', 'GET 404 manifest']);
    });
  });

  describe('when the registry wants Basic credentials', () => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await startRegistry({ auth: 'basic', accessLog: true });
    });
    afterAll(async () => {
      await registry?.stop();
    });

    it('pushes and pulls with the right password', async () => {
      const client = clientFor([registry]);
      const image = await pushImage(client, at(registry, 'basic/app'), 'v1');
      expect((await client.getManifest({ ...at(registry, 'basic/app'), tag: 'v1' })).bytes.equals(image.manifest)).toBe(true);
      // Only the very first request went without credentials.
      expect((await registry.requests()).filter((r) => r.status === 401)).toHaveLength(1);
    });

    it('fails with REGISTRY_UNAUTHORIZED and keeps the password out of the message', async () => {
      const client = clientFor([registry], { password: 'definitely-wrong' });
      const e = await rejectionOf(client.getManifest({ ...at(registry, 'basic/app'), tag: 'v1' }));
      expect(e.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(e.message).toContain(registry.host);
      expect(e.message).toContain('basic/app');
      expect(e.message).not.toContain('definitely-wrong');
    });
  });

  describe('when the registry wants bearer tokens', () => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await startRegistry({ auth: 'token', accessLog: true });
    });
    afterAll(async () => {
      await registry?.stop();
    });

    it('gets tokens, mounts across repositories with one token for both scopes', async () => {
      const tokens = registry.tokenServer;
      if (tokens === undefined) throw new Error('token flavour without a token server');
      const client = clientFor([registry]);
      const image = await pushImage(client, at(registry, 'token/src'), 'v1');
      const issuedBefore = tokens.issued.length;
      const outcome = await client.copyBlob({ repo: at(registry, 'token/src'), descriptor: image.layerDesc }, at(registry, 'token/dst'));
      expect(outcome).toBe('mounted');
      const scopes = tokens.issued.slice(issuedBefore).map((t) => [...t.scopes].sort());
      expect(scopes).toContainEqual(['repository:token/dst:pull,push', 'repository:token/src:pull']);
      // One 401 taught the client the realm; every later token was fetched before the request.
      expect((await registry.requests()).filter((r) => r.status === 401)).toHaveLength(1);
      expect(await RawClient.for(registry).blobExists('token/dst', image.layerDesc.digest)).toBe(true);
    });

    it('reports a present blob on a second copy into the same repository', async () => {
      const client = clientFor([registry]);
      const bytes = randomBytes(500);
      const { digest } = await client.pushBlob(at(registry, 'token/present'), bytes);
      expect(await client.copyBlob({ repo: at(registry, 'token/present'), descriptor: { mediaType: 'x', digest, size: bytes.length } }, at(registry, 'token/present'))).toBe('present');
    });

    it('fails with REGISTRY_UNAUTHORIZED for a wrong password without leaking it', async () => {
      const client = clientFor([registry], { password: 'wrong-token-pw' });
      const e = await rejectionOf(client.listTags(at(registry, 'token/src')));
      expect(e.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(e.message).not.toContain('wrong-token-pw');
    });
  });

  describe('when the registry speaks TLS with its own CA', () => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await startRegistry({ tls: true });
    });
    afterAll(async () => {
      await registry?.stop();
    });

    it('trusts it through caFile', async () => {
      const client = clientFor([registry], { caFile: registry.caFile ?? '' });
      const image = await pushImage(client, at(registry, 'tls/app'), 'v1', 100);
      expect((await client.getManifest({ ...at(registry, 'tls/app'), tag: 'v1' })).bytes.equals(image.manifest)).toBe(true);
    });

    it('fails with TLS_CONFIG without it', async () => {
      const client = clientFor([registry]);
      expect((await rejectionOf(client.listTags(at(registry, 'tls/app')))).code).toBe('TLS_CONFIG');
    });
  });
});
