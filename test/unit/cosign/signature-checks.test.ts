import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadPolicy, parsePrivateKey, parsePublicKey, verifyAttestationLayer, verifyBundleBlob, verifySimpleSigningLayer, type Policy, type PolicyDocument, type SigningKey } from '../../../src/cosign/index.js';
import { FIXTURE_DIR, fixtureText } from './fixture-files.js';

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

describe('signature checks: what a verdict reports', () => {
  const subject = { digest: { sha256: digest.slice(7) } };
  const attLayer = (key: SigningKey, body = statement(subject)): Buffer => Buffer.from(JSON.stringify(envelope(key, body)));
  const simpleSigning = (claimed: string, type = 'cosign container image signature'): Buffer =>
    Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': 'registry.example.com/team/app' }, image: { 'docker-manifest-digest': claimed }, type }, optional: null }));
  const signedLayer = (key: SigningKey, payload: Buffer) => ({ 'dev.cosignproject.cosign/signature': sign('sha256', payload, key.privateKey).toString('base64') });

  describe('when every authority fails', () => {
    it('reports the reason that got furthest, whatever the order of the authorities', async () => {
      const { key, pem } = newKey();
      const stranger = newKey();
      const wrongKey = { name: 'wrong', keys: [stranger.pem], tlog: 'ignore' as const };
      const noEvidence = { name: 'right', keys: [pem], tlog: 'require' as const, rekorKeys: ['ci-rekor.pub'] };
      for (const authorities of [[wrongKey, noEvidence], [noEvidence, wrongKey]]) {
        const policy = await loadPolicy({ authorities }, { baseDir: FIXTURE_DIR });
        expect(verifyAttestationLayer(attLayer(key), {}, { repo, digest, policy })).toMatchObject({ passed: false, authorities: [], reason: 'tlog evidence missing' });
      }
    });

    it('on a tie, reports the first authority in policy order, naming every key it tried', async () => {
      const { key } = newKey();
      const policy = await loadPolicy({ authorities: [{ name: 'first', keys: [newKey().pem, newKey().pem], tlog: 'ignore' }, { name: 'second', keys: [newKey().pem, newKey().pem], tlog: 'ignore' }] }, { baseDir: FIXTURE_DIR });
      expect(verifyAttestationLayer(attLayer(key), {}, { repo, digest, policy })).toMatchObject({ reason: 'signature invalid', detail: 'signature does not verify with any of the 2 keys of authority first' });
    });
  });

  describe('when a key authority passes', () => {
    it('reports the key id and the signer, and no certificate identity or log time', async () => {
      const { key, pem } = newKey();
      const v = verifyAttestationLayer(attLayer(key), {}, { repo, digest, policy: await policyFor(pem) });
      const keyId = parsePublicKey(pem, 'k').keyId;
      expect(v).toMatchObject({ passed: true, authorities: ['ci'], keyId, signer: `key:${keyId}` });
      expect(v).not.toHaveProperty('identity');
      expect(v).not.toHaveProperty('integratedTime');
    });

    it('a claim failure keeps the reason of the claim and lists no authority', async () => {
      const { key, pem } = newKey();
      const v = verifyAttestationLayer(attLayer(key, statement({ digest: { sha256: 'cd'.repeat(32) } })), {}, { repo, digest, policy: await policyFor(pem) });
      expect(v.authorities).toEqual([]);
      expect(v).toMatchObject({ passed: false, reason: 'digest mismatch' });
    });
  });

  describe('when a .sig layer is checked', () => {
    it('fails a layer without the signature annotation, or with an empty one, saying which', async () => {
      const { pem } = newKey();
      const ctx = { repo, digest, policy: await policyFor(pem) };
      expect(verifySimpleSigningLayer(simpleSigning(digest), {}, ctx)).toMatchObject({ passed: false, reason: 'signature invalid', detail: 'layer has no dev.cosignproject.cosign/signature annotation' });
      expect(verifySimpleSigningLayer(simpleSigning(digest), { 'dev.cosignproject.cosign/signature': '' }, ctx)).toMatchObject({ passed: false, reason: 'signature invalid', detail: 'dev.cosignproject.cosign/signature is not valid base64' });
    });

    it('fails a payload that claims another digest, naming both', async () => {
      const { key, pem } = newKey();
      const other = `sha256:${'cd'.repeat(32)}`;
      const payload = simpleSigning(other);
      expect(verifySimpleSigningLayer(payload, signedLayer(key, payload), { repo, digest, policy: await policyFor(pem) })).toMatchObject({
        passed: false, reason: 'digest mismatch', detail: `payload claims "${other}", verifying ${digest}`,
      });
    });

    it('with the opt-in type check, fails another critical.type, which passes without it', async () => {
      const { key, pem } = newKey();
      const payload = simpleSigning(digest, 'something else');
      expect(verifySimpleSigningLayer(payload, signedLayer(key, payload), { repo, digest, policy: await policyFor(pem) }).passed).toBe(true);
      expect(verifySimpleSigningLayer(payload, signedLayer(key, payload), { repo, digest, policy: await policyFor(pem, { checkType: true }) })).toMatchObject({
        passed: false, reason: 'signature invalid', detail: 'critical.type is "something else", not "cosign container image signature"',
      });
    });
  });
});

describe('signature checks: statement subjects, annotations and bundle limits', () => {
  const hex = digest.slice(7);
  const SLSA = 'https://slsa.dev/provenance/v1';
  /** A key-signed bundle over a statement with these subjects, checked against a policy trusting the key. */
  const checkBundle = async (subjects: Record<string, unknown>[], doc: Partial<PolicyDocument> = {}, predicateType = SIGN_PREDICATE) => {
    const { key, pem } = newKey();
    const body = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: subjects, predicateType, predicate: {} }));
    return verifyBundleBlob(bundle(key, body), { repo, digest, policy: await policyFor(pem, doc) });
  };
  const required = { annotations: { env: 'prod', team: 'a' } };

  it('when no subject names the digest, lists what the subjects name, "?" for a subject without sha256', async () => {
    const v = await checkBundle([{ digest: { sha512: 'ef'.repeat(64) } }, { digest: { sha256: 'cd'.repeat(32) } }]);
    expect(v).toMatchObject({ passed: false, reason: 'digest mismatch', detail: `statement subjects [?, ${'cd'.repeat(32)}] do not include ${digest}` });
  });

  it('when a signature bundle lacks the required annotations, says what was wanted and what was signed', async () => {
    const none = await checkBundle([{ digest: { sha256: hex } }], required);
    expect(none).toMatchObject({ passed: false, reason: 'missing or incorrect annotation', detail: 'env: want "prod", signed nothing; team: want "a", signed nothing' });
    const wrong = await checkBundle([{ digest: { sha256: hex }, annotations: { env: 'staging', team: 'a' } }], required);
    expect(wrong).toMatchObject({ passed: false, detail: 'env: want "prod", signed "staging"' });
  });

  it('when any one subject for the digest carries the annotations, passes', async () => {
    const v = await checkBundle([{ digest: { sha256: hex } }, { digest: { sha256: hex }, annotations: { env: 'prod', team: 'a' } }], required);
    expect(v).toMatchObject({ passed: true, isSignature: true });
  });

  it('when the bundle or .att layer is an attestation, does not ask its subject for annotations', async () => {
    const v = await checkBundle([{ digest: { sha256: hex } }], required, SLSA);
    expect(v).toMatchObject({ passed: true, isSignature: false, predicateType: SLSA });
    const { key, pem } = newKey();
    const att = Buffer.from(JSON.stringify(envelope(key, statement({ digest: { sha256: hex } }, SLSA))));
    expect(verifyAttestationLayer(att, {}, { repo, digest, policy: await policyFor(pem, required) })).toMatchObject({ passed: true, predicateType: SLSA });
  });

  it('when the statement has no predicate type, the verdict carries none', async () => {
    const { key, pem } = newKey();
    const ctx = { repo, digest, policy: await policyFor(pem) };
    const body = statement({ digest: { sha256: hex } }, null);
    expect(verifyBundleBlob(bundle(key, body), ctx)).not.toHaveProperty('predicateType');
    expect(verifyAttestationLayer(Buffer.from(JSON.stringify(envelope(key, body))), {}, ctx)).not.toHaveProperty('predicateType');
  });

  describe('with the docker-reference check', () => {
    const named = (name: string, dockerReference: 'exact' | 'repository') => checkBundle([{ name, digest: { sha256: hex } }], { dockerReference });

    it('exact: a tag on the same repository is another reference', async () => {
      expect(await named('registry.example.com/team/app:v1', 'exact')).toMatchObject({
        passed: false, reason: 'untrusted identity', detail: 'in-toto subject: docker-reference "registry.example.com/team/app:v1" is not "registry.example.com/team/app"',
      });
    });

    it('repository: a tag on the same repository passes, another repository does not', async () => {
      expect(await named('registry.example.com/team/app:v1', 'repository')).toMatchObject({ passed: true });
      expect(await named('registry.example.com/team/other', 'repository')).toMatchObject({
        passed: false, detail: 'in-toto subject: docker-reference "registry.example.com/team/other" names another repository than "registry.example.com/team/app"',
      });
    });
  });

  describe('when a bundle is not what cosign v3 writes', () => {
    it('refuses JSON that is not an object', async () => {
      const { pem } = newKey();
      for (const text of ['null', '[1]', '"x"']) {
        expect(verifyBundleBlob(Buffer.from(text), { repo, digest, policy: await policyFor(pem) }), text).toMatchObject({ passed: false, reason: 'signature invalid' });
      }
    });

    it('refuses a message-signature bundle: a signature must be a DSSE statement', async () => {
      const { key, pem } = newKey();
      const doc = JSON.parse(bundle(key, statement({ digest: { sha256: hex } })).toString()) as Record<string, unknown>;
      delete doc['dsseEnvelope'];
      doc['messageSignature'] = { messageDigest: { algorithm: 'SHA2_256', digest: Buffer.from(hex, 'hex').toString('base64') }, signature: sign('sha256', Buffer.from('x'), key.privateKey).toString('base64') };
      expect(verifyBundleBlob(Buffer.from(JSON.stringify(doc)), { repo, digest, policy: await policyFor(pem) })).toMatchObject({ passed: false, reason: 'signature invalid', detail: 'bundle content is not a DSSE envelope' });
    });

    it('reads exactly maxTlogEntries entries and exactly maxDsseSignatures signatures (not refused by count)', async () => {
      const { key, pem } = newKey();
      const entry = JSON.parse(fixtureText('cosign-oci-attestation.sigstore.json')) as { verificationMaterial: { tlogEntries: unknown[] } };
      const ctx = { repo, digest, policy: await policyFor(pem), limits: { maxTlogEntries: 1, maxDsseSignatures: 2 } };
      const body = statement({ digest: { sha256: hex } });
      // tlog: ignore drops the (foreign) entry once it is past the count.
      expect(verifyBundleBlob(bundle(key, body, entry.verificationMaterial.tlogEntries), ctx)).toMatchObject({ passed: true });
      const twoSignatures = JSON.parse(bundle(key, body).toString()) as { dsseEnvelope: unknown };
      twoSignatures.dsseEnvelope = envelope(key, body, 1);
      // The library wants one signature: it is refused, but read and not for the count.
      const v = verifyBundleBlob(Buffer.from(JSON.stringify(twoSignatures)), ctx);
      expect(v).toMatchObject({ passed: false, reason: 'signature invalid' });
      expect(v).not.toHaveProperty('limit');
    });
  });
});

describe('signature checks: a key-signed bundle against a key authority', () => {
  const body = statement({ digest: { sha256: digest.slice(7) } });
  const foreignEntries = (): unknown[] => (JSON.parse(fixtureText('cosign-oci-attestation.sigstore.json')) as { verificationMaterial: { tlogEntries: unknown[] } }).verificationMaterial.tlogEntries;
  const check = async (tlog: 'ignore' | 'if-present' | 'require', make: (key: SigningKey) => Buffer) => {
    const { key, pem } = newKey();
    const policy = await loadPolicy({ authorities: [{ name: 'ci', keys: [pem], tlog, ...(tlog === 'ignore' ? {} : { rekorKeys: ['ci-rekor.pub'] }) }] }, { baseDir: FIXTURE_DIR });
    return verifyBundleBlob(make(key), { repo, digest, policy });
  };

  it('when another key signed, names the key it tried', async () => {
    const v = await check('ignore', () => bundle(newKey().key, body));
    expect(v).toMatchObject({ passed: false, reason: 'signature invalid', detail: expect.stringMatching(/^signature does not verify with key ./) });
  });

  it('when the authority requires log evidence and the bundle has no entry, fails as tlog evidence missing', async () => {
    expect(await check('require', (key) => bundle(key, body))).toMatchObject({ passed: false, reason: 'tlog evidence missing', detail: 'bundle has no transparency-log entry (authority ci requires one)' });
  });

  it('when the authority has no timestamp authority, an RFC 3161 timestamp is dropped unread', async () => {
    const withTimestamp = (key: SigningKey): Buffer => {
      const b = JSON.parse(bundle(key, body).toString()) as { verificationMaterial: Record<string, unknown> };
      b.verificationMaterial['timestampVerificationData'] = { rfc3161Timestamps: [{ signedTimestamp: 'MAA=' }] };
      return Buffer.from(JSON.stringify(b));
    };
    expect(await check('ignore', withTimestamp)).toMatchObject({ passed: true });
    expect(await check('if-present', withTimestamp)).toMatchObject({ passed: true });
  });

  it('when the authority ignores the log, a foreign entry is dropped unread; otherwise it is checked and fails', async () => {
    expect(await check('ignore', (key) => bundle(key, body, foreignEntries()))).toMatchObject({ passed: true });
    expect(await check('if-present', (key) => bundle(key, body, foreignEntries()))).toMatchObject({ passed: false, reason: 'tlog evidence invalid', detail: expect.stringMatching(/^TLOG_[A-Z_]+: ./) });
  });
});
