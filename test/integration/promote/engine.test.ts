import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromotionEngine, type PlanRequest, type Progress, type PromotionOptions, type PromotionResult, type VerificationGate } from '../../../src/promote/index.js';
import { eventually } from '../../support/eventually.js';
import { RegistryClient, staticKeychain, chainKeychains, type Keychain } from '../../../src/oci/index.js';
import { silentLogger } from '../../../src/log.js';
import { DEFAULT_BUNDLE_LAYER_LIMITS } from '../../../src/bundle/index.js';
import { rejectionOf } from '../../support/failure.js';
import { startRegistry, TEST_PASSWORD, TEST_USERNAME, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { FaultProxy } from '../../support/fault-proxy.js';
import {
  Fixtures, buildPromotionFixture, gzipBomb, imgpkgTag, locationsTag, randomLayer, readTar, type PromotionFixture,
} from '../../support/fixtures.js';

const run = promisify(execFile);
const ALL = { signatures: true, attestations: true, sboms: true, referrers: true };

function client(registries: readonly { host: string }[], keychain?: Keychain): RegistryClient {
  return new RegistryClient({
    insecure: registries.map((r) => r.host),
    ...(keychain ? { keychain } : {}),
    retry: { baseDelayMs: 10, maxDelayMs: 200 },
    logger: silentLogger(),
  });
}

function request(src: { host: string }, srcRepo: string, tag: string, dst: { host: string }, dstRepo: string, attached = ALL): PlanRequest {
  return {
    source: { registry: src.host, repository: srcRepo, tag },
    target: { registry: dst.host, repository: dstRepo },
    attached,
  };
}

describe('PromotionEngine', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let fixture: PromotionFixture;

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry({ accessLog: true }), startRegistry({ accessLog: true })]);
    fixture = await buildPromotionFixture(src, 'dev/app');
  });
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  describe('when promoting a signed bundle to another registry', () => {
    let proxy: FaultProxy;
    let result: PromotionResult;
    const phases: Progress[] = [];
    const target = 'prod/app';

    beforeAll(async () => {
      proxy = await FaultProxy.start(dst);
      const registry = client([src, proxy]);
      try {
        result = await new PromotionEngine({ registry, log: silentLogger() })
          .promote(request(src, 'dev/app', 'v1', proxy, target), { onProgress: (p) => phases.push(p) });
      } finally {
        await registry.close();
      }
    });
    afterAll(async () => proxy?.stop());

    it('stores every manifest of the closure byte for byte', async () => {
      const from = RawClient.for(src);
      const to = RawClient.for(dst);
      for (const digest of fixture.expected.manifests) {
        const [a, b] = await Promise.all([from.getManifest('dev/app', digest), to.getManifest(target, digest)]);
        expect(b.bytes.equals(a.bytes), digest).toBe(true);
        expect(b.mediaType).toBe(a.mediaType);
      }
      for (const blob of fixture.expected.blobs) expect(await to.blobExists(target, blob), blob).toBe(true);
    });

    it('writes every tag imgpkg writes, plus .att, .sbom and the referrers index', async () => {
      const tags = await RawClient.for(dst).listTags(target);
      expect(tags).toEqual(expect.arrayContaining([...fixture.expected.tags].filter((t) => !isReferrerImgpkgTag(t, fixture))));
      expect(result.sourceDigest).toBe(fixture.root.digest);
      expect(result.tags).toEqual(['v1']);
      // With no index in the target, the source's fallback index is copied byte for byte (same digest).
      expect((await RawClient.for(dst).getManifest(target, fixture.referrer.indexTag)).digest).toBe(fixture.referrer.indexDigest);
    });

    it('agrees with skopeo, an independent client, on the bundle bytes', async () => {
      const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dst.host}/${target}:v1`], { encoding: 'buffer' });
      expect(Buffer.from(stdout).equals(fixture.root.manifest)).toBe(true);
    });

    it('writes the bundle tag last', () => {
      const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'));
      expect(puts.at(-1)?.path).toBe(`/v2/${target}/manifests/v1`);
      expect(puts.filter((r) => r.path.endsWith('/manifests/v1'))).toHaveLength(1);
    });

    it('writes imgpkg\'s image-locations for both bundles', async () => {
      const to = RawClient.for(dst);
      const yaml = async (bundle: string) => {
        const m = JSON.parse((await to.getManifest(target, locationsTag(bundle))).bytes.toString());
        const entries = await readTar(await to.getBlob(target, m.layers[0].digest));
        return entries.find((e) => e.name.endsWith('image-locations.yml'))!.content.toString();
      };
      const sorted = (xs: { image: string; isBundle: boolean }[]) => xs.sort((a, b) => (a.image < b.image ? -1 : 1))
        .map((x) => `- image: ${x.image}\n  isBundle: ${x.isBundle}\n`).join('');
      expect(await yaml(fixture.root.digest)).toBe(`---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n${sorted([
        { image: fixture.web.ref, isBundle: false }, { image: fixture.api.ref, isBundle: false },
        { image: fixture.multiArch.ref, isBundle: false }, { image: fixture.nested.ref, isBundle: true }])}kind: ImageLocations\n`);
      expect(await yaml(fixture.nested.digest)).toContain(`- image: ${fixture.worker.ref}\n  isBundle: false\n`);
    });

    it('reports progress through every phase, ending with every blob counted', () => {
      expect([...new Set(phases.map((p) => p.phase))]).toEqual(['plan', 'blobs', 'manifests', 'attachments', 'locations', 'tags', 'done']);
      const done = phases.at(-1)!;
      expect(done.blobsTotal).toBe(fixture.expected.blobs.length);
      expect(done.blobsDone).toBe(done.blobsTotal);
      expect(done.artifactsDone).toBe(done.artifactsTotal);
    });

    it('spends no HEAD on the closure\'s blobs in a repository that did not exist: the self-mount is the only existence check', () => {
      const closure = new Set(fixture.expected.blobs);
      const heads = proxy.requests.filter((r) => r.method === 'HEAD' && r.path.includes('/blobs/'));
      expect(heads.filter((r) => closure.has(r.path.slice(r.path.lastIndexOf('/') + 1)))).toEqual([]);
    });

    it('reports what it copied', () => {
      expect(result.counts.artifactsPresent).toBe(0);
      expect(result.counts.blobs.uploaded).toBe(fixture.expected.blobs.length);
      expect(result.counts.bundles).toBe(2);
    });

    describe('and promoting it again', () => {
      it('moves no blob and writes nothing: the bundle tag already names the digest (a HEAD, not a PUT)', async () => {
        proxy.clearRequests();
        const sourceBefore = (await src.requests()).length;
        const registry = client([src, proxy]);
        const again = await new PromotionEngine({ registry, log: silentLogger() }).promote(request(src, 'dev/app', 'v1', proxy, target));
        await registry.close();
        expect(again.counts.artifactsCopied).toBe(0);
        expect(again.counts.blobs).toMatchObject({ uploaded: 0, mounted: 0 });
        const writes = proxy.requests.filter((r) => r.method === 'PUT' || r.method === 'POST' || r.method === 'PATCH');
        expect(writes.map((w) => w.path)).toEqual([]);
        expect(again.counts.tagsWritten).toBe(0);
        expect(proxy.requests.some((r) => r.method === 'HEAD' && r.path === `/v2/${target}/manifests/v1`)).toBe(true);
        // Two small blob reads per bundle, in the target: its own layer (.imgpkg/images.yml is the closure, never
        // the unsigned locations cache) and its locations layer (isBundle hints that save reading image configs).
        expect(proxy.requests.filter((r) => r.path.includes('/blobs/sha256:'))).toHaveLength(4);
        const sourceReads = (await src.requests()).slice(sourceBefore);
        expect(sourceReads.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
        // Per signature tag (.sig, .att, .sbom): a HEAD in the source and one in the target. The referrer: the
        // source listing (API probe, fallback tag), a HEAD and a fallback-index read in the target. Then the
        // root and nested bundle manifests, two tag listings, two bundle layers, two locations images (manifest +
        // layer), the tag's HEAD.
        const attachedTags = fixture.signatures.length + 2;
        expect(sourceReads.length + proxy.requests.length).toBeLessThanOrEqual(2 * attachedTags + 4 + 11);
      });
    });
  });

  describe('when a bundle lists images from other repositories and registries', () => {
    it('collapses them into the one target repository, and a second hop needs no original registry', async () => {
      const other = await startRegistry();
      const hop1 = await startRegistry();
      const hop2 = await startRegistry();
      try {
        const elsewhere = await new Fixtures(RawClient.for(other)).pushImage('team/lib', { layers: [await randomLayer(2048, 'elsewhere')] });
        const local = await new Fixtures(RawClient.for(src)).pushImage('dev/svc', { layers: [await randomLayer(2048, 'local')] });
        await new Fixtures(RawClient.for(src)).pushBundle('dev/mixed', { images: [elsewhere.ref, local.ref], tag: 'v1' });
        let registry = client([src, other, hop1, hop2]);
        await new PromotionEngine({ registry, log: silentLogger() }).promote(request(src, 'dev/mixed', 'v1', hop1, 'stage/mixed'));
        await registry.close();
        for (const d of [elsewhere.digest, local.digest]) expect(await RawClient.for(hop1).manifestExists('stage/mixed', d)).toBe(true);

        await other.stop(); // the original home of team/lib is gone: hop 2 must read everything from hop 1
        registry = client([hop1, hop2]);
        const result = await new PromotionEngine({ registry, log: silentLogger() }).promote(request(hop1, 'stage/mixed', 'v1', hop2, 'prod/mixed'));
        await registry.close();
        expect(result.counts.artifactsCopied).toBe(3);
        for (const d of [elsewhere.digest, local.digest]) expect(await RawClient.for(hop2).manifestExists('prod/mixed', d)).toBe(true);
      } finally {
        await Promise.all([other.stop(), hop1.stop(), hop2.stop()]);
      }
    });
  });

  describe('when an image has a non-distributable layer', () => {
    it('copies the manifest unchanged, skips the foreign blob and says so', async () => {
      const raw = RawClient.for(src);
      const layer = await randomLayer(512, 'windows-app');
      const config = Buffer.from('{"architecture":"amd64","os":"windows","rootfs":{"type":"layers","diff_ids":[]}}');
      const [layerDigest, configDigest] = [await raw.pushBlob('dev/win', layer), await raw.pushBlob('dev/win', config)];
      const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', size: 1234, digest: `sha256:${'f'.repeat(64)}`, urls: ['https://mcr.example/base.tar.gz'] };
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: configDigest },
        layers: [foreign, { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: layerDigest }] }));
      const digest = await raw.pushManifest('dev/win', `sha256:${createHash('sha256').update(manifest).digest('hex')}`, manifest, 'application/vnd.docker.distribution.manifest.v2+json');
      await new Fixtures(raw).pushBundle('dev/win', { images: [`${src.host}/dev/win@${digest}`], tag: 'v1' });
      const registry = client([src, dst]);
      const result = await new PromotionEngine({ registry, log: silentLogger() }).promote(request(src, 'dev/win', 'v1', dst, 'prod/win'));
      await registry.close();
      expect(result.nonDistributable).toEqual([{ image: `${src.host}/dev/win@${digest}`, digests: [foreign.digest] }]);
      expect(result.counts.blobs.skippedNonDistributable).toBe(1);
      const copied = await RawClient.for(dst).getManifest('prod/win', digest);
      expect(copied.bytes.equals(manifest)).toBe(true);
      expect(await RawClient.for(dst).blobExists('prod/win', foreign.digest)).toBe(false);
    });
  });

  describe('when no gate is set, blob copies start while the walk still runs', () => {
    it('and when the walk then fails, aborts them and waits for them before rejecting with the walk\'s error; nothing is tagged', async () => {
      const [srcProxy, dstProxy] = await Promise.all([FaultProxy.start(src), FaultProxy.start(dst)]);
      const ghost = `sha256:${'1'.repeat(64)}`;
      await new Fixtures(RawClient.for(src)).pushBundle('overlap', { images: [fixture.web.ref, `${src.host}/nowhere/app@${ghost}`], tag: 'v1' });
      // The walk is held at the lookup that will fail, the target's uploads at their start: the copies that
      // the walk started are in flight when it fails.
      const lookup = srcProxy.inject({ match: (r) => r.method === 'GET' && r.path === `/v2/overlap/manifests/${ghost}`, times: 1, action: 'hold' });
      const uploads = dstProxy.inject({ match: (r) => r.method === 'POST' && r.path.endsWith('/blobs/uploads/'), times: 1000, action: 'hold' });
      const registry = client([srcProxy, dstProxy, src]);
      let copiesInFlight = 0;
      const counting = new Proxy(registry, {
        get(target, key) {
          if (key === 'copyBlob') {
            return (...args: Parameters<RegistryClient['copyBlob']>) => {
              copiesInFlight += 1;
              return target.copyBlob(...args).finally(() => (copiesInFlight -= 1));
            };
          }
          const value: unknown = Reflect.get(target, key);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      try {
        const promotion = rejectionOf(new PromotionEngine({ registry: counting, log: silentLogger() })
          .promote(request(srcProxy, 'overlap', 'v1', dstProxy, 'prod/overlap')));
        await eventually('a blob copy to start before the walk ends', () => uploads.hits > 0 && lookup.hits > 0);
        lookup.release();
        const failure = await promotion;
        expect(failure.code).toBe('MANIFEST_NOT_FOUND');
        expect(failure.message).toContain(ghost);
        expect(copiesInFlight).toBe(0);
        expect(await RawClient.for(dst).listTags('prod/overlap')).toEqual([]);
      } finally {
        await registry.close();
        await Promise.all([srcProxy.stop(), dstProxy.stop()]);
      }
    });
  });

  describe('when source and target are repositories of one registry', () => {
    it('mounts every blob instead of uploading it', async () => {
      const registry = client([src]);
      const result = await new PromotionEngine({ registry, log: silentLogger() }).promote(request(src, 'dev/app', 'v1', src, 'test/app'));
      await registry.close();
      expect(result.counts.blobs.uploaded).toBe(0);
      expect(result.counts.blobs.mounted).toBe(fixture.expected.blobs.length);
      expect((await RawClient.for(src).getManifest('test/app', 'v1')).digest).toBe(fixture.root.digest);
    });

    it('reads the config only of images that can be bundles (one Docker layer), unless every image is verified', async () => {
      const passAll: VerificationGate = { scope: 'all', verify: (s) => Promise.resolve({ digest: s.digest, passed: true, reasons: [] }) };
      const blobReads = async (target: string, options: PromotionOptions) => {
        const registry = client([src]);
        try {
          await new PromotionEngine({ registry, log: silentLogger() }).promote(request(src, 'dev/app', 'v1', src, target), options);
          return registry.stats.byKind['GET blob'];
        } finally {
          await registry.close();
        }
      };
      // Both bundles' configs and layers, and worker's config (one Docker layer). web and api have two layers,
      // the index children are not in question: a same-registry copy reads no other blob.
      expect(await blobReads('test/shortcut', {})).toBe(5);
      // Under scope all, web's and api's configs are read as imgpkg reads them.
      expect(await blobReads('test/strict', { gate: passAll })).toBe(7);
    });

    it('copies an image that is labelled a bundle but has two layers as an image; fails on it as imgpkg does when every image is verified', async () => {
      const fx = new Fixtures(RawClient.for(src));
      const label = { 'dev.carvel.imgpkg.bundle': 'true' };
      const odd = await fx.pushImage('odd/app', { layers: [await randomLayer(64, 'odd-1'), await randomLayer(64, 'odd-2')], labels: label });
      await fx.pushBundle('odd/app', { images: [odd.ref], tag: 'v1' });
      const registry = client([src]);
      try {
        const engine = new PromotionEngine({ registry, log: silentLogger() });
        const copied = await engine.promote(request(src, 'odd/app', 'v1', src, 'odd/copied'));
        expect(copied.counts.bundles).toBe(1);
        expect((await RawClient.for(src).getManifest('odd/copied', odd.digest)).digest).toBe(odd.digest);
        const passAll: VerificationGate = { scope: 'all', verify: (s) => Promise.resolve({ digest: s.digest, passed: true, reasons: [] }) };
        const strict = await rejectionOf(engine.promote(request(src, 'odd/app', 'v1', src, 'odd/strict'), { gate: passAll }));
        expect(strict.code).toBe('BUNDLE_INVALID');
        expect(strict.message).toContain('expected bundle to only have a single layer, got 2');
      } finally {
        await registry.close();
      }
    });
  });

  describe('when the registries require credentials', () => {
    let basic: TestRegistry;
    let token: TestRegistry;
    beforeAll(async () => {
      [basic, token] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
      await buildPromotionFixture(token, 'dev/app', { seed: 'auth' });
    });
    afterAll(async () => Promise.all([basic?.stop(), token?.stop()]));

    it('reads with a bearer token and writes with basic auth', async () => {
      const creds = staticKeychain({ username: TEST_USERNAME, password: TEST_PASSWORD });
      const registry = client([basic, token], creds);
      const result = await new PromotionEngine({ registry, log: silentLogger() }).promote(request(token, 'dev/app', 'v1', basic, 'prod/app'));
      await registry.close();
      expect(result.counts.artifactsCopied).toBeGreaterThan(5);
      expect((await RawClient.for(basic).getManifest('prod/app', 'v1')).digest).toBe(result.sourceDigest);
      expect(token.tokenServer!.tokensIssued).toBeGreaterThan(0);
    });

    it('fails with REGISTRY_UNAUTHORIZED on a wrong password, naming no secret, writing no tag', async () => {
      const wrong = chainKeychains(staticKeychain({ username: TEST_USERNAME, password: 'hunter2-wrong' }, { hosts: [basic.host] }),
        staticKeychain({ username: TEST_USERNAME, password: TEST_PASSWORD }));
      const registry = client([basic, token], wrong);
      const f = await rejectionOf(new PromotionEngine({ registry, log: silentLogger() }).promote(request(token, 'dev/app', 'v1', basic, 'prod/wrong')));
      await registry.close();
      expect(f.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(f.message).toContain(basic.host);
      expect(f.message).not.toContain('hunter2');
      expect(await RawClient.for(basic).listTags('prod/wrong')).toEqual([]);
    });
  });

  describe('when the input is bad', () => {
    const fx = () => new Fixtures(RawClient.for(src));
    const promote = async (repo: string, tag: string, options = {}) => {
      const registry = client([src, dst]);
      try {
        return await rejectionOf(new PromotionEngine({ registry, log: silentLogger() }).promote(request(src, repo, tag, dst, `bad/${repo}`), options));
      } finally {
        await registry.close();
      }
    };
    const expectNoTag = async (repo: string) => expect(await RawClient.for(dst).listTags(`bad/${repo}`)).not.toContain('v1');

    it('refuses a plain image: NOT_A_BUNDLE', async () => {
      await fx().pushImage('plain', { layers: [await randomLayer(64, 'plain')], tag: 'v1' });
      const f = await promote('plain', 'v1');
      expect(f.code).toBe('NOT_A_BUNDLE');
      expect(f.message).toContain(`${src.host}/plain:v1`);
      await expectNoTag('plain');
    });

    it('refuses a tag in images.yml: IMAGES_LOCK_INVALID naming the image', async () => {
      await fx().pushBundle('tagged', { images: [`${src.host}/dev/app:v1`], tag: 'v1' });
      const f = await promote('tagged', 'v1');
      expect(f.code).toBe('IMAGES_LOCK_INVALID');
      expect(f.message).toContain(`${src.host}/dev/app:v1`);
      await expectNoTag('tagged');
    });

    it('refuses a missing referenced image: MANIFEST_NOT_FOUND naming it', async () => {
      const ghost = `${src.host}/nowhere/app@sha256:${'0'.repeat(64)}`;
      await fx().pushBundle('ghost', { images: [fixture.web.ref, ghost], tag: 'v1' });
      const f = await promote('ghost', 'v1');
      expect(f.code).toBe('MANIFEST_NOT_FOUND');
      expect(f.message).toContain(ghost);
      await expectNoTag('ghost');
    });

    it('refuses path traversal in the bundle layer', async () => {
      await fx().pushBundle('traversal', { images: [fixture.web.ref], tag: 'v1', extraTarEntries: [{ name: '../../etc/cron.d/evil', content: 'x' }] });
      const f = await promote('traversal', 'v1');
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toContain('../../etc/cron.d/evil');
      await expectNoTag('traversal');
    });

    it('refuses a gzip bomb', async () => {
      await fx().rawBundle('bomb', { gzipBytes: gzipBomb(256 * 1024 * 1024), tag: 'v1' });
      const f = await promote('bomb', 'v1', { layerLimits: { ...DEFAULT_BUNDLE_LAYER_LIMITS, maxDecompressedBytes: 16 * 1024 * 1024 } });
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toMatch(/decompresses to more than/);
      await expectNoTag('bomb');
    });

    it('refuses an oversized images.yml', async () => {
      const big = `# ${'x'.repeat(9 * 1024 * 1024)}\n`;
      await fx().rawBundle('huge', { tarEntries: [{ name: '.imgpkg/images.yml', content: big }], tag: 'v1' });
      const f = await promote('huge', 'v1');
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toContain('.imgpkg/images.yml');
      await expectNoTag('huge');
    });

    /** Distribution refuses to store what these tests need a source to serve, so a node:http fake plays it. */
    const fromFakeSource = async (body: Buffer, contentType: string, repo: string) => {
      const server = createServer((req, res) => {
        if (req.url === '/v2/') return void res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
        res.writeHead(200, { 'content-type': contentType, 'content-length': body.length }).end(body);
      }).listen(0, '127.0.0.1');
      await once(server, 'listening');
      const fake = { host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
      const registry = client([fake, dst]);
      try {
        return { fake, failure: await rejectionOf(new PromotionEngine({ registry, log: silentLogger() }).promote(request(fake, 'fake/app', 'v1', dst, `bad/${repo}`))) };
      } finally {
        await registry.close();
        server.closeAllConnections();
        server.close();
      }
    };

    it('refuses a manifest over 4 MiB: MANIFEST_TOO_LARGE', async () => {
      const huge = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', annotations: { padding: 'x'.repeat(4 * 1024 * 1024 + 10) } }));
      const { fake, failure: f } = await fromFakeSource(huge, 'application/vnd.oci.image.manifest.v1+json', 'toolarge');
      expect(f.code).toBe('MANIFEST_TOO_LARGE');
      expect(f.message).toContain(`${fake.host}/fake/app:v1`);
      await expectNoTag('toolarge');
    });

    it('refuses an unknown manifest media type: UNSUPPORTED_MEDIA_TYPE naming it', async () => {
      const odd = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing.v1+json', config: {}, layers: [] }));
      const { failure: f } = await fromFakeSource(odd, 'application/vnd.example.thing.v1+json', 'unknowntype');
      expect(f.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(f.message).toContain('application/vnd.example.thing.v1+json');
      await expectNoTag('unknowntype');
    });

    it('refuses a bundle layer of another media type', async () => {
      await fx().rawBundle('ocilayer', { layerMediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', tag: 'v1' });
      const f = await promote('ocilayer', 'v1');
      expect(f.code).toBe('BUNDLE_INVALID');
      expect(f.message).toContain('application/vnd.oci.image.layer.v1.tar+gzip');
      await expectNoTag('ocilayer');
    });

    it('refuses a blob whose bytes do not match its digest: DIGEST_MISMATCH', async () => {
      const layer = await randomLayer(256 * 1024, 'corrupt');
      const image = await fx().pushImage('corrupt', { layers: [layer] });
      await fx().pushBundle('corrupt', { images: [image.ref], tag: 'v1' });
      // Rot the stored bytes behind the registry's back; Distribution serves them without re-hashing.
      const hex = image.layerDigests[0]!.slice('sha256:'.length);
      const file = join(src.dir, 'store', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
      const bytes = await readFile(file);
      bytes[bytes.length >> 1]! ^= 0xff;
      await writeFile(file, bytes);
      const f = await promote('corrupt', 'v1');
      expect(f.code).toBe('DIGEST_MISMATCH');
      expect(f.message).toContain(image.layerDigests[0]!);
      await expectNoTag('corrupt');
      expect(await RawClient.for(dst).blobExists('bad/corrupt', image.layerDigests[0]!)).toBe(false);
    });
  });

  describe('when the source registry fails transiently', () => {
    it('retries 503, 429 with Retry-After and connection resets, and completes', async () => {
      const proxy = await FaultProxy.start(src);
      try {
        // Arrival times, from a rule that never fires (rules are tried in order, so it sees every request).
        const arrivals: { method: string; path: string; at: number }[] = [];
        proxy.inject({ match: (r) => { arrivals.push({ method: r.method, path: r.path, at: performance.now() }); return false; }, times: Number.POSITIVE_INFINITY, action: 'reset' });
        const m503 = proxy.inject({ match: (r) => r.method === 'GET' && r.path.endsWith('/manifests/v1'), times: 1, action: 'status', status: 503 });
        const m429 = proxy.inject({ match: (r) => r.method === 'GET' && r.path.includes('/blobs/'), times: 1, action: 'status', status: 429, retryAfter: '2' });
        const reset = proxy.inject({ match: (r) => r.method === 'GET' && r.path.includes('/blobs/'), times: 1, action: 'reset' });
        const registry = client([proxy, dst]);
        const started = performance.now();
        const result = await new PromotionEngine({ registry, log: silentLogger() }).promote(request(proxy, 'dev/app', 'v1', dst, 'retry/app'));
        await registry.close();
        expect(result.sourceDigest).toBe(fixture.root.digest);
        expect([m503.hits, m429.hits, reset.hits]).toEqual([1, 1, 1]);
        expect(performance.now() - started).toBeGreaterThanOrEqual(1990);
        // Retry-After: 2 was honoured: the throttled request was not asked again for two seconds. (The whole run's
        // length proves little: ignoring the header, the client's own backoff for a 429 stays under one second.)
        const throttled = arrivals.find((a) => a.method === 'GET' && a.path.includes('/blobs/'))!;
        const again = arrivals.find((a) => a.at > throttled.at && a.method === 'GET' && a.path === throttled.path);
        expect(again, `a retry of ${throttled.path}`).toBeDefined();
        expect(again!.at - throttled.at).toBeGreaterThanOrEqual(1990);
      } finally {
        await proxy.stop();
      }
    });

    it('does not retry a permanent failure', async () => {
      const proxy = await FaultProxy.start(src);
      try {
        const registry = client([proxy, dst]);
        const f = await rejectionOf(new PromotionEngine({ registry, log: silentLogger() }).promote(request(proxy, 'dev/app', 'no-such-tag', dst, 'retry/none')));
        await registry.close();
        expect(f.code).toBe('MANIFEST_NOT_FOUND');
        expect(proxy.requests.filter((r) => r.path.endsWith('/manifests/no-such-tag'))).toHaveLength(1);
      } finally {
        await proxy.stop();
      }
    });
  });
});

/** The referrer manifest is PUT by digest, as cosign does, so it has no `.imgpkg` tag of its own. */
function isReferrerImgpkgTag(tag: string, fixture: PromotionFixture): boolean {
  return tag === imgpkgTag(fixture.referrer.digest);
}
