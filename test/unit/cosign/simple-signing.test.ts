import { describe, expect, it } from 'vitest';
import { serializeSimpleSigningPayload } from '../../../src/cosign/index.js';
import { parseSimpleSigningPayload } from '../../../src/cosign/simple-signing.js';
import { signatureConfigBytes } from '../../../src/cosign/signature-image.js';
import { serializeImageManifest } from '../../../src/oci/index.js';
import { serializeSignStatement } from '../../../src/cosign/in-toto.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('serializeSimpleSigningPayload', () => {
  describe('when there are annotations', () => {
    it('writes them sorted (bytewise UTF-8) with <>& escaped as Go does', () => {
      const bytes = serializeSimpleSigningPayload({ dockerReference: 'r.io/team/app', digest, annotations: { z: '1', b: '<a&b>', a: 'x' } });
      expect(bytes.toString()).toBe(
        `{"critical":{"identity":{"docker-reference":"r.io/team/app"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":{"a":"x","b":"\\u003ca\\u0026b\\u003e","z":"1"}}`,
      );
    });
  });
  describe('when there are none', () => {
    it('writes "optional":null', () => {
      expect(serializeSimpleSigningPayload({ dockerReference: 'r/x', digest, annotations: {} }).toString()).toMatch(/"optional":null}$/);
    });
  });
});

describe('parseSimpleSigningPayload', () => {
  describe('when the payload is ambiguous to Go readers', () => {
    it.each([
      ['a duplicate key', `{"critical":{"image":{"docker-manifest-digest":"${digest}","docker-manifest-digest":"sha256:evil"}},"optional":null}`],
      ['a case-folded field name', `{"critical":{"image":{"docker-manifest-digest":"${digest}"},"Image":{}},"optional":null}`],
      ['a Kelvin-sign field name', `{"critical":{"image":{"docker-manifest-digest":"${digest}","doc\u212aer-manifest-digest":"sha256:evil"}},"optional":null}`],
      ['a case-folded top-level field', `{"critical":{"image":{"docker-manifest-digest":"${digest}"}},"optional":null,"Critical":{}}`],
    ])('refuses %s', (_what, text) => {
      expect(parseSimpleSigningPayload(Buffer.from(text)).ok).toBe(false);
    });
  });
  describe('when optional is not an object', () => {
    it('refuses it', () => {
      expect(parseSimpleSigningPayload(Buffer.from(`{"critical":{"image":{"docker-manifest-digest":"${digest}"}},"optional":"x"}`)).ok).toBe(false);
    });
  });
});

describe('signature image layout', () => {
  describe('when building the config of a one-signature image', () => {
    it('is the 233-byte ggcr config', () => {
      const c = signatureConfigBytes([digest]);
      expect(c.length).toBe(233);
      expect(c.toString()).toBe(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${digest}"]},"config":{}}`);
    });
    it('repeats history and diff ids per signature', () => {
      const c = JSON.parse(signatureConfigBytes([digest, digest.replace(/a/g, 'b')]).toString()) as { history: unknown[]; rootfs: { diff_ids: unknown[] } };
      expect(c.history).toHaveLength(2);
      expect(c.rootfs.diff_ids).toHaveLength(2);
    });
  });
  describe('when serialising a manifest', () => {
    it('uses ggcr key order', () => {
      const m = serializeImageManifest({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'c', size: 2, digest },
        layers: [{ mediaType: 'l', size: 1, digest, annotations: { z: '1', a: '2' } }],
        annotations: { k: 'v' },
        subject: { mediaType: 's', size: 3, digest },
        artifactType: 'at',
      }).toString();
      expect(m).toBe(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"c","size":2,"digest":"${digest}"},"layers":[{"mediaType":"l","size":1,"digest":"${digest}","annotations":{"a":"2","z":"1"}}],"annotations":{"k":"v"},"subject":{"mediaType":"s","size":3,"digest":"${digest}"},"artifactType":"at"}`);
    });
  });
});

describe('serializeSignStatement', () => {
  it('writes the cosign v3 Statement v1 with annotations in the subject', () => {
    expect(JSON.parse(serializeSignStatement('ab', { k: 'v' }).toString())).toEqual({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ digest: { sha256: 'ab' }, annotations: { k: 'v' } }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    });
    expect(serializeSignStatement('ab', {}).toString()).not.toContain('annotations');
  });
});
