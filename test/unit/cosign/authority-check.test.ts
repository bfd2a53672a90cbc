import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reasonFor } from '../../../src/cosign/authority-check.js';
import { loadPolicy, parsePrivateKey, parsePublicKey, serializeSimpleSigningPayload, verifyAttestationLayer, verifyBundleBlob, verifySimpleSigningLayer, type Policy, type SigningKey } from '../../../src/cosign/index.js';
import { FIXTURE_DIR } from './fixture-files.js';
import { SIG, newKey } from './verifier-support.js';

const sha256Hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

// How @sigstore/verify's error codes become the reasons an operator reads (and the threshold ranks).
describe('reasonFor', () => {
  it.each([
    ['TLOG_ERROR', 'expected 1 tlog entries, got 0', 'tlog evidence missing'],
    ['TIMESTAMP_ERROR', 'expected 1 timestamps, got 0', 'tlog evidence missing'],
    ['TLOG_ERROR', 'expected 1 tlog entries, got 0 valid', 'tlog evidence invalid'],
    ['TIMESTAMP_ERROR', 'timestamp does not verify', 'tlog evidence invalid'],
    ['TLOG_BODY_ERROR', 'got 0', 'tlog evidence invalid'],
    ['TLOG_INCLUSION_PROMISE_ERROR', 'bad SET', 'tlog evidence invalid'],
    ['CERTIFICATE_ERROR', 'untrusted chain', 'untrusted identity'],
    ['UNTRUSTED_SIGNER_ERROR', 'issuer', 'untrusted identity'],
    ['PUBLIC_KEY_ERROR', 'no key', 'untrusted identity'],
    ['SIGNATURE_ERROR', 'got 0', 'signature invalid'],
    ['VERIFICATION_ERROR', 'anything', 'signature invalid'],
  ])('%s "%s" → %s', (code, message, reason) => {
    expect(reasonFor(code, message)).toBe(reason);
  });
});

// A key-signed legacy layer with a Rekor bundle from a test log (our own log key signs the SETs).
describe('checkLegacyLayer with transparency-log evidence from a test log', () => {
  const log = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const logPem = log.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const logId = sha256Hex(log.publicKey.export({ type: 'spki', format: 'der' }));
  const digest = `sha256:${'ab'.repeat(32)}`;
  const repo = { registry: 'registry.example.com', repository: 'team/app' };
  const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

  /** The `dev.sigstore.cosign/bundle` annotation for an entry with this body, its SET signed by the test log. */
  function rekorBundle(body: unknown): string {
    // Keys in JCS order, so that JSON.stringify gives the canonical form the SET covers.
    const payload = { body: b64(JSON.stringify(body)), integratedTime: 1_700_000_000, logID: logId, logIndex: 7 };
    return JSON.stringify({ SignedEntryTimestamp: sign('sha256', Buffer.from(JSON.stringify(payload)), log.privateKey).toString('base64'), Payload: payload });
  }

  /** A P-256 key and a self-signed certificate for it (openssl). */
  function keyWithCertificate(): { key: SigningKey; pem: string; certPem: string } {
    const dir = mkdtempSync(join(tmpdir(), 'cert-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=signer'], { stdio: 'ignore' });
      const keyPem = readFileSync(join(dir, 'k.pem'), 'utf8');
      return { key: parsePrivateKey(keyPem, '', 'k.pem'), pem: createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString(), certPem: readFileSync(join(dir, 'c.pem'), 'utf8') };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** A DSSE envelope over an in-toto statement about `digest`, signed by `key`. */
  function signedStatement(key: SigningKey, predicateType: string): { statement: Buffer; sig: string; envelope: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] } } {
    const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: digest.slice(7) } }], predicateType, predicate: {} }));
    const type = 'application/vnd.in-toto+json';
    const sig = sign('sha256', Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `), statement]), key.privateKey).toString('base64');
    return { statement, sig, envelope: { payloadType: type, payload: statement.toString('base64'), signatures: [{ keyid: '', sig }] } };
  }

  const policyTrusting = (pem: string): Promise<Policy> => loadPolicy({ authorities: [{ name: 'ci', keys: [pem], tlog: 'require', rekorKeys: [logPem] }] }, { baseDir: FIXTURE_DIR });
  /** The test log as a trusted root: checkpoints name their log, which only a root's `baseUrl` can match. */
  const testLogRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{ baseUrl: 'https://test-log', hashAlgorithm: 'SHA2_256', publicKey: { rawBytes: log.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: '2020-01-01T00:00:00Z' } }, logId: { keyId: Buffer.from(logId, 'hex').toString('base64') } }],
    certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
  };
  const policyWithRoot = (pem: string, tlog: 'require' | 'ignore' = 'require'): Promise<Policy> => loadPolicy({ authorities: [{ name: 'ci', keys: [pem], tlog, ...(tlog === 'ignore' ? {} : { trustedRoot: testLogRoot }) }] }, { baseDir: FIXTURE_DIR });

  describe('when the hashedrekord body names the signer by its certificate', () => {
    const signer = keyWithCertificate();
    const payload = serializeSimpleSigningPayload({ dockerReference: 'registry.example.com/team/app', digest });
    const signature = sign('sha256', payload, signer.key.privateKey).toString('base64');
    const bodyNaming = (pem: string) => ({ apiVersion: '0.0.1', kind: 'hashedrekord', spec: { data: { hash: { algorithm: 'sha256', value: sha256Hex(payload) } }, signature: { content: signature, publicKey: { content: b64(pem) } } } });
    const check = async (certificate: string | undefined, body = bodyNaming(signer.certPem)) =>
      verifySimpleSigningLayer(payload, { [SIG]: signature, 'dev.sigstore.cosign/bundle': rekorBundle(body), ...(certificate === undefined ? {} : { 'dev.sigstore.cosign/certificate': certificate }) }, { repo, digest, policy: await policyTrusting(signer.pem) });
    const notTheKey = { passed: false, reason: 'tlog evidence invalid', detail: 'tlog body key is not the verifying key' };

    it('passes when the layer carries that certificate, which holds the verifying key', async () => {
      expect(await check(signer.certPem)).toMatchObject({ passed: true, integratedTime: 1_700_000_000 });
    });

    it('fails without the certificate, or with a certificate of another key', async () => {
      expect(await check(undefined)).toMatchObject(notTheKey);
      expect(await check('')).toMatchObject(notTheKey);
      expect(await check(keyWithCertificate().certPem)).toMatchObject(notTheKey);
    });

    it('does not take an unparsable certificate block, even one the body repeats', async () => {
      const garbage = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
      expect(await check(`${garbage}${signer.certPem}`)).toMatchObject({ passed: true });
      expect(await check(garbage, bodyNaming(garbage))).toMatchObject(notTheKey);
    });
  });

  describe('when a dsse body records the payload hash but another envelope hash', () => {
    it('passes on the payload hash (the envelope may have been re-serialised)', async () => {
      const { key, pem } = newKey();
      const { statement, sig, envelope: env } = signedStatement(key, 'https://slsa.dev/provenance/v1');
      const envelope = Buffer.from(JSON.stringify(env));
      const body = { apiVersion: '0.0.1', kind: 'dsse', spec: { envelopeHash: { algorithm: 'sha256', value: '0'.repeat(64) }, payloadHash: { algorithm: 'sha256', value: sha256Hex(statement) }, signatures: [{ signature: sig, verifier: b64(pem) }] } };
      const v = verifyAttestationLayer(envelope, { 'dev.sigstore.cosign/bundle': rekorBundle(body) }, { repo, digest, policy: await policyTrusting(pem) });
      expect(v).toMatchObject({ passed: true, integratedTime: 1_700_000_000 });
    });
  });

  describe('when a key-signed sigstore bundle carries an entry of the test log', () => {
    /** A v0.3 bundle signed by `key` whose one dsse entry names `loggedPem` as the verifier. */
    function bundleWithEntry(key: SigningKey, loggedPem: string): Buffer {
      const { statement, sig, envelope } = signedStatement(key, 'https://sigstore.dev/cosign/sign/v1');
      const body = { apiVersion: '0.0.1', kind: 'dsse', spec: { envelopeHash: { algorithm: 'sha256', value: sha256Hex(JSON.stringify(envelope)) }, payloadHash: { algorithm: 'sha256', value: sha256Hex(statement) }, signatures: [{ signature: sig, verifier: b64(loggedPem) }] } };
      const annotation = JSON.parse(rekorBundle(body)) as { SignedEntryTimestamp: string; Payload: { body: string } };
      // A one-leaf tree: the root is the leaf hash, and the checkpoint is a note signed by the test log.
      const root = createHash('sha256').update(Buffer.concat([Buffer.from([0]), Buffer.from(annotation.Payload.body, 'base64')])).digest();
      const note = `test-log\n1\n${root.toString('base64')}\n`;
      const noteSig = Buffer.concat([Buffer.from(logId, 'hex').subarray(0, 4), sign('sha256', Buffer.from(note), log.privateKey)]).toString('base64');
      const inclusionProof = { logIndex: '0', rootHash: root.toString('base64'), treeSize: '1', hashes: [], checkpoint: { envelope: `${note}\n\u2014 test-log ${noteSig}\n` } };
      const entry = { logIndex: '7', logId: { keyId: Buffer.from(logId, 'hex').toString('base64') }, kindVersion: { kind: 'dsse', version: '0.0.1' }, integratedTime: '1700000000', inclusionPromise: { signedEntryTimestamp: annotation.SignedEntryTimestamp }, inclusionProof, canonicalizedBody: annotation.Payload.body };
      return Buffer.from(JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', verificationMaterial: { publicKey: { hint: '' }, tlogEntries: [entry] }, dsseEnvelope: envelope }));
    }

    it('passes with the log time when the entry names the verifying key', async () => {
      const { key, pem } = newKey();
      const v = verifyBundleBlob(bundleWithEntry(key, pem), { repo, digest, policy: await policyWithRoot(pem) });
      expect(v).toMatchObject({ passed: true, keyId: parsePublicKey(pem, 'k').keyId, integratedTime: 1_700_000_000 });
    });

    it('fails as invalid tlog evidence when the entry names another key (cosign comparePublicKey)', async () => {
      const { key, pem } = newKey();
      const v = verifyBundleBlob(bundleWithEntry(key, newKey().pem), { repo, digest, policy: await policyWithRoot(pem) });
      expect(v).toMatchObject({ passed: false, reason: 'tlog evidence invalid', detail: 'tlog entry (dsse/0.0.1) names another key than the verifying one' });
    });

    it('with tlog: ignore, drops the entry unread: no log time, and another key in it does not matter', async () => {
      const { key, pem } = newKey();
      const v = verifyBundleBlob(bundleWithEntry(key, newKey().pem), { repo, digest, policy: await policyWithRoot(pem, 'ignore') });
      expect(v).toMatchObject({ passed: true });
      expect(v).not.toHaveProperty('integratedTime');
    });

    // A rekorKeys log has no URL to bind a checkpoint's signer name to; its key alone decides.
    it('passes the same bundle when the log key is given as rekorKeys instead of a trusted root', async () => {
      const { key, pem } = newKey();
      expect(verifyBundleBlob(bundleWithEntry(key, pem), { repo, digest, policy: await policyTrusting(pem) })).toMatchObject({ passed: true });
    });

    it('still fails when rekorKeys names another log key: the checkpoint and the entry must verify with it', async () => {
      const { key, pem } = newKey();
      const otherLog = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const policy = await loadPolicy({ authorities: [{ name: 'ci', keys: [pem], tlog: 'require', rekorKeys: [otherLog] }] }, { baseDir: FIXTURE_DIR });
      expect(verifyBundleBlob(bundleWithEntry(key, pem), { repo, digest, policy })).toMatchObject({ passed: false, reason: 'tlog evidence invalid' });
    });
  });
});
