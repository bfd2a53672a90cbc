import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadPolicy, parsePrivateKey, verifyAttestationLayer, verifyBundleBlob, type Policy, type PolicyDocument, type SigningKey } from '../../../src/cosign/index.js';
import { FIXTURE_DIR } from './fixture-files.js';

// Pure checks of one signature against a policy (issue #9): what is signed, not what sits beside it, decides.

const IN_TOTO = 'application/vnd.in-toto+json';
const SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const repo = { registry: 'registry.example.com', repository: 'team/app' };
const digest = `sha256:${'ab'.repeat(32)}`;

function newKey(): { key: SigningKey; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: parsePrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, '', 'test.key'), pem: publicKey.export({ format: 'pem', type: 'spki' }) as string };
}

function policyFor(pem: string, doc: Partial<PolicyDocument> = {}): Promise<Policy> {
  return loadPolicy({ authorities: [{ name: 'ci', keys: [pem], tlog: 'ignore' }], ...doc }, { baseDir: FIXTURE_DIR });
}

function statement(subject: Record<string, unknown>, predicateType: string | null = SIGN_PREDICATE): Buffer {
  return Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [subject], ...(predicateType === null ? {} : { predicateType }), predicate: {} }));
}

function pae(body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${IN_TOTO.length} ${IN_TOTO} ${body.length} `), body]);
}

function envelope(key: SigningKey, body: Buffer, extraSignatures = 0): { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] } {
  const sig = sign('sha256', pae(body), key.privateKey).toString('base64');
  return { payloadType: IN_TOTO, payload: body.toString('base64'), signatures: [...Array.from({ length: extraSignatures }, () => ({ keyid: '', sig })), { keyid: '', sig }] };
}

/** A key-signed cosign v3 bundle (v0.3, DSSE, no tlog entries) over `body`. */
function bundle(key: SigningKey, body: Buffer, tlogEntries: unknown[] = []): Buffer {
  return Buffer.from(JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: { publicKey: { hint: '' }, tlogEntries },
    dsseEnvelope: envelope(key, body),
  }));
}

describe('signature checks', () => {
  describe('when the policy checks the docker-reference and the signature is a sigstore bundle', () => {
    it('fails a bundle whose statement names no reference (cosign v3 signs none)', async () => {
      const { key, pem } = newKey();
      const p = await policyFor(pem, { dockerReference: 'exact' });
      const v = verifyBundleBlob(bundle(key, statement({ digest: { sha256: digest.slice(7) } })), { repo, digest, policy: p });
      expect(v).toMatchObject({ passed: false, reason: 'untrusted identity', detail: expect.stringContaining('no signed docker-reference') });
    });

    it('fails a bundle whose subject names another repository, and passes the right one', async () => {
      const { key, pem } = newKey();
      const exact = await policyFor(pem, { dockerReference: 'exact' });
      const elsewhere = bundle(key, statement({ name: 'registry.example.com/team/other', digest: { sha256: digest.slice(7) } }));
      expect(verifyBundleBlob(elsewhere, { repo, digest, policy: exact })).toMatchObject({ passed: false, reason: 'untrusted identity' });
      const here = bundle(key, statement({ name: 'registry.example.com/team/app', digest: { sha256: digest.slice(7) } }));
      expect(verifyBundleBlob(here, { repo, digest, policy: exact })).toMatchObject({ passed: true });
      const byRepo = await policyFor(pem, { dockerReference: { match: 'repository', reference: 'dev.example.com/team/app' } });
      const fromSource = bundle(key, statement({ name: 'dev.example.com/team/app:v1', digest: { sha256: digest.slice(7) } }));
      expect(verifyBundleBlob(fromSource, { repo, digest, policy: byRepo })).toMatchObject({ passed: true });
    });

    it('passes a bundle without a name when the check is off (the default)', async () => {
      const { key, pem } = newKey();
      const v = verifyBundleBlob(bundle(key, statement({ digest: { sha256: digest.slice(7) } })), { repo, digest, policy: await policyFor(pem) });
      expect(v.passed).toBe(true);
    });
  });

  describe('when the policy checks the docker-reference and the signature is a legacy attestation', () => {
    it('checks the signed subject name', async () => {
      const { key, pem } = newKey();
      const p = await policyFor(pem, { dockerReference: 'exact' });
      const env = (name: string): Buffer => Buffer.from(JSON.stringify(envelope(key, statement({ name, digest: { sha256: digest.slice(7) } }, 'https://slsa.dev/provenance/v1'))));
      expect(verifyAttestationLayer(env('registry.example.com/team/other'), {}, { repo, digest, policy: p })).toMatchObject({ passed: false, reason: 'untrusted identity' });
      expect(verifyAttestationLayer(env('registry.example.com/team/app'), {}, { repo, digest, policy: p })).toMatchObject({ passed: true });
    });
  });

  describe('when a legacy .att layer claims a predicate type only in its unsigned annotation', () => {
    it('takes the predicate type from the verified statement, not the annotation', async () => {
      const { key, pem } = newKey();
      const p = await policyFor(pem, { attestations: [{ predicateType: 'https://slsa.dev/provenance/v1' }] });
      const unstated = Buffer.from(JSON.stringify(envelope(key, statement({ digest: { sha256: digest.slice(7) } }, null))));
      const v = verifyAttestationLayer(unstated, { predicateType: 'https://slsa.dev/provenance/v1' }, { repo, digest, policy: p });
      expect(v.predicateType).toBeUndefined();
      const vuln = Buffer.from(JSON.stringify(envelope(key, statement({ digest: { sha256: digest.slice(7) } }, 'https://cosign.sigstore.dev/attestation/vuln/v1'))));
      expect(verifyAttestationLayer(vuln, { predicateType: 'https://slsa.dev/provenance/v1' }, { repo, digest, policy: p })).toMatchObject({ passed: true, predicateType: 'https://cosign.sigstore.dev/attestation/vuln/v1' });
    });
  });

  describe('when a .att layer or a bundle is malformed, it is refused as an invalid signature, saying what is wrong', () => {
    const subject = { digest: { sha256: digest.slice(7) } };
    /** Signs with a fresh key whatever `make` builds (bytes, text or JSON), and checks it with a policy trusting that key. */
    const signed = async (make: (key: SigningKey) => unknown) => {
      const { key, pem } = newKey();
      const made = make(key);
      const blob = Buffer.isBuffer(made) ? made : Buffer.from(typeof made === 'string' ? made : JSON.stringify(made));
      return { blob, ctx: { repo, digest, policy: await policyFor(pem) } };
    };
    const att = async (make: (key: SigningKey) => unknown) => {
      const { blob, ctx } = await signed(make);
      return verifyAttestationLayer(blob, {}, ctx);
    };
    const bun = async (make: (key: SigningKey) => unknown) => {
      const { blob, ctx } = await signed(make);
      return verifyBundleBlob(blob, ctx);
    };
    const invalid = (detail: string | RegExp) => ({ passed: false, reason: 'signature invalid', detail: typeof detail === 'string' ? detail : expect.stringMatching(detail) });

    it('a .att layer that is not a DSSE envelope', async () => {
      expect(await att(() => 'not json')).toMatchObject(invalid(/./));
    });
    it('a .att layer whose payloadType is not in-toto', async () => {
      expect(await att((key) => ({ ...envelope(key, statement(subject)), payloadType: 'text/plain' }))).toMatchObject(
        invalid('DSSE payloadType is "text/plain", not application/vnd.in-toto+json'),
      );
    });
    it('a .att layer whose payload is not an in-toto statement', async () => {
      expect(await att((key) => envelope(key, Buffer.from('{"hello":"world"}')))).toMatchObject(invalid(/./));
    });
    it('a .att layer with no signatures', async () => {
      expect(await att((key) => ({ ...envelope(key, statement(subject)), signatures: [] }))).toMatchObject(invalid('DSSE envelope has no signatures'));
    });
    it('a .att layer with more DSSE signatures than the limit, and not one more than allowed', async () => {
      const { key, pem } = newKey();
      const policy = await policyFor(pem);
      const limits = { maxTlogEntries: 32, maxDsseSignatures: 2 };
      const two = Buffer.from(JSON.stringify(envelope(key, statement(subject), 1)));
      expect(verifyAttestationLayer(two, {}, { repo, digest, policy, limits })).toMatchObject({ passed: true });
      const three = Buffer.from(JSON.stringify(envelope(key, statement(subject), 2)));
      expect(verifyAttestationLayer(three, {}, { repo, digest, policy, limits })).toMatchObject({
        ...invalid('[SIG_TOO_MANY_DSSE_SIGNATURES] DSSE envelope has 3 signatures; more than 2 are refused unchecked'),
        limit: 'SIG_TOO_MANY_DSSE_SIGNATURES',
      });
    });
    it('a .att statement about another digest is a digest mismatch naming both', async () => {
      const other = 'cd'.repeat(32);
      expect(await att((key) => envelope(key, statement({ digest: { sha256: other } })))).toMatchObject({
        passed: false,
        reason: 'digest mismatch',
        detail: `statement subjects [${other}] do not include ${digest}`,
      });
    });

    it('a bundle that is not JSON', async () => {
      expect(await bun(() => Buffer.from('{'))).toMatchObject(invalid(/^bundle: /));
    });
    it('a bundle of another media type than v0.3', async () => {
      expect(await bun((key) => ({ ...JSON.parse(bundle(key, statement(subject)).toString()), mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2' }))).toMatchObject(
        invalid('unsupported bundle media type application/vnd.dev.sigstore.bundle+json;version=0.2 (v0.3 expected)'),
      );
    });
    it('a bundle whose DSSE payloadType is not in-toto', async () => {
      const make = (key: SigningKey) => {
        const b = JSON.parse(bundle(key, statement(subject)).toString()) as { dsseEnvelope: { payloadType: string } };
        b.dsseEnvelope.payloadType = 'text/plain';
        return b;
      };
      expect(await bun(make)).toMatchObject(invalid('DSSE payloadType is "text/plain", not application/vnd.in-toto+json'));
    });
    it('a bundle whose statement is not an in-toto statement', async () => {
      expect(await bun((key) => bundle(key, Buffer.from('{"hello":"world"}')))).toMatchObject(invalid(/./));
    });
    it('a bundle with more DSSE signatures than the limit', async () => {
      const make = (key: SigningKey) => {
        const b = JSON.parse(bundle(key, statement(subject)).toString()) as { dsseEnvelope: unknown };
        b.dsseEnvelope = envelope(key, statement(subject), 16);
        return b;
      };
      expect(await bun(make)).toMatchObject({
        ...invalid('[SIG_TOO_MANY_DSSE_SIGNATURES] bundle DSSE envelope has 17 signatures; more than 16 are refused unchecked'),
        limit: 'SIG_TOO_MANY_DSSE_SIGNATURES',
      });
    });
  });
});
