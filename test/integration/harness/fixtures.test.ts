import { execFile } from 'node:child_process';
import { verify } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPromotionFixture,
  cosignTag,
  Fixtures,
  generateSigningKey,
  gzipBomb,
  imagesLockYaml,
  imgpkgTag,
  keySignedSigstoreBundle,
  MEDIA_TYPES,
  preAuthEncoding,
  randomLayer,
  readTar,
  referrersTag,
  simpleSigningPayload,
  type PromotionFixture,
} from '../../support/fixtures.js';
import { RawClient, sha256Digest } from '../../support/raw-client.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';

const run = promisify(execFile);

describe('Fixtures', () => {
  let registry: TestRegistry;
  let client: RawClient;
  let fx: Fixtures;
  beforeAll(async () => {
    registry = await startRegistry();
    client = RawClient.for(registry);
    fx = new Fixtures(client);
  });
  afterAll(async () => {
    await registry.stop();
  });

  describe('randomLayer', () => {
    it('is deterministic per seed and gunzips to a tar', async () => {
      const a = await randomLayer(1000, 's1');
      expect(await randomLayer(1000, 's1')).toEqual(a);
      expect(await randomLayer(1000, 's2')).not.toEqual(a);
      const entries = await readTar(a);
      expect(entries).toHaveLength(1);
      expect(entries[0]?.content).toHaveLength(1000);
    });
  });

  describe('when an image is pushed', () => {
    it('stores exactly the manifest bytes, as skopeo sees them', async () => {
      const image = await fx.pushImage('img', { layers: [await randomLayer(2048, 'img')], tag: 't1', labels: { a: 'b' } });
      expect(image.mediaType).toBe(MEDIA_TYPES.dockerManifest);
      const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/img@${image.digest}`], {
        encoding: 'buffer',
      });
      expect(Buffer.compare(stdout, image.manifest)).toBe(0);
      expect(sha256Digest(stdout)).toBe(image.digest);
      expect(await client.listTags('img')).toEqual(['t1']);
    });
  });

  describe('when an OCI index is pushed', () => {
    it('lists both children with their platforms', async () => {
      const amd = await fx.pushImage('idx', { layers: [await randomLayer(10, 'a')], oci: true });
      const arm = await fx.pushImage('idx', { layers: [await randomLayer(10, 'b')], oci: true, platform: { architecture: 'arm64', os: 'linux' } });
      const index = await fx.pushIndex('idx', [amd, arm], 'multi');
      const stored = await client.getManifest('idx', 'multi');
      expect(stored.digest).toBe(index.digest);
      expect(stored.mediaType).toBe(MEDIA_TYPES.ociIndex);
      const parsed = JSON.parse(stored.bytes.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] };
      expect(parsed.manifests.map((m) => [m.digest, m.platform.architecture])).toEqual([
        [amd.digest, 'amd64'],
        [arm.digest, 'arm64'],
      ]);
    });
  });

  describe('when a bundle is pushed', () => {
    it('builds what imgpkg push builds: label, one Docker layer with .imgpkg/images.yml, both tags', async () => {
      const image = await fx.pushImage('bundle', { layers: [await randomLayer(10, 'x')] });
      const bundle = await fx.pushBundle('bundle', {
        images: [{ image: image.ref, annotations: { 'kbld.carvel.dev/id': 'my-app' } }],
        tag: 'v1',
        files: { 'config.yml': 'a: 1\n' },
      });
      const manifest = JSON.parse((await client.getManifest('bundle', 'v1')).bytes.toString()) as {
        mediaType: string;
        config: { mediaType: string; digest: string };
        layers: { mediaType: string; digest: string }[];
      };
      expect(manifest.mediaType).toBe(MEDIA_TYPES.dockerManifest);
      expect(manifest.config.mediaType).toBe(MEDIA_TYPES.dockerConfig);
      expect(manifest.layers.map((l) => l.mediaType)).toEqual([MEDIA_TYPES.dockerLayer]);
      const config = JSON.parse((await client.getBlob('bundle', manifest.config.digest)).toString()) as Record<string, unknown>;
      expect(config).toMatchObject({ architecture: '', os: '', created: '0001-01-01T00:00:00Z', config: { Labels: { 'dev.carvel.imgpkg.bundle': 'true' } } });
      expect(config['history']).toEqual([{ author: 'imgpkg', created: '0001-01-01T00:00:00Z', created_by: 'imgpkg' }]);

      const entries = await readTar(await client.getBlob('bundle', manifest.layers[0]?.digest ?? ''));
      expect(entries.map((e) => [e.name, e.type, e.mode])).toEqual([
        ['.', 'directory', 0o700],
        ['.imgpkg', 'directory', 0o700],
        ['.imgpkg/images.yml', 'file', 0o600],
        ['config.yml', 'file', 0o600],
      ]);
      expect(entries[2]?.content.toString()).toBe(
        `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n- annotations:\n    kbld.carvel.dev/id: my-app\n  image: ${image.ref}\nkind: ImagesLock\n`,
      );
      expect(await client.listTags('bundle')).toEqual([imgpkgTag(bundle.digest), 'v1'].sort());
    });
  });

  describe('when a hostile bundle is pushed', () => {
    it('keeps a path-traversal entry and a tag-form ref as given', async () => {
      const raw = await fx.rawBundle('hostile', {
        tarEntries: [
          { name: '.', type: 'directory' },
          { name: '.imgpkg/images.yml', content: imagesLockYaml([`${registry.host}/hostile:latest`]) },
          { name: '../x', content: 'escape' },
        ],
        tag: 'traversal',
      });
      const entries = await readTar(await client.getBlob('hostile', raw.layerDigests[0] ?? ''));
      expect(entries.map((e) => e.name)).toEqual(['.', '.imgpkg/images.yml', '../x']);
      expect(entries[1]?.content.toString()).toContain(`image: ${registry.host}/hostile:latest`);
    });

    it('stores a gzip bomb that inflates far beyond its size, and two OCI-typed layers', async () => {
      const bomb = gzipBomb(64 * 1024 * 1024, '.imgpkg/images.yml');
      expect(bomb.length).toBeLessThan(200_000);
      expect(gunzipSync(bomb).length).toBe(512 + 64 * 1024 * 1024 + 1024);
      const raw = await fx.rawBundle('hostile', { gzipBytes: bomb });
      expect(await client.blobExists('hostile', raw.layerDigests[0] ?? '')).toBe(true);

      const two = await fx.rawBundle('hostile', {
        layers: [{ bytes: await randomLayer(5, 'l1') }, { bytes: await randomLayer(5, 'l2'), mediaType: MEDIA_TYPES.ociLayer }],
      });
      const manifest = JSON.parse(two.manifest.toString()) as { layers: { mediaType: string }[] };
      expect(manifest.layers.map((l) => l.mediaType)).toEqual([MEDIA_TYPES.dockerLayer, MEDIA_TYPES.ociLayer]);
    });
  });

  describe('when an image is signed the legacy way', () => {
    it('writes cosign bytes: payload JSON, 233-byte config, a verifiable DER signature', async () => {
      const key = generateSigningKey();
      const image = await fx.pushImage('signed', { layers: [await randomLayer(10, 's')] });
      const sig = await fx.signLegacy('signed', image.digest, key, { annotations: { env: 'prod', a: '<&>' } });
      expect(sig.tag).toBe(cosignTag(image.digest, 'sig'));
      expect(sig.payload.toString()).toBe(
        `{"critical":{"identity":{"docker-reference":"${registry.host}/signed"},"image":{"docker-manifest-digest":"${image.digest}"},` +
          '"type":"cosign container image signature"},"optional":{"a":"\\u003c\\u0026\\u003e","env":"prod"}}',
      );
      const stored = await client.getManifest('signed', sig.tag);
      expect(stored.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      const manifest = JSON.parse(stored.bytes.toString()) as {
        config: { size: number; digest: string };
        layers: { mediaType: string; digest: string; annotations: Record<string, string> }[];
      };
      expect(Object.keys(JSON.parse(stored.bytes.toString()) as object)).toEqual(['schemaVersion', 'mediaType', 'config', 'layers']);
      expect(manifest.config.size).toBe(233);
      const layer = manifest.layers[0];
      expect(layer?.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
      const payload = await client.getBlob('signed', layer?.digest ?? '');
      const signature = Buffer.from(layer?.annotations['dev.cosignproject.cosign/signature'] ?? '', 'base64');
      expect(verify('sha256', payload, key.publicKey, signature)).toBe(true);
    });

    it('appends a second key as a second layer and skips a repeat of the first', async () => {
      const [k1, k2] = [generateSigningKey(), generateSigningKey()];
      const image = await fx.pushImage('signed2', { layers: [await randomLayer(10, 's2')] });
      await fx.signLegacy('signed2', image.digest, k1);
      const again = await fx.signLegacy('signed2', image.digest, k1);
      expect(again.appended).toBe(false);
      const second = await fx.signLegacy('signed2', image.digest, k2);
      expect(second.layerDigests).toHaveLength(2);
      const config = JSON.parse(
        (await client.getBlob('signed2', second.configDigest)).toString(),
      ) as { history: unknown[]; rootfs: { diff_ids: string[] } };
      expect(config.history).toHaveLength(2);
      expect(config.rootfs.diff_ids).toEqual(second.layerDigests);
      expect(simpleSigningPayload('r', image.digest).toString()).toContain('"optional":null');
    });
  });

  describe('when an attestation, an SBOM and a referrer are attached', () => {
    it('writes .att with a verifiable DSSE envelope, .sbom, and a referrer listed in the fallback index', async () => {
      const key = generateSigningKey();
      const image = await fx.pushImage('attached', { layers: [await randomLayer(10, 'att')], oci: true });
      const att = await fx.attestLegacy('attached', image.digest, key, 'https://slsa.dev/provenance/v0.2', { x: 1 });
      const envelope = JSON.parse(att.envelope.toString()) as { payload: string; payloadType: string; signatures: { sig: string }[] };
      const statement = Buffer.from(envelope.payload, 'base64');
      expect(JSON.parse(statement.toString())).toMatchObject({ predicateType: 'https://slsa.dev/provenance/v0.2', subject: [{ digest: { sha256: image.digest.slice(7) } }] });
      expect(verify('sha256', preAuthEncoding(envelope.payloadType, statement), key.publicKey, Buffer.from(envelope.signatures[0]?.sig ?? '', 'base64'))).toBe(true);

      const sbom = await fx.attachSbom('attached', image.digest, Buffer.from('{"spdxVersion":"SPDX-2.3"}'), 'text/spdx+json');
      expect((await client.getManifest('attached', cosignTag(image.digest, 'sbom'))).digest).toBe(sbom.digest);

      const first = await fx.attachSigstoreBundleReferrer('attached', image.digest, keySignedSigstoreBundle(image.digest, key));
      const second = await fx.attachSigstoreBundleReferrer('attached', image.digest, Buffer.from('{"other":true}'), { created: '2025-02-02T00:00:00Z' });
      const referrer = JSON.parse((await client.getManifest('attached', first.digest)).bytes.toString()) as { subject: { digest: string; size: number } };
      expect(referrer.subject).toMatchObject({ digest: image.digest, size: image.size });
      const index = await client.getManifest('attached', referrersTag(image.digest));
      expect(index.digest).toBe(second.indexDigest);
      const entries = (JSON.parse(index.bytes.toString()) as { manifests: { digest: string; artifactType: string }[] }).manifests;
      expect(entries.map((e) => e.digest)).toEqual([first.digest, second.digest].sort());
      expect(entries.every((e) => e.artifactType === 'application/vnd.dev.sigstore.bundle.v0.3+json')).toBe(true);
    });
  });

  describe('buildPromotionFixture', () => {
    let fixture: PromotionFixture;
    beforeAll(async () => {
      fixture = await buildPromotionFixture(registry, 'promo/src');
    });

    it('pushes every expected manifest and blob', async () => {
      expect(fixture.expected.manifests).toHaveLength(17);
      for (const digest of fixture.expected.manifests) expect(await client.manifestExists('promo/src', digest), digest).toBe(true);
      for (const digest of fixture.expected.blobs) expect(await client.blobExists('promo/src', digest), digest).toBe(true);
    });

    it('nests the bundles and lists the expected target tags', async () => {
      expect(fixture.root.imagesYml).toContain(fixture.nested.ref);
      expect(fixture.root.imagesYml).toContain(fixture.multiArch.ref);
      expect(fixture.nested.imagesYml).toContain(fixture.worker.ref);
      const tags = fixture.expected.tags;
      expect(tags).toContain('v1');
      expect(tags).toContain(imgpkgTag(fixture.multiArch.digest));
      for (const child of fixture.multiArch.children) expect(tags).not.toContain(imgpkgTag(child.digest));
      expect(tags.filter((t) => t.endsWith('.sig'))).toHaveLength(6);
      expect(tags.filter((t) => t.endsWith('.image-locations.imgpkg'))).toHaveLength(2);
      expect(tags).toHaveLength(15 + 6 + 1 + 1 + 1 + 2 + 1);
      const source = await client.listTags('promo/src');
      for (const tag of tags.filter((t) => /\.(sig|att|sbom)$/.test(t) || t === referrersTag(fixture.root.digest))) expect(source).toContain(tag);
    });

    it('is deterministic for content images across runs with the same seed', async () => {
      const again = await buildPromotionFixture(registry, 'promo/again');
      expect(again.web.digest).toBe(fixture.web.digest);
      expect(again.multiArch.digest).toBe(fixture.multiArch.digest);
    });
  });
});
