import { createHash, generateKeyPairSync } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { ImageSigner, loadPolicy, parsePrivateKey, SignatureVerifier, type SigningKey } from '../../../src/cosign/index.js';
import { FIXTURE_DIR, fixtureText } from './fixture-files.js';
import { MemoryRegistry } from './memory-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const repo = { registry: 'registry.example.com', repository: 'team/app' };
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Manifest = {
  mediaType: string;
  config: { mediaType: string; size: number; digest: string; artifactType?: string };
  layers: { mediaType: string; size: number; digest: string; annotations?: Record<string, string> }[];
  annotations?: Record<string, string>;
  subject?: { mediaType: string; size: number; digest: string };
  artifactType?: string;
};

function newKey(): { key: SigningKey; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: parsePrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, '', 'test.key'), pem: publicKey.export({ format: 'pem', type: 'spki' }) as string };
}

describe('ImageSigner', () => {
  let reg: MemoryRegistry;
  let signer: ImageSigner;
  let verifier: SignatureVerifier;
  let image: string;
  const sigTag = (): string => `sha256-${image.slice(7)}.sig`;
  const sigManifest = async (): Promise<{ doc: Manifest; bytes: Buffer; mediaType: string }> => {
    const raw = await reg.getManifest({ ...repo, tag: sigTag() });
    return { doc: JSON.parse(raw.bytes.toString()) as Manifest, bytes: raw.bytes, mediaType: raw.mediaType };
  };

  beforeEach(() => {
    reg = new MemoryRegistry();
    signer = new ImageSigner({ registry: reg, log: silentLogger() });
    verifier = new SignatureVerifier({ registry: reg, log: silentLogger() });
    image = reg.plantManifest(repo, OCI_MANIFEST, Buffer.from('{"schemaVersion":2}'));
  });

  describe('when signing a digest without signatures', () => {
    it('writes the cosign .sig image: OCI types, 233-byte config, one simple-signing layer', async () => {
      const { key, pem } = newKey();
      const r = await signer.sign({ repo, digest: image }, key);
      expect(r).toMatchObject({ format: 'legacy', tag: sigTag(), written: true });
      const { doc, bytes, mediaType } = await sigManifest();
      expect(mediaType).toBe(OCI_MANIFEST);
      expect(r.manifestDigest).toBe(`sha256:${sha(bytes)}`);
      expect(Object.keys(doc)).toEqual(['schemaVersion', 'mediaType', 'config', 'layers']);
      expect(doc.config).toMatchObject({ mediaType: 'application/vnd.oci.image.config.v1+json', size: 233 });
      expect(doc.layers).toHaveLength(1);
      const layer = doc.layers[0];
      if (layer === undefined) throw new Error('no layer');
      expect(Object.keys(layer)).toEqual(['mediaType', 'size', 'digest', 'annotations']);
      const payload = await reg.readBlob(repo, layer.digest, 1 << 20);
      expect(payload.toString()).toBe(
        `{"critical":{"identity":{"docker-reference":"registry.example.com/team/app"},"image":{"docker-manifest-digest":"${image}"},"type":"cosign container image signature"},"optional":null}`,
      );
      const config = JSON.parse((await reg.readBlob(repo, doc.config.digest, 1 << 20)).toString()) as { rootfs: { diff_ids: string[] } };
      expect(config.rootfs.diff_ids).toEqual([layer.digest]);
      const policy = await loadPolicy({ authorities: [{ keys: [pem], tlog: 'ignore' }] }, { baseDir: FIXTURE_DIR });
      expect((await verifier.verify({ repo, digest: image }, policy)).passed).toBe(true);
    });
  });

  describe('when signing again', () => {
    it('is a no-op for the same key and annotations (cosign dedupe)', async () => {
      const { key } = newKey();
      const first = await signer.sign({ repo, digest: image }, key, { annotations: { a: '1' } });
      const again = await signer.sign({ repo, digest: image }, key, { annotations: { a: '1' } });
      expect(again).toMatchObject({ written: false, manifestDigest: first.manifestDigest });
      expect((await sigManifest()).doc.layers).toHaveLength(1);
    });

    it('appends a layer for other annotations, keeping the first byte for byte', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      const before = (await sigManifest()).doc.layers[0];
      await signer.sign({ repo, digest: image }, key, { annotations: { 'e2e-tests-passed': 'True' } });
      const { doc } = await sigManifest();
      expect(doc.layers).toHaveLength(2);
      expect(doc.layers[0]).toEqual(before);
      const config = JSON.parse((await reg.readBlob(repo, doc.config.digest, 1 << 20)).toString()) as { history: unknown[]; rootfs: { diff_ids: string[] } };
      expect(config.history).toHaveLength(2);
      expect(config.rootfs.diff_ids).toEqual(doc.layers.map((l) => l.digest));
      const policy = await loadPolicy({ authorities: [{ keys: [pem], tlog: 'ignore' }], annotations: { 'e2e-tests-passed': 'True' } }, { baseDir: FIXTURE_DIR });
      expect((await verifier.verify({ repo, digest: image }, policy)).passed).toBe(true);
    });

    it('appends for another key', async () => {
      await signer.sign({ repo, digest: image }, newKey().key);
      await signer.sign({ repo, digest: image }, newKey().key);
      expect((await sigManifest()).doc.layers).toHaveLength(2);
    });

    it('keeps Docker media types of an existing Docker-typed .sig image', async () => {
      const { key } = newKey();
      await signer.sign({ repo, digest: image }, key, { dockerMediaTypes: true });
      expect((await sigManifest()).mediaType).toBe(DOCKER_MANIFEST);
      await signer.sign({ repo, digest: image }, key, { annotations: { b: '2' } });
      const { doc, mediaType } = await sigManifest();
      expect(mediaType).toBe(DOCKER_MANIFEST);
      expect(doc.mediaType).toBe(DOCKER_MANIFEST);
      expect(doc.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
      expect(doc.layers[1]?.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    });
  });

  describe('when signing with the encrypted fixture key', () => {
    it('produces signatures that verify with its public key', async () => {
      const key = parsePrivateKey(fixtureText('cosign-keys_test.sigstore-hello.key'), 'hello', 'cosign.key');
      await signer.sign({ repo, digest: image }, key);
      const pem = `-----BEGIN PUBLIC KEY-----\n${key.publicKey.spki.toString('base64')}\n-----END PUBLIC KEY-----\n`;
      const policy = await loadPolicy({ authorities: [{ keys: [pem], tlog: 'ignore' }] }, { baseDir: FIXTURE_DIR });
      expect((await verifier.verify({ repo, digest: image }, policy)).passed).toBe(true);
    });
  });

  describe('when writing the new bundle format', () => {
    it('pushes a referrer by digest and a sorted fallback index, found by the verifier with annotations', async () => {
      const { key, pem } = newKey();
      const now = () => new Date('2026-11-28T07:00:00.123Z');
      const first = await signer.sign({ repo, digest: image }, key, { newBundleFormat: true, annotations: { 'e2e-tests-passed': 'True' }, now });
      const second = await signer.sign({ repo, digest: image }, key, { newBundleFormat: true, annotations: { other: 'x' }, now });
      expect(first).toMatchObject({ format: 'bundle', tag: `sha256-${image.slice(7)}`, written: true });

      const referrer = JSON.parse((await reg.getManifest({ ...repo, digest: first.manifestDigest })).bytes.toString()) as Manifest;
      expect(referrer).toMatchObject({
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' },
        layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' }],
        annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1', 'org.opencontainers.image.created': '2026-11-28T07:00:00Z' },
        subject: { mediaType: OCI_MANIFEST, digest: image },
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      });
      const bundle = JSON.parse((await reg.readBlob(repo, referrer.layers[0]?.digest ?? '', 1 << 20)).toString()) as { mediaType: string; verificationMaterial: { publicKey: { hint: string } } };
      expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
      expect(bundle.verificationMaterial.publicKey.hint).toBe(key.publicKey.keyId);

      const index = JSON.parse((await reg.getManifest({ ...repo, tag: `sha256-${image.slice(7)}` })).bytes.toString()) as { mediaType: string; manifests: { digest: string; artifactType: string }[] };
      expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(index.manifests.map((m) => m.digest)).toEqual([first.manifestDigest, second.manifestDigest].sort());
      expect(index.manifests.every((m) => m.artifactType === 'application/vnd.dev.sigstore.bundle.v0.3+json')).toBe(true);

      const policy = await loadPolicy({ authorities: [{ name: 'k', keys: [pem], tlog: 'ignore' }], annotations: { 'e2e-tests-passed': 'True' } }, { baseDir: FIXTURE_DIR });
      const r = await verifier.verify({ repo, digest: image }, policy);
      expect(r.passed).toBe(true);
      expect(r.signatures.filter((s) => s.format === 'bundle').map((s) => [s.source, s.passed, s.reason])).toEqual(
        [
          [first.manifestDigest, true, undefined],
          [second.manifestDigest, false, 'missing or incorrect annotation'],
        ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      );
    });

    it('fails a bundle under tlog: require as "tlog evidence missing"', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key, { newBundleFormat: true });
      const policy = await loadPolicy({ authorities: [{ keys: [pem], tlog: 'require', rekorKeys: ['ci-rekor.pub'] }] }, { baseDir: FIXTURE_DIR });
      expect((await verifier.verify({ repo, digest: image }, policy)).reasons).toEqual(['tlog evidence missing']);
    });

    it('refuses to sign a digest the repository does not hold', async () => {
      await expect(signer.sign({ repo, digest: `sha256:${'9'.repeat(64)}` }, newKey().key, { newBundleFormat: true })).rejects.toMatchObject({ code: 'MANIFEST_NOT_FOUND' });
    });
  });
});
