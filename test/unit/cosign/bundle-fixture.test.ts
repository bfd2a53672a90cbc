import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicy, verifyAttestationLayer, verifyBundleBlob, type Policy, type PolicyDocument, type TlogMode } from '../../../src/cosign/index.js';
import { generateSigningKey, keySignedSigstoreBundle } from '../../support/cosign-fixtures.js';
import { checkBundle, parseSigstoreBundleBytes } from '../../../src/cosign/sigstore-verification.js';
import { loadTrustRoot } from '../../../src/cosign/trust-root.js';
import { FIXTURE_DIR, fixture, fixtureText } from './fixture-files.js';

const ROOT = 'cosign-trusted_root_pgi.json';
const BUNDLE = 'cosign-oci-attestation.sigstore.json';
const SUBJECT = 'sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4';
const repo = { registry: '127.0.0.1:60943', repository: 'repo' };
const ATTESTATION_PREDICATE = 'https://cosign.sigstore.dev/attestation/v1';

type Doc = { dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string; keyid?: string }[] }; verificationMaterial: { tlogEntries: { kindVersion: { kind: string; version: string }; logIndex: string; integratedTime: string }[] } };

async function keylessPolicy(extra: Partial<PolicyDocument> = {}, keyless: Record<string, unknown> = {}, authority: { tlog?: TlogMode } = {}): Promise<Policy> {
  return loadPolicy(
    {
      authorities: [{ name: 'cody', ...authority, keyless: { identity: 'cody@soyland.com', issuer: 'https://github.com/login/oauth', trustedRoot: ROOT, ...keyless } }],
      signaturePredicateTypes: [ATTESTATION_PREDICATE],
      ...extra,
    },
    { baseDir: FIXTURE_DIR },
  );
}

describe('trusted root #9', () => {
  it('has the Rekor v1 log, 2 CAs, 2 CT logs and no TSA, and loads offline', async () => {
    const raw = JSON.parse(fixtureText(ROOT)) as { tlogs: { baseUrl: string; logId: { keyId: string } }[] };
    expect(raw.tlogs[0]?.baseUrl).toBe('https://rekor.sigstore.dev');
    expect(raw.tlogs[0]?.logId.keyId).toBe('wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=');
    const root = await loadTrustRoot(`${FIXTURE_DIR}${ROOT}`);
    expect(root.tlogs.map((t) => t.baseUrl)).toEqual(['https://rekor.sigstore.dev']);
    expect(root.tlogs[0]?.logId.toString('hex')).toBe('c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d');
    expect(root.certificateAuthorities).toHaveLength(2);
    expect(root.ctlogs).toHaveLength(2);
    expect(root.timestampAuthorities).toHaveLength(0);
  });

  it('refuses a malformed root with POLICY_INVALID naming the field', async () => {
    await expect(loadPolicy({ authorities: [{ keys: ['ci-cosign.pub'], trustedRoot: { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [{ publicKey: { rawBytes: '!!' } }] } }] }, { baseDir: FIXTURE_DIR }))
      .rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringContaining('tlogs[0].publicKey.rawBytes') });
  });
});

describe('v0.3 DSSE bundle #10 (keyless attestation)', () => {
  const doc = JSON.parse(fixtureText(BUNDLE)) as Doc;
  const statement = JSON.parse(Buffer.from(doc.dsseEnvelope.payload, 'base64').toString()) as { _type: string; predicateType: string; subject: unknown[] };

  it('is an in-toto DSSE envelope with one signature and no keyid', () => {
    expect(doc.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
    expect(doc.dsseEnvelope.signatures).toHaveLength(1);
    expect(doc.dsseEnvelope.signatures[0]?.keyid).toBeUndefined();
  });

  it('holds a v0.1 statement with the documented subject and predicate type', () => {
    expect(statement._type).toBe('https://in-toto.io/Statement/v0.1');
    expect(statement.predicateType).toBe(ATTESTATION_PREDICATE);
    expect(statement.subject).toEqual([{ name: '127.0.0.1:60943/repo', digest: { sha256: SUBJECT.slice(7) } }]);
  });

  it('has one dsse 0.0.1 tlog entry at index 175508996, time 1740770291', () => {
    const e = doc.verificationMaterial.tlogEntries;
    expect(e).toHaveLength(1);
    expect(e[0]?.kindVersion).toEqual({ kind: 'dsse', version: '0.0.1' });
    expect(e[0]?.logIndex).toBe('175508996');
    expect(e[0]?.integratedTime).toBe('1740770291');
  });

  it('verifies with @sigstore/verify, default thresholds and root #9 as cody@soyland.com via GitHub', async () => {
    const parsed = parseSigstoreBundleBytes(fixture(BUNDLE));
    if (!parsed.ok) throw new Error(parsed.detail);
    const root = await loadTrustRoot(`${FIXTURE_DIR}${ROOT}`);
    expect(checkBundle(parsed.bundle, { trust: root })).toEqual({ ok: true, signer: { subjectAlternativeName: 'cody@soyland.com', issuer: 'https://github.com/login/oauth' } });
  });

  describe('when verified through a keyless policy', () => {
    it('passes with the exact identity and issuer', async () => {
      const v = verifyBundleBlob(fixture(BUNDLE), { repo, digest: SUBJECT, policy: await keylessPolicy() });
      expect(v.passed).toBe(true);
      expect(v.authorities).toEqual(['cody']);
      expect(v.identity).toEqual({ subjectAlternativeName: 'cody@soyland.com', issuer: 'https://github.com/login/oauth' });
      expect(v.integratedTime).toBe(1740770291);
      expect(v.predicateType).toBe(ATTESTATION_PREDICATE);
    });

    it('passes with regular expressions for identity and issuer', async () => {
      const p = await keylessPolicy({}, { identity: undefined, issuer: undefined, identityRegExp: '@soyland\\.com$', issuerRegExp: '^https://github\\.com/' });
      expect(verifyBundleBlob(fixture(BUNDLE), { repo, digest: SUBJECT, policy: p }).passed).toBe(true);
    });

    it.each([
      ['another identity', { identity: 'someone@soyland.com' }, 'no certificate identity [cody@soyland.com] is someone@soyland.com'],
      ['an identity that only matches as an unanchored pattern', { identity: 'cody@soyland.co' }, 'no certificate identity [cody@soyland.com] is cody@soyland.co'],
      ['another issuer', { issuer: 'https://accounts.google.com' }, 'https://accounts.google.com'],
      ['a non-matching issuer pattern', { issuer: undefined, issuerRegExp: '^https://accounts\\.google\\.com$' }, 'certificate issuer https://github.com/login/oauth does not match /^https:\\/\\/accounts\\.google\\.com$/'],
    ])('fails as untrusted identity for %s, saying which', async (_what, keyless, detail) => {
      const v = verifyBundleBlob(fixture(BUNDLE), { repo, digest: SUBJECT, policy: await keylessPolicy({}, keyless) });
      expect(v.passed).toBe(false);
      expect(v.reason).toBe('untrusted identity');
      expect(v.detail).toContain(detail);
    });

    it('fails a key-signed bundle as an untrusted identity: the authority is keyless', async () => {
      const v = verifyBundleBlob(keySignedSigstoreBundle(SUBJECT, generateSigningKey(), { predicateType: ATTESTATION_PREDICATE }), { repo, digest: SUBJECT, policy: await keylessPolicy() });
      expect(v).toMatchObject({ passed: false, reason: 'untrusted identity', detail: 'signed with a key, not a certificate (authority cody is keyless)' });
    });

    it('fails a subject-digest check against any other digest', async () => {
      const v = verifyBundleBlob(fixture(BUNDLE), { repo, digest: `sha256:${'0'.repeat(64)}`, policy: await keylessPolicy() });
      expect(v.reason).toBe('digest mismatch');
    });

    it('is excluded as a signature by the default predicate filter https://sigstore.dev/cosign/sign/v1', async () => {
      const p = await loadPolicy({ authorities: [{ keyless: { identity: 'cody@soyland.com', issuer: 'https://github.com/login/oauth', trustedRoot: ROOT } }] }, { baseDir: FIXTURE_DIR });
      const v = verifyBundleBlob(fixture(BUNDLE), { repo, digest: SUBJECT, policy: p });
      expect(v.isSignature).toBe(false);
      expect(v.passed).toBe(true); // a verified attestation, not a signature
    });

    it('fails as tlog evidence invalid when the tlog entry body is tampered with', async () => {
      const tampered = JSON.parse(fixtureText(BUNDLE)) as { verificationMaterial: { tlogEntries: { logIndex: string }[] } };
      const e = tampered.verificationMaterial.tlogEntries[0];
      if (e === undefined) throw new Error('no entry');
      e.logIndex = '175508997';
      const v = verifyBundleBlob(Buffer.from(JSON.stringify(tampered)), { repo, digest: SUBJECT, policy: await keylessPolicy() });
      expect(v.reason).toBe('tlog evidence invalid');
    });

    it('fails as signature invalid when the payload is changed', async () => {
      const tampered = JSON.parse(fixtureText(BUNDLE)) as Doc;
      const st = JSON.parse(Buffer.from(tampered.dsseEnvelope.payload, 'base64').toString()) as Record<string, unknown>;
      st['predicate'] = {};
      tampered.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString('base64');
      const v = verifyBundleBlob(Buffer.from(JSON.stringify(tampered)), { repo, digest: SUBJECT, policy: await keylessPolicy() });
      expect(v.passed).toBe(false);
      expect(v.reason).toBe('signature invalid');
      expect(v.detail).toBe('signature does not verify with the certificate key');
    });

    it('fails a key authority as signature invalid (signed with a certificate)', async () => {
      const p = await loadPolicy({ authorities: [{ keys: ['ci-cosign.pub'], trustedRoot: ROOT }], signaturePredicateTypes: [ATTESTATION_PREDICATE] }, { baseDir: FIXTURE_DIR });
      expect(verifyBundleBlob(fixture(BUNDLE), { repo, digest: SUBJECT, policy: p })).toMatchObject({ reason: 'signature invalid', detail: 'signed with a certificate; authority authority-1 trusts keys' });
    });
  });

  describe('when the certificate chains to an untrusted root', () => {
    it('fails as untrusted identity, not a crash or a pass', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'untrusted-ca-'));
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '3650', '-subj', '/CN=not-fulcio'], { stdio: 'ignore' });
        const der = Buffer.from(readFileSync(join(dir, 'ca.pem'), 'utf8').replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64');
        const root = JSON.parse(fixtureText(ROOT)) as { certificateAuthorities: { certChain: { certificates: { rawBytes: string }[] }; validFor: unknown }[] };
        root.certificateAuthorities = [{ certChain: { certificates: [{ rawBytes: der.toString('base64') }] }, validFor: { start: '2020-01-01T00:00:00Z' } }];
        const p = await keylessPolicy({}, { trustedRoot: root });
        const v = verifyBundleBlob(fixture(BUNDLE), { repo, digest: SUBJECT, policy: p });
        expect(v.passed).toBe(false);
        expect(v.reason).toBe('untrusted identity');
        expect(v.detail).toMatch(/CERTIFICATE_ERROR/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('bundle #10 repackaged as a legacy keyless .att layer', () => {
  const doc = JSON.parse(fixtureText(BUNDLE)) as Doc & { verificationMaterial: { certificate: { rawBytes: string }; tlogEntries: { logId: { keyId: string }; canonicalizedBody: string; inclusionPromise: { signedEntryTimestamp: string } }[] } };
  const entry = doc.verificationMaterial.tlogEntries[0];
  if (entry === undefined) throw new Error('no entry');
  const blob = Buffer.from(JSON.stringify({ payloadType: doc.dsseEnvelope.payloadType, payload: doc.dsseEnvelope.payload, signatures: [{ keyid: '', sig: doc.dsseEnvelope.signatures[0]?.sig }] }));
  const certPem = `-----BEGIN CERTIFICATE-----\n${doc.verificationMaterial.certificate.rawBytes.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
  const rekorBundle = JSON.stringify({
    SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
    Payload: { body: entry.canonicalizedBody, integratedTime: Number(entry.integratedTime), logIndex: Number(entry.logIndex), logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex') },
  });
  const annotations = { 'dev.cosignproject.cosign/signature': '', 'dev.sigstore.cosign/certificate': certPem, 'dev.sigstore.cosign/bundle': rekorBundle, predicateType: ATTESTATION_PREDICATE };

  it('verifies keyless through the certificate, SCT and SET annotations', async () => {
    const v = verifyAttestationLayer(blob, annotations, { repo, digest: SUBJECT, policy: await keylessPolicy() });
    expect(v).toMatchObject({ passed: true, authorities: ['cody'], predicateType: ATTESTATION_PREDICATE, identity: { subjectAlternativeName: 'cody@soyland.com', issuer: 'https://github.com/login/oauth' }, integratedTime: 1740770291 });
    expect(v.signer).toBe('certificate:https://github.com/login/oauth cody@soyland.com');
    expect(v).not.toHaveProperty('keyId');
  });

  it('fails another identity as untrusted and a missing or empty certificate as untrusted', async () => {
    expect(verifyAttestationLayer(blob, annotations, { repo, digest: SUBJECT, policy: await keylessPolicy({}, { identity: 'mallory@soyland.com' }) }).reason).toBe('untrusted identity');
    const { 'dev.sigstore.cosign/certificate': _cert, ...noCert } = annotations;
    const notCertificateSigned = { passed: false, reason: 'untrusted identity', detail: 'not signed with a certificate (authority cody is keyless)' };
    expect(verifyAttestationLayer(blob, noCert, { repo, digest: SUBJECT, policy: await keylessPolicy() })).toMatchObject(notCertificateSigned);
    expect(verifyAttestationLayer(blob, { ...noCert, 'dev.sigstore.cosign/certificate': '' }, { repo, digest: SUBJECT, policy: await keylessPolicy() })).toMatchObject(notCertificateSigned);
  });

  it('fails evidence annotations it cannot read as an invalid signature, saying what is wrong', async () => {
    const policy = await keylessPolicy();
    const twoCertificates = { ...annotations, 'dev.sigstore.cosign/certificate': certPem + certPem };
    expect(verifyAttestationLayer(blob, twoCertificates, { repo, digest: SUBJECT, policy })).toMatchObject({ passed: false, reason: 'signature invalid', detail: 'certificate annotation does not hold one PEM certificate' });
    const garbageCertificate = { ...annotations, 'dev.sigstore.cosign/certificate': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' };
    expect(verifyAttestationLayer(blob, garbageCertificate, { repo, digest: SUBJECT, policy })).toMatchObject({ passed: false, reason: 'signature invalid', detail: expect.stringContaining('unreadable verification material (') });
    const noTimestamp = { ...annotations, 'dev.sigstore.cosign/rfc3161timestamp': 'x' };
    expect(verifyAttestationLayer(blob, noTimestamp, { repo, digest: SUBJECT, policy })).toMatchObject({ passed: false, reason: 'signature invalid', detail: 'rfc3161timestamp annotation has no SignedRFC3161Timestamp' });
    const notJson = { ...annotations, 'dev.sigstore.cosign/bundle': 'not json' };
    expect(verifyAttestationLayer(blob, notJson, { repo, digest: SUBJECT, policy })).toMatchObject({ passed: false, reason: 'signature invalid' });
  });

  it('fails without the Rekor bundle as tlog evidence missing (nothing proves when the certificate was used)', async () => {
    const { 'dev.sigstore.cosign/bundle': _b, ...noBundle } = annotations;
    expect(verifyAttestationLayer(blob, noBundle, { repo, digest: SUBJECT, policy: await keylessPolicy() })).toMatchObject({ reason: 'tlog evidence missing', detail: 'bundle has no transparency-log entry (authority cody requires one)' });
    // Without tlog: require, the certificate still needs some proof of time.
    for (const tlog of ['if-present', 'ignore'] as const) {
      expect(verifyAttestationLayer(blob, noBundle, { repo, digest: SUBJECT, policy: await keylessPolicy({}, {}, { tlog }) }), tlog).toMatchObject({
        reason: 'tlog evidence missing', detail: 'a certificate signature needs a transparency-log entry or an RFC 3161 timestamp to prove when it was made',
      });
    }
  });
});
