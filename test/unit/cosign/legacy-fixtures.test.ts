import { createHash, verify } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPolicy, parsePublicKey, serializeSimpleSigningPayload, verifySimpleSigningLayer, type Policy, type PolicyDocument } from '../../../src/cosign/index.js';
import { verifyRawSignature } from '../../../src/cosign/raw-signature.js';
import { parseRekorBundle, verifyRekorBundle, verifySet } from '../../../src/cosign/rekor-bundle.js';
import { checkBundle, legacyLayerToBundleJson, parseSigstoreBundle } from '../../../src/cosign/sigstore-verification.js';
import { loadTrustRoot, rekorKeyTrustRoot } from '../../../src/cosign/trust-root.js';
import { FIXTURE_DIR, FIXTURE_SHA256, fixture, fixtureText, sigstoreJsonLayer } from './fixture-files.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const repo = { registry: '192.168.64.2:5000', repository: 'cosign-signed-single-sample' };

const KEY1 = 'ci-cosign.pub';
const KEY2 = 'ci-cosign2.pub';
const REKOR = 'ci-rekor.pub';

async function policy(doc: Partial<PolicyDocument> & { authorities: PolicyDocument['authorities'] }): Promise<Policy> {
  return loadPolicy(doc, { baseDir: FIXTURE_DIR });
}

describe('cosign fixtures', () => {
  it('test/fixtures/cosign holds exactly the pinned upstream copies (README.md aside), byte for byte', () => {
    const names = readdirSync(FIXTURE_DIR).filter((n) => n !== 'README.md').sort();
    expect(names).toEqual(Object.keys(FIXTURE_SHA256).sort());
    for (const name of names) expect(sha256(fixture(name)), name).toBe(FIXTURE_SHA256[name]);
  });
});

describe('legacy signature #4 + #5 (key-only, no tlog)', () => {
  const layer = sigstoreJsonLayer('ci-dir-img-cosign-valid.signature-1');
  const manifestDigest = `sha256:${sha256(fixture('ci-dir-img-cosign-valid.manifest.json'))}`;
  const otherManifestDigest = `sha256:${sha256(fixture('ci-dir-img-cosign-key-rekor-valid.manifest.json'))}`;

  it('is one simplesigning layer whose only annotation is the signature', () => {
    expect(layer.mimeType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    expect(Object.keys(layer.annotations)).toEqual(['dev.cosignproject.cosign/signature']);
  });

  it('has the 261-byte payload with "optional":null, which our serialiser reproduces byte for byte', () => {
    expect(layer.payload.length).toBe(261);
    expect(sha256(layer.payload)).toMatch(/^cf482371.*dd75$/);
    expect(layer.payload.toString()).toBe(
      '{"critical":{"identity":{"docker-reference":"192.168.64.2:5000/cosign-signed-single-sample"},"image":{"docker-manifest-digest":"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"},"type":"cosign container image signature"},"optional":null}',
    );
    const ours = serializeSimpleSigningPayload({ dockerReference: `${repo.registry}/${repo.repository}`, digest: manifestDigest });
    expect(ours.equals(layer.payload)).toBe(true);
  });

  it('hashes #5 to the digest the payload claims', () => {
    expect(manifestDigest).toBe('sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00');
  });

  describe('when checking the raw signature', () => {
    const sig = Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'] as string, 'base64');
    it('is valid with key #1', () => {
      expect(verifyRawSignature(parsePublicKey(fixture(KEY1), KEY1), layer.payload, sig)).toBe(true);
    });
    it('is invalid with key #2', () => {
      expect(verifyRawSignature(parsePublicKey(fixture(KEY2), KEY2), layer.payload, sig)).toBe(false);
    });
  });

  describe('when verified as cosign does offline (tlog: require)', () => {
    it('is rejected because there is no tlog evidence', async () => {
      const p = await policy({ authorities: [{ keys: [KEY1], tlog: 'require', rekorKeys: [REKOR] }] });
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: p });
      expect(v.passed).toBe(false);
      expect(v.reason).toBe('tlog evidence missing');
      expect(v.detail).toMatch(/no dev\.sigstore\.cosign\/bundle annotation \(authority .+ requires transparency-log evidence\)/);
    });
  });

  describe('when the policy explicitly ignores tlog evidence', () => {
    it('passes against #5 with key #1', async () => {
      const p = await policy({ authorities: [{ name: 'ci', keys: [KEY1], tlog: 'ignore' }] });
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: p });
      expect(v.passed).toBe(true);
      expect(v.authorities).toEqual(['ci']);
      expect(v.payload).toEqual(JSON.parse(layer.payload.toString()));
    });
    it('fails the claim check against #7', async () => {
      const p = await policy({ authorities: [{ keys: [KEY1], tlog: 'ignore' }] });
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: otherManifestDigest, policy: p });
      expect(v.passed).toBe(false);
      expect(v.reason).toBe('digest mismatch');
    });
    it('fails with key #2 as an invalid signature', async () => {
      const p = await policy({ authorities: [{ keys: [KEY2], tlog: 'ignore' }] });
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: p });
      expect(v.reason).toBe('signature invalid');
      expect(v.detail).toMatch(/signature does not verify with key .*ci-cosign2\.pub/);
    });
    it('fails a required annotation foo=bar because optional is null', async () => {
      const p = await policy({ authorities: [{ keys: [KEY1], tlog: 'ignore' }], annotations: { foo: 'bar' } });
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: p });
      expect(v.passed).toBe(false);
      expect(v.reason).toBe('missing or incorrect annotation');
      expect(v.detail).toContain('foo');
    });
  });

  describe('with the default tlog mode (require) and a Rekor key', () => {
    // Decision (docs/verification.md#transparency-log): as strict as `cosign verify --key`; the evidence
    // annotation is unsigned, so a lenient default would let a registry writer strip it.
    it('is rejected because there is no tlog evidence', async () => {
      const p = await policy({ authorities: [{ keys: [KEY1], rekorKeys: [REKOR] }] });
      expect(p.authorities[0]?.tlog).toBe('require');
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: p });
      expect(v).toMatchObject({ passed: false, reason: 'tlog evidence missing' });
    });
  });

  describe('with an explicit tlog: if-present and a Rekor key', () => {
    it('passes, because absent evidence is allowed when asked for', async () => {
      const p = await policy({ authorities: [{ keys: [KEY1], tlog: 'if-present', rekorKeys: [REKOR] }] });
      expect(verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: p }).passed).toBe(true);
    });
  });

  describe('with the opt-in docker-reference check', () => {
    it('passes an exact match and fails after relocation', async () => {
      const exact = await policy({ authorities: [{ keys: [KEY1], tlog: 'ignore' }], dockerReference: 'exact' });
      expect(verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: exact }).passed).toBe(true);
      const moved = { registry: 'prod.example.com', repository: 'cosign-signed-single-sample' };
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo: moved, digest: manifestDigest, policy: exact });
      expect(v.reason).toBe('untrusted identity');
      const byRepo = await policy({ authorities: [{ keys: [KEY1], tlog: 'ignore' }], dockerReference: { match: 'repository', reference: '192.168.64.2:5000/cosign-signed-single-sample:v1' } });
      expect(verifySimpleSigningLayer(layer.payload, layer.annotations, { repo: moved, digest: manifestDigest, policy: byRepo }).passed).toBe(true);
    });
  });

  describe('with the opt-in type check', () => {
    it('passes cosign container image signatures', async () => {
      const p = await policy({ authorities: [{ keys: [KEY1], tlog: 'ignore' }], checkType: true });
      expect(verifySimpleSigningLayer(layer.payload, layer.annotations, { repo, digest: manifestDigest, policy: p }).passed).toBe(true);
    });
  });
});

describe('legacy signature #6 + #7 (key-based, Rekor SET)', () => {
  const layer = sigstoreJsonLayer('ci-dir-img-cosign-key-rekor-valid.signature-1');
  const manifestDigest = `sha256:${sha256(fixture('ci-dir-img-cosign-key-rekor-valid.manifest.json'))}`;
  const rekorRepo = { registry: '192.168.64.2:5000', repository: 'cosign-signed/key-1' };
  const annotation = layer.annotations['dev.sigstore.cosign/bundle'] as string;
  const sig = Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'] as string, 'base64');
  const key1 = parsePublicKey(fixture(KEY1), KEY1);
  const key2 = parsePublicKey(fixture(KEY2), KEY2);
  const rekor = rekorKeyTrustRoot(fixtureText(REKOR), REKOR);

  it('has the 253-byte payload with docker-reference …/key-1 and "optional":null', () => {
    expect(layer.payload.length).toBe(253);
    expect(sha256(layer.payload)).toBe('5f410774769a2edd4cd1ee36072223018ac93495c968a442d4208da5ca753f37');
    const doc = JSON.parse(layer.payload.toString()) as { critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string } }; optional: unknown };
    expect(doc.critical.identity['docker-reference']).toBe('192.168.64.2:5000/cosign-signed/key-1');
    expect(doc.optional).toBeNull();
    expect(layer.payload.toString()).toContain('"optional":null');
    expect(doc.critical.image['docker-manifest-digest']).toBe('sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a');
    expect(manifestDigest).toBe('sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a');
  });

  it('is signed by key #2, not key #1', () => {
    expect(verifyRawSignature(key2, layer.payload, sig)).toBe(true);
    expect(verifyRawSignature(key1, layer.payload, sig)).toBe(false);
  });

  it('carries a bundle for log entry 11608800 integrated at 1674251859 by the log of key #3', () => {
    const b = parseRekorBundle(annotation);
    if (typeof b === 'string') throw new Error(b);
    expect(b.logIndex).toBe(11608800);
    expect(b.integratedTime).toBe(1674251859);
    expect(new Date(b.integratedTime * 1000).toISOString()).toBe('2023-01-20T21:57:39.000Z');
    expect(b.logId).toBe('c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d');
    expect(rekor.tlogs[0]?.logId.toString('hex')).toBe(b.logId);
    const body = JSON.parse(Buffer.from(b.body, 'base64').toString()) as { kind: string; apiVersion: string; spec: { data: { hash: { algorithm: string; value: string } }; signature: { content: string; publicKey: { content: string } } } };
    expect([body.kind, body.apiVersion]).toEqual(['hashedrekord', '0.0.1']);
    expect(body.spec.data.hash).toEqual({ algorithm: 'sha256', value: sha256(layer.payload) });
    expect(body.spec.signature.content).toBe(layer.annotations['dev.cosignproject.cosign/signature']);
    const bodyKeyPem = Buffer.from(body.spec.signature.publicKey.content, 'base64').toString();
    expect(parsePublicKey(bodyKeyPem, 'body').spki.equals(key2.spki)).toBe(true);
  });

  describe('when checking the SET', () => {
    const b = parseRekorBundle(annotation);
    if (typeof b === 'string') throw new Error(b);
    it('verifies with key #3 over the JCS form of the four fields', () => {
      expect(verifySet(b, rekor.tlogs)).toBeUndefined();
    });
    it.each([
      ['body', { body: `${b.body.slice(0, -4)}AAA=` }],
      ['integratedTime', { integratedTime: b.integratedTime + 1 }],
      ['logIndex', { logIndex: b.logIndex + 1 }],
    ])('fails when %s changes', (_field, change) => {
      expect(verifySet({ ...b, ...change }, rekor.tlogs)).toMatch(/does not verify/);
    });
    it('fails when logID changes (no trusted log has that id)', () => {
      expect(verifySet({ ...b, logId: `${b.logId.slice(0, -1)}e` }, rekor.tlogs)).toMatch(/no trusted transparency log/);
    });
    it('fails when logID changes even if a log with that id had the same key (the SET covers logID)', () => {
      const changed = `${b.logId.slice(0, -1)}e`;
      const log = rekor.tlogs[0];
      if (log === undefined) throw new Error('no log');
      expect(verifySet({ ...b, logId: changed }, [{ ...log, logId: Buffer.from(changed, 'hex') }])).toMatch(/does not verify/);
    });
    it('is an ECDSA signature by key #3 over exactly the documented JCS string', () => {
      const jcs = `{"body":"${b.body}","integratedTime":1674251859,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d","logIndex":11608800}`;
      const rekorKey = parsePublicKey(fixture(REKOR), REKOR);
      expect(verify('sha256', Buffer.from(jcs), rekorKey.key, b.signedEntryTimestamp)).toBe(true);
      expect(verify('sha256', Buffer.from(jcs.replace('11608800', '11608801')), rekorKey.key, b.signedEntryTimestamp)).toBe(false);
    });
  });

  describe('when verifying the whole bundle annotation', () => {
    const subject = { hashHex: sha256(layer.payload), signature: sig };
    it('passes every body check with key #2', () => {
      const r = verifyRekorBundle(annotation, rekor, { ...subject, keyDer: [key2.spki] });
      expect(r.ok).toBe(true);
    });
    it('fails the key-in-body check with key #1', () => {
      const r = verifyRekorBundle(annotation, rekor, { ...subject, keyDer: [key1.spki] });
      expect(r).toEqual({ ok: false, detail: 'tlog body key is not the verifying key' });
    });
    it('fails the hash check for another payload', () => {
      const r = verifyRekorBundle(annotation, rekor, { ...subject, hashHex: sha256(Buffer.from('x')), keyDer: [key2.spki] });
      expect(r.ok).toBe(false);
    });
  });

  describe('when verified through a policy', () => {
    it('passes with key #2 and tlog: require against the Rekor key', async () => {
      const p = await policy({ authorities: [{ keys: [KEY2], tlog: 'require', rekorKeys: [REKOR] }] });
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo: rekorRepo, digest: manifestDigest, policy: p });
      expect(v.passed).toBe(true);
      expect(v.integratedTime).toBe(1674251859);
    });
    it('passes with key #2 and tlog: require against the trusted root #9', async () => {
      const p = await policy({ authorities: [{ keys: [KEY2], tlog: 'require', trustedRoot: 'cosign-trusted_root_pgi.json' }] });
      expect(verifySimpleSigningLayer(layer.payload, layer.annotations, { repo: rekorRepo, digest: manifestDigest, policy: p }).passed).toBe(true);
    });
    it('fails with key #1 as an invalid signature', async () => {
      const p = await policy({ authorities: [{ keys: [KEY1], tlog: 'require', rekorKeys: [REKOR] }] });
      expect(verifySimpleSigningLayer(layer.payload, layer.annotations, { repo: rekorRepo, digest: manifestDigest, policy: p }).reason).toBe('signature invalid');
    });
    it('cannot be checked without log keys: neither the default nor if-present loads without them', async () => {
      await expect(policy({ authorities: [{ keys: [KEY2] }] })).rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringContaining('tlog: ignore') });
      await expect(policy({ authorities: [{ keys: [KEY2], tlog: 'if-present' }] })).rejects.toMatchObject({ code: 'POLICY_INVALID' });
    });
    it('with tlog: ignore, does not even read the evidence: a tampered SET passes, with no integratedTime', async () => {
      const p = await policy({ authorities: [{ keys: [KEY2], tlog: 'ignore' }] });
      const tampered = { ...layer.annotations, 'dev.sigstore.cosign/bundle': annotation.replace('"logIndex":11608800', '"logIndex":11608801') };
      const v = verifySimpleSigningLayer(layer.payload, tampered, { repo: rekorRepo, digest: manifestDigest, policy: p });
      expect(v.passed).toBe(true);
      expect(v).not.toHaveProperty('integratedTime');
      expect(v.keyId).toBe(key2.keyId);
    });
    it('fails another encoding of the signature, valid for the key, because the log recorded other bytes', async () => {
      // ECDSA (r, s) and (r, n - s) both verify: cosign compares the logged signature byte for byte.
      const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
      const der = (x: bigint): Buffer => {
        const hex = x.toString(16).padStart(64, '0');
        const bytes = Buffer.from(hex, 'hex');
        const trimmed = bytes.subarray(bytes.findIndex((v) => v !== 0));
        return Buffer.concat([Buffer.from([0x02, trimmed.length + ((trimmed[0] ?? 0) >= 0x80 ? 1 : 0)]), (trimmed[0] ?? 0) >= 0x80 ? Buffer.from([0]) : Buffer.alloc(0), trimmed]);
      };
      const rLen = sig[3] ?? 0;
      const r = BigInt(`0x${sig.subarray(4, 4 + rLen).toString('hex')}`);
      const s = BigInt(`0x${sig.subarray(6 + rLen).toString('hex')}`);
      const body = Buffer.concat([der(r), der(n - s)]);
      const other = Buffer.concat([Buffer.from([0x30, body.length]), body]);
      expect(verifyRawSignature(key2, layer.payload, other)).toBe(true);
      const p = await policy({ authorities: [{ keys: [KEY2], tlog: 'require', rekorKeys: [REKOR] }] });
      const v = verifySimpleSigningLayer(layer.payload, { ...layer.annotations, 'dev.cosignproject.cosign/signature': other.toString('base64') }, { repo: rekorRepo, digest: manifestDigest, policy: p });
      expect(v).toMatchObject({ passed: false, reason: 'tlog evidence invalid' });
    });
    it('fails as invalid tlog evidence when the SET was tampered with', async () => {
      const p = await policy({ authorities: [{ keys: [KEY2], tlog: 'if-present', rekorKeys: [REKOR] }] });
      const tampered = { ...layer.annotations, 'dev.sigstore.cosign/bundle': annotation.replace('"logIndex":11608800', '"logIndex":11608801') };
      const v = verifySimpleSigningLayer(layer.payload, tampered, { repo: rekorRepo, digest: manifestDigest, policy: p });
      expect(v.reason).toBe('tlog evidence invalid');
      expect(v.detail).toBe('signed entry timestamp does not verify with the log key');
    });
    it('fails when the log key was not valid at integratedTime', async () => {
      const root = JSON.parse(fixtureText('cosign-trusted_root_pgi.json')) as { tlogs: { publicKey: { validFor: { start: string } } }[] };
      const first = root.tlogs[0];
      if (first === undefined) throw new Error('no tlog');
      first.publicKey.validFor.start = '2024-01-01T00:00:00Z';
      const p = await policy({ authorities: [{ keys: [KEY2], tlog: 'require', trustedRoot: root }] });
      const v = verifySimpleSigningLayer(layer.payload, layer.annotations, { repo: rekorRepo, digest: manifestDigest, policy: p });
      expect(v.reason).toBe('tlog evidence invalid');
      expect(v.detail).toMatch(/not trusted at integratedTime/);
    });
  });

  describe('when repackaged as a v0.1 sigstore bundle', () => {
    const toBundle = (payload: Buffer) => {
      const json = legacyLayerToBundleJson({ kind: 'message', payload, signature: sig }, { rekorBundle: annotation }, key2.keyId);
      if (typeof json === 'string') throw new Error(json);
      const parsed = parseSigstoreBundle(json);
      if (!parsed.ok) throw new Error(parsed.detail);
      return parsed.bundle;
    };

    it('verifies with @sigstore/verify, default thresholds, root #9 and key #2', async () => {
      const root = await loadTrustRoot(`${FIXTURE_DIR}cosign-trusted_root_pgi.json`);
      expect(checkBundle(toBundle(layer.payload), { trust: root, key: key2.key, artifact: layer.payload })).toEqual({ ok: true, signer: {} });
    });
    it('gives SIGNATURE_ERROR with key #1', async () => {
      const root = await loadTrustRoot(`${FIXTURE_DIR}cosign-trusted_root_pgi.json`);
      const r = checkBundle(toBundle(layer.payload), { trust: root, key: key1.key, artifact: layer.payload });
      expect(r.ok ? 'ok' : r.code).toBe('SIGNATURE_ERROR');
    });
    it('gives TLOG_BODY_ERROR (digest mismatch) when one payload byte changes', async () => {
      const root = await loadTrustRoot(`${FIXTURE_DIR}cosign-trusted_root_pgi.json`);
      const changed = Buffer.from(layer.payload);
      changed[changed.length - 2] = 0x20;
      const r = checkBundle(toBundle(changed), { trust: root, key: key2.key, artifact: changed });
      expect(r.ok ? 'ok' : `${r.code} ${r.message}`).toBe('TLOG_BODY_ERROR digest mismatch');
    });
  });
});
