import { sign } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { PromoteError } from '../../../src/errors.js';
import { createLogger, silentLogger } from '../../../src/log.js';
import { ImageSigner, loadPolicy, parsePublicKey, SignatureVerifier, type SigningKey } from '../../../src/cosign/index.js';
import { signatureConfigBytes } from '../../../src/cosign/signature-image.js';
import { serializeImageManifest, type Descriptor } from '../../../src/oci/index.js';
import { generateSigningKey, keySignedSigstoreBundle } from '../../support/cosign-fixtures.js';
import { FIXTURE_DIR, fixture, sigstoreJsonLayer } from './fixture-files.js';
import { MemoryRegistry } from './memory-registry.js';
import { OCI_MANIFEST, SIG, digestOf, newKey, plantAttestation, policyFor, repo } from './verifier-support.js';

const SIMPLE = 'application/vnd.dev.cosign.simplesigning.v1+json';



/** Writes a `.sig` image with these raw layers (payload blobs planted as given). */
function plantSigImage(reg: MemoryRegistry, at: typeof repo, digest: string, layers: { payload: Buffer; annotations: Record<string, string>; size?: number; mediaType?: string }[]): void {
  const descs = layers.map((l) => {
    const d = digestOf(l.payload);
    reg.plantBlob(at, d, l.payload);
    return { mediaType: l.mediaType ?? SIMPLE, size: l.size ?? l.payload.length, digest: d, annotations: l.annotations };
  });
  const config = signatureConfigBytes(descs.map((d) => d.digest));
  reg.plantBlob(at, digestOf(config), config);
  const m = serializeImageManifest({ mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: digestOf(config) }, layers: descs });
  reg.plantManifest(at, OCI_MANIFEST, m, `sha256-${digest.slice(7)}.sig`);
}

/**
 * A memory registry whose blob reads can be held (to stall a verification or count reads in flight), whose
 * reads can fail one reference at a time, and whose blob bytes can be swapped after the digest check.
 */
class GatedRegistry extends MemoryRegistry {
  gate: ((signal: AbortSignal | undefined) => Promise<void>) | undefined;
  /** Fails `findManifest` for this tag or digest. */
  failManifest: { ref: string; error: PromoteError } | undefined;
  failReferrers: PromoteError | undefined;
  /** Returns these bytes instead of the stored blob, as a client that skipped its digest check would. */
  swapBlob: Buffer | undefined;
  override async readBlob(repo: Parameters<MemoryRegistry['readBlob']>[0], digest: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    if (this.gate !== undefined) await this.gate(signal);
    const b = await super.readBlob(repo, digest, maxBytes);
    return this.swapBlob ?? b;
  }
  override async findManifest(ref: Parameters<MemoryRegistry['findManifest']>[0]): ReturnType<MemoryRegistry['findManifest']> {
    if (this.failManifest !== undefined && (ref.tag ?? ref.digest) === this.failManifest.ref) throw this.failManifest.error;
    return super.findManifest(ref);
  }
  override async listReferrers(repo: Parameters<MemoryRegistry['listReferrers']>[0], digest: string): Promise<Descriptor[]> {
    if (this.failReferrers !== undefined) throw this.failReferrers;
    return super.listReferrers(repo, digest);
  }
}

function payloadFor(digest: string, optional: string = 'null'): Buffer {
  return Buffer.from(`{"critical":{"identity":{"docker-reference":"registry.example.com/team/app"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":${optional}}`);
}

describe('SignatureVerifier', () => {
  let reg: GatedRegistry;
  let verifier: SignatureVerifier;
  let signer: ImageSigner;
  let image: string;

  beforeEach(() => {
    reg = new GatedRegistry();
    verifier = new SignatureVerifier({ registry: reg, log: silentLogger() });
    signer = new ImageSigner({ registry: reg, log: silentLogger() });
    image = reg.plantManifest(repo, OCI_MANIFEST, Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'));
  });

  describe('when nothing signed the digest', () => {
    it('fails with "no signatures found"', async () => {
      const { pem } = newKey();
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r).toMatchObject({ digest: image, passed: false, authoritiesPassed: [], signatures: [], reasons: ['no signatures found'] });
    });
  });

  describe('when the .sig image is the real fixture #4 over manifest #5', () => {
    it('passes with key #1 and ignored tlog, also after the repository is copied elsewhere', async () => {
      const layer = sigstoreJsonLayer('ci-dir-img-cosign-valid.signature-1');
      const m = fixture('ci-dir-img-cosign-valid.manifest.json');
      const signed = reg.plantManifest(repo, 'application/vnd.docker.distribution.manifest.v2+json', m);
      plantSigImage(reg, repo, signed, [{ payload: layer.payload, annotations: layer.annotations }]);
      const p = await policyFor({ authorities: [{ name: 'ci', keys: ['ci-cosign.pub'], tlog: 'ignore' }] });
      const r = await verifier.verify({ repo, digest: signed }, p);
      expect(r.passed).toBe(true);
      expect(r.authoritiesPassed).toEqual(['ci']);
      expect(r.signatures[0]).toMatchObject({ format: 'legacy', source: `sha256-${signed.slice(7)}.sig[0]`, passed: true, authorities: ['ci'] });

      const prod = { registry: 'prod.example.com', repository: 'releases/app' };
      reg.copyRepository(repo, prod);
      expect((await verifier.verify({ repo: prod, digest: signed }, p)).passed).toBe(true);
    });
  });

  describe('when the input is hostile', () => {
    it('refuses a .sig image with 1001 layers without reading any', async () => {
      const { pem } = newKey();
      const layers = Array.from({ length: 1001 }, (_, i) => ({ payload: Buffer.from(`p${i}`), annotations: { [SIG]: 'AAAA' } }));
      plantSigImage(reg, repo, image, layers);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.passed).toBe(false);
      expect(r.reasons).toEqual(['signature invalid']);
      expect(r.signatures).toHaveLength(1);
      expect(r.signatures[0]?.detail).toMatch(/1001 layers/);
      expect(r.signatures[0]?.limit).toBe('SIG_TOO_MANY_LAYERS');
      expect(reg.blobReads).toEqual([]);
    });

    it('refuses a 200 MiB payload claim before downloading it', async () => {
      const { key, pem } = newKey();
      const payload = payloadFor(image);
      plantSigImage(reg, repo, image, [{ payload, annotations: { [SIG]: sign('sha256', payload, key.privateKey).toString('base64') }, size: 200 * 1024 * 1024 }]);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.passed).toBe(false);
      expect(r.signatures[0]?.detail).toBe('[SIG_PAYLOAD_TOO_LARGE] payload of 209715200 bytes exceeds the limit of 134217728; not downloaded');
      expect(r.signatures[0]?.limit).toBe('SIG_PAYLOAD_TOO_LARGE');
      expect(reg.blobReads).toEqual([]);
    });

    it('fails a signature annotation that is not base64', async () => {
      const { pem } = newKey();
      plantSigImage(reg, repo, image, [{ payload: payloadFor(image), annotations: { [SIG]: 'MEUC*not-base64*' } }]);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.signatures[0]).toMatchObject({ passed: false, reason: 'signature invalid', detail: expect.stringContaining('not valid base64') });
    });

    it('decodes a signature annotation with line breaks', async () => {
      const { key, pem } = newKey();
      const payload = payloadFor(image);
      const b64 = sign('sha256', payload, key.privateKey).toString('base64').replace(/(.{20})/g, '$1\n');
      plantSigImage(reg, repo, image, [{ payload, annotations: { [SIG]: b64 } }]);
      expect((await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }))).passed).toBe(true);
    });

    it('fails a validly signed payload with duplicate JSON keys', async () => {
      const { key, pem } = newKey();
      // JSON.parse would keep the second digest; Go readers may differ. Signed by a trusted key, still refused.
      const payload = Buffer.from(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"sha256:${'0'.repeat(64)}","docker-manifest-digest":"${image}"},"type":"cosign container image signature"},"optional":null}`);
      plantSigImage(reg, repo, image, [{ payload, annotations: { [SIG]: sign('sha256', payload, key.privateKey).toString('base64') } }]);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.passed).toBe(false);
      expect(r.signatures[0]).toMatchObject({ reason: 'signature invalid', detail: expect.stringContaining('duplicate key') });
    });

    it('fails a layer whose blob does not match its digest', async () => {
      const { key, pem } = newKey();
      const payload = payloadFor(image);
      plantSigImage(reg, repo, image, [{ payload, annotations: { [SIG]: sign('sha256', payload, key.privateKey).toString('base64') } }]);
      reg.plantBlob(repo, digestOf(payload), Buffer.from(payload.toString().replace('team', 'evil')));
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.signatures[0]).toMatchObject({ passed: false, reason: 'signature invalid', detail: expect.stringContaining('unreadable') });
    });

    it('fails a referrer index pointing at missing manifests, without throwing', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key, { newBundleFormat: true });
      const index = JSON.parse((await reg.getManifest({ ...repo, tag: `sha256-${image.slice(7)}` })).bytes.toString()) as { manifests: { digest: string }[] };
      for (const m of index.manifests) reg.deleteManifest(repo, m.digest);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.passed).toBe(false);
      expect(r.reasons).toEqual(['signature invalid']);
      expect(r.signatures[0]?.detail).toMatch(/listed but not found/);
    });

    it('fails a fallback tag that is not JSON as a result, not an exception', async () => {
      const { pem } = newKey();
      reg.plantManifest(repo, 'application/vnd.oci.image.index.v1+json', Buffer.from('not json'), `sha256-${image.slice(7)}`);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r).toMatchObject({ passed: false, reasons: ['signature invalid'] });
      expect(r.signatures).toEqual([{ format: 'bundle', source: `referrers of ${image}`, passed: false, authorities: [], reason: 'signature invalid', detail: 'referrer list unreadable: fallback index is not JSON' }]);
    });

    it('skips referrers that are not sigstore bundles', async () => {
      const { pem } = newKey();
      const sbom = reg.plantManifest(repo, OCI_MANIFEST, Buffer.from('{"schemaVersion":2,"artifactType":"application/spdx+json","config":{},"layers":[]}'));
      reg.plantManifest(repo, 'application/vnd.oci.image.index.v1+json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: sbom, size: 10 }] })), `sha256-${image.slice(7)}`);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r).toMatchObject({ passed: false, signatures: [], reasons: ['no signatures found'] });
    });
  });

  describe('when a hostile artifact asks for unbounded work', () => {
    const IN_TOTO = 'application/vnd.in-toto+json';
    const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

    /** A referrer holding `bundle` (its descriptor may claim another `size`) and the fallback index naming it. */
    function plantBundle(bundle: Buffer, size = bundle.length): void {
      const d = digestOf(bundle);
      reg.plantBlob(repo, d, bundle);
      const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: BUNDLE_TYPE, config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: digestOf(Buffer.from('{}')) }, layers: [{ mediaType: BUNDLE_TYPE, size, digest: d }], subject: { mediaType: OCI_MANIFEST, size: 10, digest: image } }));
      const md = reg.plantManifest(repo, OCI_MANIFEST, m);
      reg.plantManifest(repo, 'application/vnd.oci.image.index.v1+json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: md, size: m.length, artifactType: BUNDLE_TYPE }] })), `sha256-${image.slice(7)}`);
    }

    function statementFor(digest: string, predicateType = 'https://sigstore.dev/cosign/sign/v1'): Buffer {
      return Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: digest.slice(7) } }], predicateType, predicate: {} }));
    }

    function dsseSig(key: SigningKey, body: Buffer): string {
      return sign('sha256', Buffer.concat([Buffer.from(`DSSEv1 ${IN_TOTO.length} ${IN_TOTO} ${body.length} `), body]), key.privateKey).toString('base64');
    }

    it('refuses a sigstore bundle with 33 tlog entries before the library sees it', async () => {
      const { key, pem } = newKey();
      const body = statementFor(image);
      const entry = { logIndex: '1', logId: { keyId: 'AAAA' }, kindVersion: { kind: 'dsse', version: '0.0.1' }, integratedTime: '1', inclusionPromise: { signedEntryTimestamp: 'AAAA' }, canonicalizedBody: 'AAAA' };
      plantBundle(Buffer.from(JSON.stringify({ mediaType: BUNDLE_TYPE, verificationMaterial: { publicKey: { hint: '' }, tlogEntries: Array.from({ length: 33 }, () => entry) }, dsseEnvelope: { payload: body.toString('base64'), payloadType: IN_TOTO, signatures: [{ keyid: '', sig: dsseSig(key, body) }] } })));
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem], rekorKeys: ['ci-rekor.pub'] }] }));
      expect(r).toMatchObject({ passed: false, reasons: ['signature invalid'] });
      expect(r.signatures[0]).toMatchObject({ limit: 'SIG_TOO_MANY_TLOG_ENTRIES', detail: expect.stringContaining('33 transparency-log entries') });
    });

    it('refuses a sigstore bundle over 10 MiB before downloading it', async () => {
      const { pem } = newKey();
      plantBundle(Buffer.from('{}'), 11 * 1024 * 1024);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.signatures[0]).toMatchObject({ passed: false, limit: 'SIG_BUNDLE_TOO_LARGE' });
      expect(reg.blobReads).toEqual([]);
    });

    it('rejects a .att layer with 20 000 DSSE signatures in well under a second of CPU', async () => {
      const keys = [newKey(), newKey(), newKey()];
      const stranger = newKey();
      const body = statementFor(image, 'https://slsa.dev/provenance/v1');
      const sig = dsseSig(stranger.key, body);
      const env = Buffer.from(JSON.stringify({ payloadType: IN_TOTO, payload: body.toString('base64'), signatures: Array.from({ length: 20_000 }, () => ({ keyid: '', sig })) }));
      const d = digestOf(env);
      reg.plantBlob(repo, d, env);
      const config = signatureConfigBytes([d]);
      reg.plantBlob(repo, digestOf(config), config);
      reg.plantManifest(repo, OCI_MANIFEST, serializeImageManifest({ mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: digestOf(config) }, layers: [{ mediaType: 'application/vnd.dsse.envelope.v1+json', size: env.length, digest: d, annotations: { [SIG]: '' } }] }), `sha256-${image.slice(7)}.att`);
      const policy = await policyFor({ authorities: keys.map((k, i) => ({ name: `k${i}`, keys: [k.pem] })), attestations: [{ predicateType: 'https://slsa.dev/provenance/v1' }] });
      const before = process.cpuUsage();
      const r = await verifier.verify({ repo, digest: image }, policy);
      const cpu = process.cpuUsage(before);
      expect(r.signatures.find((c) => c.format === 'legacy-attestation')).toMatchObject({ passed: false, limit: 'SIG_TOO_MANY_DSSE_SIGNATURES' });
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(300);
    });

    it('throws REGISTRY_TIMEOUT [SIG_DEADLINE_EXCEEDED] when one artifact takes longer than its deadline', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      reg.gate = (signal) => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
      const slow = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { deadlineMs: 100 } });
      const timedOut = { code: 'REGISTRY_TIMEOUT', message: expect.stringContaining('[SIG_DEADLINE_EXCEEDED]'), cause: expect.anything() };
      await expect(slow.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }))).rejects.toMatchObject(timedOut);
      // Also when the caller passed a signal of its own that is still live.
      await expect(slow.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }), new AbortController().signal)).rejects.toMatchObject(timedOut);
    });

    it('runs signature checks of parallel verifications through one bounded pool', async () => {
      const { key, pem } = newKey();
      for (const a of ['1', '2', '3', '4', '5', '6']) await signer.sign({ repo, digest: image }, key, { annotations: { a } });
      let inFlight = 0;
      let most = 0;
      reg.gate = async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
      };
      const pooled = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { concurrency: 2 } });
      const policy = await policyFor({ authorities: [{ keys: [pem] }] });
      const results = await Promise.all([1, 2, 3].map(() => pooled.verify({ repo, digest: image }, policy)));
      expect(results.every((r) => r.passed)).toBe(true);
      expect(most).toBe(2);
    });
  });

  describe('when a .sig image was copied from another digest', () => {
    it('rejects it as a digest mismatch', async () => {
      const { key, pem } = newKey();
      const other = reg.plantManifest(repo, OCI_MANIFEST, Buffer.from('{"other":true}'));
      await signer.sign({ repo, digest: other }, key);
      const sigOfOther = await reg.getManifest({ ...repo, tag: `sha256-${other.slice(7)}.sig` });
      reg.plantManifest(repo, OCI_MANIFEST, sigOfOther.bytes, `sha256-${image.slice(7)}.sig`);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r).toMatchObject({ passed: false, reasons: ['digest mismatch'] });
    });
  });

  describe('at the reader limits', () => {
    // Exactly the limit is read; one more is refused as a whole (the comparisons are strict).
    it('reads a .sig image with exactly maxLayers layers, and refuses one more', async () => {
      const { key, pem } = newKey();
      const policy = await policyFor({ authorities: [{ keys: [pem] }] });
      const limited = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { maxLayers: 2 } });
      await signer.sign({ repo, digest: image }, key);
      await signer.sign({ repo, digest: image }, key, { annotations: { run: '2' } });
      expect(await limited.verify({ repo, digest: image }, policy)).toMatchObject({ passed: true });
      await signer.sign({ repo, digest: image }, key, { annotations: { run: '3' } });
      const r = await limited.verify({ repo, digest: image }, policy);
      expect(r.passed).toBe(false);
      expect(r.signatures[0]).toMatchObject({ limit: 'SIG_TOO_MANY_LAYERS', detail: '[SIG_TOO_MANY_LAYERS] signature image has 3 layers; more than 2 are refused' });
    });

    it('reads a payload of exactly maxPayloadBytes, and refuses one byte less of limit', async () => {
      const { key, pem } = newKey();
      const policy = await policyFor({ authorities: [{ keys: [pem] }] });
      await signer.sign({ repo, digest: image }, key);
      const sig = JSON.parse((await reg.getManifest({ ...repo, tag: `sha256-${image.slice(7)}.sig` })).bytes.toString()) as { layers: { size: number }[] };
      const size = sig.layers[0]?.size ?? 0;
      const exact = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { maxPayloadBytes: size } });
      expect(await exact.verify({ repo, digest: image }, policy)).toMatchObject({ passed: true });
      const under = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { maxPayloadBytes: size - 1 } });
      const r = await under.verify({ repo, digest: image }, policy);
      expect(r.signatures[0]).toMatchObject({ passed: false, limit: 'SIG_PAYLOAD_TOO_LARGE' });
    });

    it('examines exactly maxReferrers bundles, and refuses the lot when there is one more', async () => {
      const a = newKey();
      const b = newKey();
      const policy = await policyFor({ authorities: [{ keys: [a.pem] }] });
      await signer.sign({ repo, digest: image }, a.key, { newBundleFormat: true });
      await signer.sign({ repo, digest: image }, b.key, { newBundleFormat: true });
      const two = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { maxReferrers: 2 } });
      expect(await two.verify({ repo, digest: image }, policy)).toMatchObject({ passed: true });
      const one = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { maxReferrers: 1 } });
      const r = await one.verify({ repo, digest: image }, policy);
      expect(r.passed).toBe(false);
      expect(r.signatures).toEqual([expect.objectContaining({ limit: 'SIG_TOO_MANY_REFERRERS', detail: '[SIG_TOO_MANY_REFERRERS] 2 referrers exceed the limit of 1; none were read' })]);
    });
  });

  describe('when the policy has per-image rules (scope: all)', () => {
    const rules = (release: string, build: string, match: string) =>
      loadPolicy(
        {
          scope: 'all',
          bundle: { authorities: [{ name: 'release', keys: [release], tlog: 'ignore' }] },
          images: [{ match, authorities: [{ name: 'build', keys: [build], tlog: 'ignore' }] }],
        },
        { baseDir: FIXTURE_DIR },
      );

    it('verifies an image with the rule its repository matches, and the bundle with the bundle rules', async () => {
      const release = newKey();
      const build = newKey();
      const policy = await rules(release.pem, build.pem, 'registry.example.com/team/*');
      await signer.sign({ repo, digest: image }, build.key);
      expect(await verifier.verify({ repo, digest: image, kind: 'image' }, policy)).toMatchObject({ passed: true, authoritiesPassed: ['build'] });
      expect(await verifier.verify({ repo, digest: image, kind: 'bundle' }, policy)).toMatchObject({ passed: false, authoritiesPassed: [] });
    });

    it('fails closed, as an untrusted identity, for an image no rule names', async () => {
      const release = newKey();
      const build = newKey();
      const policy = await rules(release.pem, build.pem, 'other.example.com/**');
      await signer.sign({ repo, digest: image }, build.key);
      await signer.sign({ repo, digest: image }, release.key, { newBundleFormat: true });
      const r = await verifier.verify({ repo, digest: image, kind: 'image' }, policy);
      expect(r).toMatchObject({ digest: image, passed: false, authoritiesPassed: [], signersCounted: 0, reasons: ['untrusted identity'] });
      expect(r.signatures).toEqual([
        expect.objectContaining({ passed: false, reason: 'untrusted identity', detail: 'no images[] rule of the policy matches registry.example.com/team/app (rules: other.example.com/**)' }),
      ]);
    });
  });

  describe('when several authorities must agree', () => {
    it('passes threshold 2 only when two distinct authorities signed', async () => {
      const a = newKey();
      const b = newKey();
      const policy = await policyFor({ authorities: [{ name: 'a', keys: [a.pem] }, { name: 'b', keys: [b.pem] }], threshold: 2 });
      await signer.sign({ repo, digest: image }, a.key);
      const one = await verifier.verify({ repo, digest: image }, policy);
      expect(one).toMatchObject({ passed: false, authoritiesPassed: ['a'], reasons: ['no signatures found'] });
      await signer.sign({ repo, digest: image }, b.key, { newBundleFormat: true });
      const two = await verifier.verify({ repo, digest: image }, policy);
      expect(two).toMatchObject({ passed: true, authoritiesPassed: ['a', 'b'], reasons: [] });
      expect(two.signatures.map((s) => s.format).sort()).toEqual(['bundle', 'legacy']);
    });

    it('when two authorities list the same key, one signature does not satisfy threshold 2', async () => {
      const a = newKey();
      const policy = await policyFor({ authorities: [{ name: 'build', keys: [a.pem] }, { name: 'qa', keys: [a.pem] }], threshold: 2 });
      await signer.sign({ repo, digest: image }, a.key);
      await signer.sign({ repo, digest: image }, a.key, { newBundleFormat: true });
      const r = await verifier.verify({ repo, digest: image }, policy);
      expect(r).toMatchObject({ passed: false, authoritiesPassed: ['build', 'qa'], signersCounted: 1 });
      expect(new Set(r.signatures.map((s) => s.signer))).toEqual(new Set([`key:${parsePublicKey(a.pem, 'a').keyId}`]));
    });

    it('when distinct signers can each be matched to their own authority, counts both', async () => {
      const a = newKey();
      const b = newKey();
      // build trusts a or b, qa trusts b only: a → build, b → qa.
      const policy = await policyFor({ authorities: [{ name: 'build', keys: [b.pem, a.pem] }, { name: 'qa', keys: [b.pem] }], threshold: 2 });
      await signer.sign({ repo, digest: image }, b.key);
      expect(await verifier.verify({ repo, digest: image }, policy)).toMatchObject({ passed: false, signersCounted: 1 });
      await signer.sign({ repo, digest: image }, a.key);
      expect(await verifier.verify({ repo, digest: image }, policy)).toMatchObject({ passed: true, signersCounted: 2 });
    });

    it('counts one authority once even with many signatures', async () => {
      const a = newKey();
      const b = newKey();
      await signer.sign({ repo, digest: image }, a.key, { annotations: { x: '1' } });
      await signer.sign({ repo, digest: image }, a.key, { annotations: { x: '2' } });
      const policy = await policyFor({ authorities: [{ name: 'a', keys: [a.pem] }, { name: 'b', keys: [b.pem] }], threshold: 2 });
      const r = await verifier.verify({ repo, digest: image }, policy);
      expect(r).toMatchObject({ passed: false, authoritiesPassed: ['a'] });
    });
  });

  describe('when annotations are required', () => {
    it('passes when any one signature carries them and reports the others', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      const before = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }], annotations: { 'e2e-tests-passed': 'True' } }));
      expect(before).toMatchObject({ passed: false, reasons: ['missing or incorrect annotation'] });
      await signer.sign({ repo, digest: image }, key, { annotations: { 'e2e-tests-passed': 'True', build: '42' } });
      const after = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }], annotations: { 'e2e-tests-passed': 'True' } }));
      expect(after.passed).toBe(true);
      expect(after.signatures.map((s) => s.passed)).toEqual([false, true]);
    });
  });

  describe('when an attestation is required', () => {
    const predicateType = 'https://slsa.dev/provenance/v1';


    it('passes with a verified .att of that predicate type', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      plantAttestation(reg, key, { attachedTo: image, predicateType });
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }], attestations: [{ predicateType }] }));
      expect(r.passed).toBe(true);
      expect(r.signatures.find((s) => s.format === 'legacy-attestation')).toMatchObject({ passed: true, predicateType });
    });

    it('fails with "attestation missing" when the attestation names another digest', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      plantAttestation(reg, key, { attachedTo: image, statementSubjectHex: 'f'.repeat(64), predicateType });
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }], attestations: [{ predicateType }] }));
      expect(r).toMatchObject({ passed: false, reasons: ['attestation missing'], attestationsMissing: [predicateType] });
      expect(r.signatures.find((s) => s.format === 'legacy-attestation')?.reason).toBe('digest mismatch');
    });

    it('fails with "attestation missing" when there is none', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }], attestations: [{ predicateType }] }));
      expect(r.reasons).toEqual(['attestation missing']);
    });
  });

  describe('when signature objects are malformed, each fails alone, saying what is wrong', () => {
    const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
    const INDEX = 'application/vnd.oci.image.index.v1+json';
    const sigTag = () => `sha256-${image.slice(7)}.sig`;
    /** A `.sig` manifest with these raw layer descriptors. */
    const plantSigLayers = (layers: unknown): void => {
      reg.plantManifest(repo, OCI_MANIFEST, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers })), sigTag());
    };
    /** A referrer manifest (raw bytes or JSON) listed in the fallback index; returns its digest. */
    const plantReferrer = (manifest: unknown, artifactType: string | undefined = BUNDLE_TYPE): string => {
      const d = reg.plantManifest(repo, OCI_MANIFEST, Buffer.isBuffer(manifest) ? manifest : Buffer.from(JSON.stringify(manifest)));
      reg.plantManifest(repo, INDEX, Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: d, size: 1, ...(artifactType === undefined ? {} : { artifactType }) }] })), `sha256-${image.slice(7)}`);
      return d;
    };
    const verifyWithNewKey = async () => verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [newKey().pem] }] }));
    const d = `sha256:${'a'.repeat(64)}`;

    it.each([
      ['a media type that is not a string', { mediaType: 1, digest: d, size: 1 }],
      ['a digest that is not a string', { mediaType: SIMPLE, digest: 1, size: 1 }],
      ['a digest that is not sha256', { mediaType: SIMPLE, digest: `sha512:${'a'.repeat(128)}`, size: 1 }],
      ['a fractional size', { mediaType: SIMPLE, digest: d, size: 1.5 }],
      ['a negative size', { mediaType: SIMPLE, digest: d, size: -1 }],
      ['annotations that are not a map', { mediaType: SIMPLE, digest: d, size: 1, annotations: 'x' }],
      ['an annotation that is not a string', { mediaType: SIMPLE, digest: d, size: 1, annotations: { a: 'x', b: 1 } }],
    ])('a .sig layer descriptor with %s, before reading anything', async (_what, descriptor) => {
      plantSigLayers([descriptor]);
      const r = await verifyWithNewKey();
      expect(r.signatures).toStrictEqual([{ format: 'legacy', source: `${sigTag()}[0]`, passed: false, authorities: [], reason: 'signature invalid', detail: 'layer descriptor is malformed' }]);
      expect(reg.blobReads).toEqual([]);
    });

    it('an empty .sig layer is read, and fails for its missing signature', async () => {
      const empty = Buffer.alloc(0);
      reg.plantBlob(repo, digestOf(empty), empty);
      plantSigLayers([{ mediaType: SIMPLE, digest: digestOf(empty), size: 0 }]);
      expect((await verifyWithNewKey()).signatures[0]).toMatchObject({ detail: 'layer has no dev.cosignproject.cosign/signature annotation', blobDigest: digestOf(empty) });
    });

    it('a .sig layer of another media type, naming its blob', async () => {
      plantSigLayers([{ mediaType: 'text/plain', digest: d, size: 1 }]);
      const c = (await verifyWithNewKey()).signatures[0];
      expect(c).toMatchObject({ passed: false, detail: `layer media type text/plain is not ${SIMPLE}`, blobDigest: d });
      expect(c).not.toHaveProperty('limit');
    });

    it('a payload whose size or bytes differ from its descriptor', async () => {
      const payload = payloadFor(image);
      plantSigImage(reg, repo, image, [{ payload, annotations: { [SIG]: 'AAAA' }, size: payload.length + 1 }]);
      expect((await verifyWithNewKey()).signatures[0]?.detail).toBe(`payload bytes do not match ${digestOf(payload)}`);
      // A shorter descriptor caps the read: the registry refuses the longer blob.
      plantSigImage(reg, repo, image, [{ payload, annotations: { [SIG]: 'AAAA' }, size: payload.length - 1 }]);
      expect((await verifyWithNewKey()).signatures[0]?.detail).toMatch(new RegExp(`^payload ${digestOf(payload)} unreadable: `));
    });

    it('a registry client that returns other bytes of the same length', async () => {
      const payload = payloadFor(image);
      plantSigImage(reg, repo, image, [{ payload, annotations: { [SIG]: 'AAAA' } }]);
      reg.swapBlob = Buffer.from(payload.toString().replace('team', 'evil'));
      expect((await verifyWithNewKey()).signatures[0]?.detail).toBe(`payload bytes do not match ${digestOf(payload)}`);
    });

    it('a .sig image or a referrer manifest the registry cannot serve (content, not outage)', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      reg.failManifest = { ref: sigTag(), error: new PromoteError('MANIFEST_TOO_LARGE', 'too big') };
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.signatures).toEqual([{ format: 'legacy', source: sigTag(), passed: false, authorities: [], reason: 'signature invalid', detail: 'signature image unreadable: too big' }]);
      const referrer = plantReferrer({ artifactType: BUNDLE_TYPE, layers: [] });
      reg.failManifest = { ref: referrer, error: new PromoteError('MANIFEST_INVALID', 'bad') };
      expect((await verifyWithNewKey()).signatures[0]).toMatchObject({ format: 'bundle', source: referrer, passed: false, reason: 'signature invalid', detail: 'referrer manifest unreadable: bad' });
    });

    it('throws an outage while listing referrers or reading a referrer or a .sig image, instead of failing a signature', async () => {
      const outage = new PromoteError('REGISTRY_UNAVAILABLE', 'connection reset');
      reg.failReferrers = outage;
      await expect(verifyWithNewKey()).rejects.toBe(outage);
      reg.failReferrers = undefined;
      reg.failManifest = { ref: sigTag(), error: outage };
      await expect(verifyWithNewKey()).rejects.toBe(outage);
      reg.failManifest = { ref: plantReferrer({ artifactType: BUNDLE_TYPE, layers: [] }), error: outage };
      await expect(verifyWithNewKey()).rejects.toBe(outage);
    });

    it('skips a referrer manifest that says nowhere what it is', async () => {
      plantReferrer({ config: {}, layers: [{ mediaType: BUNDLE_TYPE, digest: d, size: 1 }] });
      expect(await verifyWithNewKey()).toMatchObject({ signatures: [], reasons: ['no signatures found'] });
    });

    it.each([
      ['not JSON', Buffer.from('{'), /^referrer manifest is not valid JSON \(.+\)$/],
      ['JSON but not an object', Buffer.from('[]'), /^referrer manifest is not valid JSON$/],
      ['two bundle layers (typed by its config)', { config: { mediaType: BUNDLE_TYPE }, layers: [{ mediaType: BUNDLE_TYPE, digest: d, size: 1 }, { mediaType: BUNDLE_TYPE, digest: d, size: 1 }] }, /^referrer has 2 bundle layers, expected exactly one$/],
      ['no bundle layer among others', { artifactType: BUNDLE_TYPE, layers: [42, { mediaType: 7 }, { mediaType: 'text/plain', digest: d, size: 1 }] }, /^referrer has 0 bundle layers, expected exactly one$/],
      ['a layer list that is not a list', { artifactType: BUNDLE_TYPE, layers: { 0: { mediaType: BUNDLE_TYPE, digest: d, size: 1 } } }, /^referrer has 0 bundle layers, expected exactly one$/],
      ['a malformed bundle layer descriptor', { artifactType: BUNDLE_TYPE, layers: [{ mediaType: BUNDLE_TYPE, digest: 'x', size: 1 }] }, /^bundle layer descriptor is malformed$/],
    ])('a referrer manifest that is %s', async (_what, manifest, detail) => {
      const referrer = plantReferrer(manifest, undefined);
      const r = await verifyWithNewKey();
      expect(r.signatures).toEqual([{ format: 'bundle', source: referrer, passed: false, authorities: [], reason: 'signature invalid', detail: expect.stringMatching(detail) }]);
    });

    it('skips a referrer typed as something else by its config, and does not count it against maxReferrers', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key, { newBundleFormat: true });
      const sbom = reg.plantManifest(repo, OCI_MANIFEST, Buffer.from(JSON.stringify({ config: { mediaType: 'application/spdx+json' }, layers: [] })));
      await reg.indexReferrers(repo, image, [{ mediaType: OCI_MANIFEST, digest: sbom, size: 1 }, { mediaType: OCI_MANIFEST, digest: d, size: 1, artifactType: 'application/spdx+json' }]);
      const one = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { maxReferrers: 2 } });
      const r = await one.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r).toMatchObject({ passed: true });
      expect(r.signatures.map((c) => c.format)).toEqual(['bundle']);
    });

    it('reports a bundle whose predicate is not a signature type as a bundle attestation', async () => {
      const key = generateSigningKey();
      const bundle = keySignedSigstoreBundle(image, key, { predicateType: 'https://slsa.dev/provenance/v1' });
      reg.plantBlob(repo, digestOf(bundle), bundle);
      plantReferrer({ artifactType: BUNDLE_TYPE, layers: [{ mediaType: BUNDLE_TYPE, digest: digestOf(bundle), size: bundle.length }] });
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [key.publicKeyPem] }] }));
      expect(r.signatures).toEqual([expect.objectContaining({ format: 'bundle-attestation', passed: true, predicateType: 'https://slsa.dev/provenance/v1' })]);
      expect(r).toMatchObject({ passed: false, reasons: ['no signatures found'] });
    });

    it('does not read .att images when the policy requires no attestation', async () => {
      const { key, pem } = newKey();
      plantAttestation(reg, key, { attachedTo: image, predicateType: 'https://slsa.dev/provenance/v1' });
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      expect(r.signatures).toEqual([]);
      expect(reg.blobReads).toEqual([]);
    });
  });

  describe('when cancelled while a signature blob is being read', () => {
    it('throws ABORTED instead of checking what was read', async () => {
      const { key, pem } = newKey();
      const policy = await policyFor({ authorities: [{ keys: [pem] }] });
      for (const newBundleFormat of [false, true]) {
        const fresh = reg.plantManifest(repo, OCI_MANIFEST, Buffer.from(`{"n":${String(newBundleFormat)}}`));
        await signer.sign({ repo, digest: fresh }, key, { newBundleFormat });
        const cancel = new AbortController();
        reg.gate = async () => cancel.abort();
        await expect(verifier.verify({ repo, digest: fresh }, policy, cancel.signal), String(newBundleFormat)).rejects.toMatchObject({ code: 'ABORTED' });
      }
    });
  });

  describe('when logging at debug level', () => {
    it('writes one line per verification with the component, repository, digest and outcome, and why an image has no rule', async () => {
      const { key, pem } = newKey();
      await signer.sign({ repo, digest: image }, key);
      const lines: string[] = [];
      const log = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
      const logged = new SignatureVerifier({ registry: reg, log });
      await logged.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem] }] }));
      const noRule = await loadPolicy({ scope: 'all', bundle: { authorities: [{ keys: [pem], tlog: 'ignore' }] }, images: ['other.example.com/**', 'third.example.com/*'].map((match) => ({ match, authorities: [{ keys: [pem], tlog: 'ignore' as const }] })) }, { baseDir: FIXTURE_DIR });
      await logged.verify({ repo, digest: image, kind: 'image' }, noRule);
      expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
        expect.objectContaining({ component: 'signature-verifier', msg: 'verified signatures', repository: 'registry.example.com/team/app', digest: image, passed: true, signatures: 1, reasons: [] }),
        expect.objectContaining({ component: 'signature-verifier', msg: 'no images[] rule of the policy matches registry.example.com/team/app (rules: other.example.com/**, third.example.com/*)', repository: 'registry.example.com/team/app', digest: image }),
      ]);
    });
  });

  describe('when the registry fails', () => {
    it('throws the I/O error instead of returning a result', async () => {
      const { pem } = newKey();
      const policy = await policyFor({ authorities: [{ keys: [pem] }] });
      reg.failWith = new PromoteError('REGISTRY_UNAVAILABLE', 'connection reset');
      await expect(verifier.verify({ repo, digest: image }, policy)).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    });

    it('throws ABORTED when cancelled', async () => {
      const { pem } = newKey();
      const policy = await policyFor({ authorities: [{ keys: [pem] }] });
      await expect(verifier.verify({ repo, digest: image }, policy, AbortSignal.abort())).rejects.toMatchObject({ code: 'ABORTED' });
    });

    it('refuses a digest that is not sha256', async () => {
      const { pem } = newKey();
      await expect(verifier.verify({ repo, digest: `sha512:${'a'.repeat(128)}` }, await policyFor({ authorities: [{ keys: [pem] }] }))).rejects.toMatchObject({ code: 'UNSUPPORTED_DIGEST', message: `sha512:${'a'.repeat(128)}: only sha256 digests can carry cosign signatures` });
    });
  });
});
