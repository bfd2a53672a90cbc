import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { RegistryClient } from '../../../src/oci/index.js';
import {
  generateKeyPair,
  ImageSigner,
  loadPolicy,
  parsePrivateKey,
  SignatureVerifier,
  type Policy,
  type PolicyDocument,
  type SigningKey,
} from '../../../src/cosign/index.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import {
  attachSigstoreBundleReferrer,
  attestLegacy,
  cosignTag,
  Fixtures,
  generateSigningKey,
  keySignedSigstoreBundle,
  randomLayer,
  referrersTag,
  signLegacy,
  type PushedImage,
} from '../../support/fixtures.js';
import { FIXTURE_DIR, fixtureText } from '../../unit/cosign/fixture-files.js';

const log = silentLogger();

async function newKey(): Promise<{ key: SigningKey; pem: string }> {
  const pair = await generateKeyPair('pw', { scryptN: 32768 });
  return { key: parsePrivateKey(pair.privateKeyPem, 'pw', 'generated.key'), pem: pair.publicKeyPem };
}

function policy(doc: Partial<PolicyDocument> & { authorities: PolicyDocument['authorities'] }): Promise<Policy> {
  // These keys sign without a transparency log: say so, as the policy must (tlog defaults to require).
  const authorities = (doc.authorities ?? []).map((a) => (a.tlog !== undefined || a.trustedRoot !== undefined || a.rekorKeys !== undefined || a.keyless !== undefined ? a : { ...a, tlog: 'ignore' as const }));
  return loadPolicy({ ...doc, authorities }, { baseDir: FIXTURE_DIR });
}

describe('cosign signatures through a real registry (distribution 2.8, no referrers API)', () => {
  let registry: TestRegistry;
  let client: RegistryClient;
  let raw: RawClient;
  let fixtures: Fixtures;
  let verifier: SignatureVerifier;
  let signer: ImageSigner;
  let seq = 0;

  /** A fresh image in its own repository, so that tests never see each other's signatures. */
  async function image(): Promise<{ repoName: string; repo: { registry: string; repository: string }; pushed: PushedImage }> {
    seq += 1;
    const repoName = `team/app${seq}`;
    const pushed = await fixtures.pushImage(repoName, { layers: [await randomLayer(512, `cosign-${seq}`)], tag: 'v1' });
    return { repoName, repo: { registry: registry.host, repository: repoName }, pushed };
  }

  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ insecure: [registry.host] });
    raw = RawClient.for(registry);
    fixtures = new Fixtures(raw);
    verifier = new SignatureVerifier({ registry: client, log });
    signer = new ImageSigner({ registry: client, log });
  });
  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  describe('when signing with a generated key', () => {
    it('verifies, and the .sig image is what cosign writes', async () => {
      const { repo, repoName, pushed } = await image();
      const { key, pem } = await newKey();
      const r = await signer.sign({ repo, digest: pushed.digest }, key);
      expect(r.tag).toBe(cosignTag(pushed.digest, 'sig'));
      const sig = await raw.findManifest(repoName, r.tag);
      expect(sig?.digest).toBe(r.manifestDigest);
      const result = await verifier.verify({ repo, digest: pushed.digest }, await policy({ authorities: [{ name: 'ci', keys: [pem] }] }));
      expect(result).toMatchObject({ passed: true, authoritiesPassed: ['ci'], reasons: [] });
      expect(result.signatures[0]?.payload).toMatchObject({ critical: { identity: { 'docker-reference': `${registry.host}/${repoName}` }, image: { 'docker-manifest-digest': pushed.digest } }, optional: null });
    });
  });

  describe('when signing with the encrypted fixture key (password hello)', () => {
    it('verifies with its public key and not with another', async () => {
      const { repo, pushed } = await image();
      const key = parsePrivateKey(fixtureText('cosign-keys_test.sigstore-hello.key'), 'hello', 'cosign.key');
      await signer.sign({ repo, digest: pushed.digest }, key);
      const pem = `-----BEGIN PUBLIC KEY-----\n${key.publicKey.spki.toString('base64')}\n-----END PUBLIC KEY-----\n`;
      expect((await verifier.verify({ repo, digest: pushed.digest }, await policy({ authorities: [{ keys: [pem] }] }))).passed).toBe(true);
      const other = await verifier.verify({ repo, digest: pushed.digest }, await policy({ authorities: [{ keys: ['ci-cosign.pub'] }] }));
      expect(other).toMatchObject({ passed: false, reasons: ['signature invalid'] });
    });
  });

  describe('when a second signature with other annotations is appended', () => {
    it('keeps both layers and checks annotations as a subset, exactly', async () => {
      const { repo, repoName, pushed } = await image();
      const { key, pem } = await newKey();
      await signer.sign({ repo, digest: pushed.digest }, key, { annotations: { stage: 'built' } });
      const again = await signer.sign({ repo, digest: pushed.digest }, key, { annotations: { stage: 'built' } });
      expect(again.written).toBe(false);
      await signer.sign({ repo, digest: pushed.digest }, key, { annotations: { 'e2e-tests-passed': 'True', stage: 'tested' } });
      const sig = await raw.findManifest(repoName, cosignTag(pushed.digest, 'sig'));
      expect((JSON.parse(sig?.bytes.toString() ?? '{}') as { layers: unknown[] }).layers).toHaveLength(2);

      const subset = await verifier.verify({ repo, digest: pushed.digest }, await policy({ authorities: [{ keys: [pem] }], annotations: { 'e2e-tests-passed': 'True' } }));
      expect(subset.passed).toBe(true);
      expect(subset.signatures.map((s) => s.passed)).toEqual([false, true]);

      const wrong = await verifier.verify({ repo, digest: pushed.digest }, await policy({ authorities: [{ keys: [pem] }], annotations: { 'e2e-tests-passed': 'true' } }));
      expect(wrong).toMatchObject({ passed: false, reasons: ['missing or incorrect annotation'] });
    });
  });

  describe('when two keys must both have signed (threshold 2)', () => {
    it('fails with one signature and passes with both', async () => {
      const { repo, pushed } = await image();
      const a = await newKey();
      const b = await newKey();
      const p = await policy({ authorities: [{ name: 'build', keys: [a.pem] }, { name: 'qa', keys: [b.pem] }], threshold: 2 });
      await signer.sign({ repo, digest: pushed.digest }, a.key);
      expect(await verifier.verify({ repo, digest: pushed.digest }, p)).toMatchObject({ passed: false, authoritiesPassed: ['build'] });
      await signer.sign({ repo, digest: pushed.digest }, b.key, { annotations: { approved: 'yes' } });
      expect(await verifier.verify({ repo, digest: pushed.digest }, p)).toMatchObject({ passed: true, authoritiesPassed: ['build', 'qa'] });
    });
  });

  describe('when the image and its .sig are copied to another repository', () => {
    it('still verifies there, because the claim is the digest, not the repository', async () => {
      const { repo, repoName, pushed } = await image();
      const { key, pem } = await newKey();
      await signer.sign({ repo, digest: pushed.digest }, key);
      const target = 'prod/copied';
      for (const d of [pushed.configDigest, ...pushed.layerDigests]) await raw.pushBlob(target, await raw.getBlob(repoName, d));
      await raw.pushManifest(target, pushed.digest, pushed.manifest, pushed.mediaType);
      const sig = await raw.findManifest(repoName, cosignTag(pushed.digest, 'sig'));
      if (sig === undefined) throw new Error('no .sig');
      const sigDoc = JSON.parse(sig.bytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
      for (const d of [sigDoc.config.digest, ...sigDoc.layers.map((l) => l.digest)]) await raw.pushBlob(target, await raw.getBlob(repoName, d));
      await raw.pushManifest(target, cosignTag(pushed.digest, 'sig'), sig.bytes, sig.mediaType);
      const moved = await verifier.verify({ repo: { registry: registry.host, repository: target }, digest: pushed.digest }, await policy({ authorities: [{ keys: [pem] }] }));
      expect(moved.passed).toBe(true);
    });
  });

  describe('when a .sig made for another digest is put at this digest’s tag', () => {
    it('rejects it as a digest mismatch', async () => {
      const { repo, repoName, pushed } = await image();
      const other = await fixtures.pushImage(repoName, { layers: [await randomLayer(256, `other-${seq}`)], tag: 'other' });
      const { key, pem } = await newKey();
      await signer.sign({ repo, digest: other.digest }, key);
      const sig = await raw.findManifest(repoName, cosignTag(other.digest, 'sig'));
      if (sig === undefined) throw new Error('no .sig');
      await raw.pushManifest(repoName, cosignTag(pushed.digest, 'sig'), sig.bytes, sig.mediaType);
      expect(await verifier.verify({ repo, digest: pushed.digest }, await policy({ authorities: [{ keys: [pem] }] }))).toMatchObject({ passed: false, reasons: ['digest mismatch'] });
    });
  });

  describe('when signatures come from the independent fixture signer', () => {
    it('verifies legacy layers, and our signer sees its signature as a duplicate (same dedupe rule)', async () => {
      const { repo, repoName, pushed } = await image();
      const k = generateSigningKey();
      await signLegacy(raw, repoName, pushed.digest, k, { annotations: { team: 'a&b' } });
      const p = await policy({ authorities: [{ keys: [k.publicKeyPem] }], annotations: { team: 'a&b' } });
      expect((await verifier.verify({ repo, digest: pushed.digest }, p)).passed).toBe(true);
      const ours = parsePrivateKey(k.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, '', 'fixture.key');
      expect((await signer.sign({ repo, digest: pushed.digest }, ours, { annotations: { team: 'a&b' } })).written).toBe(false);
    });

    it('verifies a required .att attestation', async () => {
      const { repo, repoName, pushed } = await image();
      const k = generateSigningKey();
      await signLegacy(raw, repoName, pushed.digest, k);
      await attestLegacy(raw, repoName, pushed.digest, k, 'https://slsa.dev/provenance/v1', { builder: { id: 'ci' } });
      const p = await policy({ authorities: [{ keys: [k.publicKeyPem] }], attestations: [{ predicateType: 'https://slsa.dev/provenance/v1' }] });
      expect(await verifier.verify({ repo, digest: pushed.digest }, p)).toMatchObject({ passed: true });
      const other = await policy({ authorities: [{ keys: [k.publicKeyPem] }], attestations: [{ predicateType: 'https://spdx.dev/Document' }] });
      expect(await verifier.verify({ repo, digest: pushed.digest }, other)).toMatchObject({ passed: false, reasons: ['attestation missing'] });
    });
  });

  describe('when signatures are sigstore bundles (cosign v3)', () => {
    it('finds ours through the sha256-<hex> fallback index and checks subject annotations', async () => {
      const { repo, repoName, pushed } = await image();
      const { key, pem } = await newKey();
      const r = await signer.sign({ repo, digest: pushed.digest }, key, { newBundleFormat: true, annotations: { 'e2e-tests-passed': 'True' } });
      const index = await raw.findManifest(repoName, referrersTag(pushed.digest));
      expect(JSON.parse(index?.bytes.toString() ?? '{}')).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ digest: r.manifestDigest }] });
      expect(await raw.findManifest(repoName, cosignTag(pushed.digest, 'sig'))).toBeUndefined();
      const p = await policy({ authorities: [{ keys: [pem] }], annotations: { 'e2e-tests-passed': 'True' } });
      const result = await verifier.verify({ repo, digest: pushed.digest }, p);
      expect(result).toMatchObject({ passed: true });
      expect(result.signatures).toMatchObject([{ format: 'bundle', source: r.manifestDigest, passed: true }]);
    });

    it('verifies a bundle attached by the independent fixture code', async () => {
      const { repo, repoName, pushed } = await image();
      const k = generateSigningKey();
      await attachSigstoreBundleReferrer(raw, repoName, pushed.digest, keySignedSigstoreBundle(pushed.digest, k, { annotations: { env: 'prod' } }));
      const p = await policy({ authorities: [{ keys: [k.publicKeyPem] }], annotations: { env: 'prod' } });
      expect((await verifier.verify({ repo, digest: pushed.digest }, p)).passed).toBe(true);
    });

    it('fails clearly when the fallback index lists a deleted manifest', async () => {
      const { repo, repoName, pushed } = await image();
      const { key, pem } = await newKey();
      const r = await signer.sign({ repo, digest: pushed.digest }, key, { newBundleFormat: true });
      await raw.deleteManifest(repoName, r.manifestDigest);
      const result = await verifier.verify({ repo, digest: pushed.digest }, await policy({ authorities: [{ keys: [pem] }] }));
      expect(result).toMatchObject({ passed: false, reasons: ['signature invalid'] });
      expect(result.signatures[0]?.detail).toContain('not found');
    });
  });
});
