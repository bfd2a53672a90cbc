import { describe, expect, it } from 'vitest';
import { MediaTypes, digestOf, isImageManifest, isIndex, isNonDistributable, parseManifest, type RawManifest } from '../../../src/oci/index.js';
import { failureOf } from '../../support/failure.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function raw(body: unknown, mediaType = ''): RawManifest {
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return { mediaType, digest: digestOf(bytes), bytes };
}

function image(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: D1, size: 10 },
    layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: D2, size: 20, annotations: { 'org.opencontainers.image.title': 'x' } }],
    ...extra,
  };
}


describe('parseManifest', () => {
  describe('when given an OCI image manifest', () => {
    it('returns the typed model and keeps the exact bytes', () => {
      const input = raw(image({ annotations: { a: 'b' }, artifactType: 'application/x-test' }), MediaTypes.ociManifest);
      const m = parseManifest(input);
      expect(m.kind).toBe('image');
      if (m.kind !== 'image') return;
      expect(m.config).toEqual({ mediaType: MediaTypes.ociConfig, digest: D1, size: 10 });
      expect(m.layers[0]?.annotations).toEqual({ 'org.opencontainers.image.title': 'x' });
      expect(m.annotations).toEqual({ a: 'b' });
      expect(m.artifactType).toBe('application/x-test');
      expect(m.raw.bytes).toBe(input.bytes);
    });
    it('reads a subject descriptor', () => {
      const m = parseManifest(raw(image({ subject: { mediaType: MediaTypes.ociManifest, digest: D2, size: 5 } })));
      expect(m.subject?.digest).toBe(D2);
    });
  });

  describe('when given an index', () => {
    it('returns its manifests with platforms', () => {
      const body = {
        schemaVersion: 2,
        mediaType: MediaTypes.ociIndex,
        manifests: [{ mediaType: MediaTypes.ociManifest, digest: D1, size: 3, platform: { os: 'linux', architecture: 'amd64' } }],
      };
      const m = parseManifest(raw(body, MediaTypes.ociIndex));
      expect(m.kind).toBe('index');
      if (m.kind === 'index') expect(m.manifests[0]?.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    });
    it('accepts a Docker manifest list', () => {
      const body = { schemaVersion: 2, mediaType: MediaTypes.dockerManifestList, manifests: [] };
      expect(parseManifest(raw(body)).kind).toBe('index');
    });
  });

  describe('when the body has no mediaType', () => {
    it('takes it from the Content-Type', () => {
      const { mediaType: _, ...body } = image();
      expect(parseManifest(raw(body, MediaTypes.ociManifest)).mediaType).toBe(MediaTypes.ociManifest);
    });
    it('infers it from the shape when the Content-Type is generic', () => {
      expect(parseManifest(raw({ schemaVersion: 2, manifests: [] }, 'application/json')).kind).toBe('index');
    });
  });

  describe('when body and Content-Type disagree', () => {
    it('refuses with MANIFEST_INVALID naming both', () => {
      const f = failureOf(() => parseManifest(raw(image(), MediaTypes.dockerManifest)));
      expect(f.code).toBe('MANIFEST_INVALID');
      expect(f.message).toContain(MediaTypes.ociManifest);
      expect(f.message).toContain(MediaTypes.dockerManifest);
    });
  });

  describe('when the media type is not a manifest', () => {
    it('refuses with UNSUPPORTED_MEDIA_TYPE naming it', () => {
      const f = failureOf(() => parseManifest(raw(image({ mediaType: 'application/vnd.example+json' }))));
      expect(f.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(f.message).toContain('application/vnd.example+json');
    });
    it('refuses schema 1', () => {
      const f = failureOf(() => parseManifest(raw({ schemaVersion: 1, name: 'x', fsLayers: [] })));
      expect(f.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(f.message).toContain('schema 1');
    });
  });

  describe('when the shape is wrong', () => {
    it.each([
      ['not JSON', '{', 'not valid JSON'],
      ['an array', '[]', 'not a JSON object'],
      ['schemaVersion 3', image({ schemaVersion: 3 }), 'schemaVersion'],
      ['no config', image({ config: undefined }), '"config"'],
      ['layers not an array', image({ layers: {} }), '"layers"'],
      ['a negative size', image({ layers: [{ mediaType: 'x', digest: D1, size: -1 }] }), 'layers[0].size'],
      ['a fractional size', image({ layers: [{ mediaType: 'x', digest: D1, size: 1.5 }] }), 'layers[0].size'],
      ['a bad digest', image({ layers: [{ mediaType: 'x', digest: 'sha256:nothex', size: 1 }] }), 'layers[0].digest'],
      ['no descriptor mediaType', image({ config: { digest: D1, size: 1 } }), 'config.mediaType'],
      ['non-string annotations', image({ annotations: { a: 1 } }), 'annotations'],
      ['an index without manifests', { schemaVersion: 2, mediaType: MediaTypes.ociIndex }, '"manifests"'],
    ])('refuses %s with MANIFEST_INVALID', (_name, body, part) => {
      const input = raw(body);
      const f = failureOf(() => parseManifest(input));
      expect(f.code).toBe('MANIFEST_INVALID');
      expect(f.message).toContain(input.digest);
      expect(f.message).toContain(part);
    });
    it('refuses a non-sha256 descriptor digest with UNSUPPORTED_DIGEST', () => {
      const f = failureOf(() => parseManifest(raw(image({ layers: [{ mediaType: 'x', digest: `sha512:${'f'.repeat(128)}`, size: 1 }] }))));
      expect(f.code).toBe('UNSUPPORTED_DIGEST');
    });
  });
});

describe('media type predicates', () => {
  it('tell indexes, image manifests and non-distributable layers apart', () => {
    expect(isIndex(MediaTypes.ociIndex) && isIndex(MediaTypes.dockerManifestList)).toBe(true);
    expect(isIndex(MediaTypes.ociManifest)).toBe(false);
    expect(isImageManifest(MediaTypes.dockerManifest) && isImageManifest(MediaTypes.ociManifest)).toBe(true);
    expect(isNonDistributable(MediaTypes.dockerForeignLayer)).toBe(true);
    expect(isNonDistributable(MediaTypes.ociLayerNondistributableGzip)).toBe(true);
    expect(isNonDistributable(MediaTypes.ociLayerGzip)).toBe(false);
  });
});

describe('digestOf', () => {
  it('is the sha256 of the bytes', () => {
    expect(digestOf(Buffer.from(''))).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
