import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { matchKeylessIdentity } from '../../../src/cosign/index.js';
import { fixture } from './fixture-files.js';

// The keyless identity rules cosign applies and @sigstore/verify leaves out (issue #9 item 7): code-signing EKU,
// and a match against every SAN. Certificates are made with the openssl CLI (self-signed: chain, SCT and
// time checks are the library's and are tested with the real Fulcio fixture in bundle-fixture.test.ts).

const dir = mkdtempSync(join(tmpdir(), 'cert-identity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

function certificate(extensions: string[]): Buffer {
  seq += 1;
  const key = join(dir, `k${seq}.pem`);
  const out = join(dir, `c${seq}.der`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/O=sigstore.dev', '-days', '1', '-outform', 'DER', '-out', out, ...extensions.flatMap((e) => ['-addext', e])], { stdio: 'pipe' });
  return execFileSync('cat', [out]);
}

describe('matchKeylessIdentity', () => {
  describe('when the certificate has several SANs', () => {
    it('matches the identity against every SAN, not only the first URI', () => {
      const der = certificate(['subjectAltName=URI:https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main,email:release@example.com', 'extendedKeyUsage=codeSigning']);
      expect(matchKeylessIdentity(der, { identity: 'release@example.com', issuer: 'x' })).toEqual({ ok: true, subjectAlternativeName: 'release@example.com' });
      expect(matchKeylessIdentity(der, { identityRegExp: /^https:\/\/github\.com\/evil\//u, issuer: 'x' })).toMatchObject({ ok: true });
      expect(matchKeylessIdentity(der, { identity: 'other@example.com', issuer: 'x' })).toMatchObject({ ok: false, detail: expect.stringContaining('release@example.com') });
    });
  });

  describe('when the certificate is not for code signing', () => {
    it('refuses a certificate whose extended key usage lacks codeSigning', () => {
      const der = certificate(['subjectAltName=email:release@example.com', 'extendedKeyUsage=serverAuth']);
      expect(matchKeylessIdentity(der, { identity: 'release@example.com', issuer: 'x' })).toMatchObject({ ok: false, detail: expect.stringContaining('not for code signing') });
    });

    it('refuses a certificate with no extended key usage at all', () => {
      const der = certificate(['subjectAltName=email:release@example.com']);
      expect(matchKeylessIdentity(der, { identity: 'release@example.com', issuer: 'x' })).toMatchObject({ ok: false, detail: expect.stringContaining('absent') });
    });
  });

  describe('when the identity is a regular expression', () => {
    it('matches unanchored, like cosign (so policies anchor their expressions)', () => {
      const der = certificate(['subjectAltName=email:release@example.com.evil.test', 'extendedKeyUsage=codeSigning']);
      expect(matchKeylessIdentity(der, { identityRegExp: /@example\.com/u, issuer: 'x' })).toMatchObject({ ok: true });
      expect(matchKeylessIdentity(der, { identityRegExp: /^[^@]+@example\.com$/u, issuer: 'x' })).toMatchObject({ ok: false });
    });
  });

  describe('when given the real Fulcio certificate of the bundle fixture', () => {
    it('reads its email SAN and code-signing EKU', () => {
      const doc = JSON.parse(fixture('cosign-oci-attestation.sigstore.json').toString()) as { verificationMaterial: { certificate?: { rawBytes: string }; x509CertificateChain?: { certificates: { rawBytes: string }[] } } };
      const raw = doc.verificationMaterial.certificate?.rawBytes ?? doc.verificationMaterial.x509CertificateChain?.certificates[0]?.rawBytes ?? '';
      expect(matchKeylessIdentity(Buffer.from(raw, 'base64'), { identity: 'cody@soyland.com', issuer: 'x' })).toEqual({ ok: true, subjectAlternativeName: 'cody@soyland.com' });
    });
  });
});
