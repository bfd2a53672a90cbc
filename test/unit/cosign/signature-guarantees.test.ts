import { beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { ImageSigner, SignatureVerifier, type FailureReason, type SignatureCheck, type SigningKey } from '../../../src/cosign/index.js';
import { summarise } from '../../../src/cosign/signature-verifier.js';
import { MemoryRegistry } from './memory-registry.js';
import { OCI_MANIFEST, newKey, plantAttestation, policyFor, repo } from './verifier-support.js';

// Guarantees of the signature policy that a plausible bug would break (issue #11): attestations are never
// counted as signatures, and the reader limits hold.

const PREDICATE = 'https://slsa.dev/provenance/v1';




describe('signature policy guarantees', () => {
  let reg: MemoryRegistry;
  let verifier: SignatureVerifier;
  let image: string;

  beforeEach(() => {
    reg = new MemoryRegistry();
    verifier = new SignatureVerifier({ registry: reg, log: silentLogger() });
    image = reg.plantManifest(repo, OCI_MANIFEST, Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'));
  });

  describe('when an artifact carries only a verified attestation and no signature', () => {
    it('fails the signature policy with "no signatures found": an attestation is not a signature', async () => {
      const { key, pem } = newKey();
      plantAttestation(reg, key, { attachedTo: image, predicateType: PREDICATE });
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ name: 'ci', keys: [pem], tlog: 'ignore' }], attestations: [{ predicateType: PREDICATE }] }));
      // The attestation itself verified (so the failure below is about the missing signature, nothing else).
      expect(r.signatures.find((s) => s.format === 'legacy-attestation')).toMatchObject({ passed: true, predicateType: PREDICATE });
      expect(r.attestationsMissing).toBeUndefined();
      expect(r.passed).toBe(false);
      expect(r.authoritiesPassed).toEqual([]);
      expect(r.reasons).toEqual(['no signatures found']);
    });

    it('passes once a signature by the same key is added (the attestation was not what failed)', async () => {
      const { key, pem } = newKey();
      plantAttestation(reg, key, { attachedTo: image, predicateType: PREDICATE });
      await new ImageSigner({ registry: reg, log: silentLogger() }).sign({ repo, digest: image }, key);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ name: 'ci', keys: [pem], tlog: 'ignore' }], attestations: [{ predicateType: PREDICATE }] }));
      expect(r).toMatchObject({ passed: true, authoritiesPassed: ['ci'] });
    });
  });

  describe('summarise', () => {
    const attestation = (format: 'legacy-attestation' | 'bundle-attestation'): SignatureCheck => ({
      format, source: 'x', passed: true, authorities: ['ci'], predicateType: PREDICATE,
    });

    it('when every passing check is an attestation (legacy or bundle), no authority has passed', async () => {
      const { pem } = newKey();
      const policy = await policyFor({ authorities: [{ name: 'ci', keys: [pem], tlog: 'ignore' }] });
      for (const format of ['legacy-attestation', 'bundle-attestation'] as const) {
        const r = summarise(image, [attestation(format)], policy);
        expect(r, format).toMatchObject({ passed: false, authoritiesPassed: [], reasons: ['no signatures found'] });
      }
    });

    it('when a signature check passes beside them, the authority passes', async () => {
      const { pem } = newKey();
      const policy = await policyFor({ authorities: [{ name: 'ci', keys: [pem], tlog: 'ignore' }] });
      const r = summarise(image, [attestation('bundle-attestation'), { format: 'bundle', source: 'y', passed: true, authorities: ['ci'] }], policy);
      expect(r).toMatchObject({ passed: true, authoritiesPassed: ['ci'], reasons: [] });
    });
  });

  describe('summarise: the threshold counts distinct signers, each matched to its own authority', () => {
    const sig = (signer: string | undefined, authorities: string[], passed = true): SignatureCheck => ({
      format: 'legacy', source: `${signer}`, passed, authorities, ...(signer === undefined ? {} : { signer }),
    });
    const twoAuthorities = async () => {
      const a = newKey();
      const b = newKey();
      return policyFor({ authorities: [{ name: 'a', keys: [a.pem], tlog: 'ignore' }, { name: 'b', keys: [b.pem], tlog: 'ignore' }], threshold: 2 });
    };

    it('two signers that satisfy the same single authority count once', async () => {
      const r = summarise(image, [sig('key:1', ['a']), sig('key:2', ['a'])], await twoAuthorities());
      expect(r).toMatchObject({ passed: false, signersCounted: 1, authoritiesPassed: ['a'] });
    });

    it('re-matches an earlier signer to free an authority for a later one (augmenting path)', async () => {
      // key:1 could be a or b; key:2 only a. Greedy a → key:1 would count 1; the matching finds 2.
      const r = summarise(image, [sig('key:1', ['a', 'b']), sig('key:2', ['a'])], await twoAuthorities());
      expect(r).toMatchObject({ passed: true, signersCounted: 2, authoritiesPassed: ['a', 'b'], reasons: [] });
    });

    it('counts a failed check for nobody, even if it names authorities', async () => {
      const r = summarise(image, [sig('key:1', ['a']), sig('key:2', ['b'], false)], await twoAuthorities());
      expect(r).toMatchObject({ passed: false, signersCounted: 1, authoritiesPassed: ['a'] });
    });

    it('counts checks without a signer identity as distinct signers', async () => {
      const r = summarise(image, [sig(undefined, ['a']), sig(undefined, ['b'])], await twoAuthorities());
      expect(r).toMatchObject({ passed: true, signersCounted: 2 });
    });

    it('gives the failed checks\' reasons, in catalogue order, when too few signers passed', async () => {
      const failed = (reason: FailureReason): SignatureCheck => ({ format: 'bundle', source: 'f', passed: false, authorities: [], reason });
      const r = summarise(image, [failed('tlog evidence missing'), failed('digest mismatch'), failed('digest mismatch'), sig('key:1', ['a'])], await twoAuthorities());
      expect(r.reasons).toEqual(['digest mismatch', 'tlog evidence missing']);
      const enough = summarise(image, [failed('digest mismatch'), sig('key:1', ['a']), sig('key:2', ['b'])], await twoAuthorities());
      expect(enough).toMatchObject({ passed: true, reasons: [] });
    });

    it('says "no signatures found" when too few signers passed and no failed check gives a reason', async () => {
      const unexplained: SignatureCheck = { format: 'bundle', source: 'f', passed: false, authorities: [] };
      expect(summarise(image, [unexplained, sig('key:1', ['a'])], await twoAuthorities()).reasons).toEqual(['no signatures found']);
    });
  });

  describe('reader limits', () => {
    const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

    /** Signs `image` once, then rewrites its `.sig` manifest with `extra` layers appended. */
    async function sigImageWith(key: SigningKey, extra: unknown[]): Promise<void> {
      await new ImageSigner({ registry: reg, log: silentLogger() }).sign({ repo, digest: image }, key);
      const tag = `sha256-${image.slice(7)}.sig`;
      const m = JSON.parse((await reg.getManifest({ ...repo, tag })).bytes.toString()) as { layers: unknown[] };
      reg.plantManifest(repo, OCI_MANIFEST, Buffer.from(JSON.stringify({ ...m, layers: [...m.layers, ...extra] })), tag);
    }

    it('when a .sig image has more layers than maxLayers, refuses it whole without reading a payload', async () => {
      const { key, pem } = newKey();
      await sigImageWith(key, [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 10 }, { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: `sha256:${'b'.repeat(64)}`, size: 10 }]);
      const limited = new SignatureVerifier({ registry: reg, log: silentLogger(), limits: { maxLayers: 2 } });
      const r = await limited.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem], tlog: 'ignore' }] }));
      expect(r.passed).toBe(false);
      expect(r.reasons).toEqual(['signature invalid']);
      expect(r.signatures).toHaveLength(1);
      expect(r.signatures[0]?.detail).toContain('3 layers; more than 2');
      expect(reg.blobReads).toEqual([]);
    });

    it('when a .sig image holds malformed layers beside a good one, fails each malformed layer alone and passes on the good one', async () => {
      const { key, pem } = newKey();
      await sigImageWith(key, [42, { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: 'not-a-digest', size: 1 }, { mediaType: 'text/plain', digest: `sha256:${'c'.repeat(64)}`, size: 3 }]);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ name: 'ci', keys: [pem], tlog: 'ignore' }] }));
      expect(r.passed).toBe(true);
      expect(r.signatures.map((c) => c.passed)).toEqual([true, false, false, false]);
      expect(r.signatures.slice(1).every((c) => c.reason === 'signature invalid')).toBe(true);
      expect(r.signatures[1]?.detail).toContain('malformed');
      expect(r.signatures[3]?.detail).toContain('text/plain');
    });

    it('when a .sig manifest has no layer list, fails with "signature invalid"', async () => {
      const { pem } = newKey();
      reg.plantManifest(repo, OCI_MANIFEST, Buffer.from('{"schemaVersion":2,"layers":{"0":{}}}'), `sha256-${image.slice(7)}.sig`);
      const r = await verifier.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem], tlog: 'ignore' }] }));
      expect(r).toMatchObject({ passed: false, reasons: ['signature invalid'] });
    });

    it('when a digest has more sigstore-bundle referrers than maxReferrers, reads none of them', async () => {
      const { pem } = newKey();
      const listed = [1, 2, 3].map((i) => ({ mediaType: OCI_MANIFEST, digest: `sha256:${String(i).repeat(64)}`, size: 100, artifactType: BUNDLE_TYPE }));
      await reg.indexReferrers(repo, image, listed);
      const reads: string[] = [];
      const spy = new Proxy(reg, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target) as unknown;
          if (prop === 'findManifest') {
            return (ref: { digest?: string; tag?: string }, ...rest: unknown[]) => {
              reads.push(ref.digest ?? ref.tag ?? '');
              return (value as (...a: unknown[]) => unknown).call(target, ref, ...rest);
            };
          }
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const limited = new SignatureVerifier({ registry: spy, log: silentLogger(), limits: { maxReferrers: 2 } });
      const r = await limited.verify({ repo, digest: image }, await policyFor({ authorities: [{ keys: [pem], tlog: 'ignore' }] }));
      expect(r).toMatchObject({ passed: false, reasons: ['signature invalid'] });
      expect(r.signatures.find((c) => c.format === 'bundle')?.detail).toContain('3 referrers exceed the limit of 2');
      for (const d of listed) expect(reads).not.toContain(d.digest);
    });
  });
});

