import { describe, expect, it } from 'vitest';
import { goJson, mergeReferrersIndex, serializeIndex } from '../../../src/oci/index.js';
import { isPromoteError } from '../../../src/errors.js';

const d = (c: string, extra: Record<string, unknown> = {}) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, digest: `sha256:${c.repeat(64)}`, ...extra });

describe('goJson', () => {
  it('escapes <, > and & as Go encoding/json does', () => {
    expect(goJson({ a: '<b>&' })).toBe('{"a":"\\u003cb\\u003e\\u0026"}');
  });
});

describe('mergeReferrersIndex', () => {
  describe('when there is no index yet', () => {
    it('writes one, sorted by digest, in ggcr field order', () => {
      const bytes = mergeReferrersIndex(undefined, [d('b', { artifactType: 'x/y' }), d('a')], 'tag');
      expect(bytes?.toString()).toBe(
        `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[${JSON.stringify(d('a'))},{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":10,"digest":"sha256:${'b'.repeat(64)}","artifactType":"x/y"}]}`);
    });
  });

  describe('when the index exists', () => {
    it('adds only new digests and keeps the index annotations', () => {
      const existing = serializeIndex([d('c')], { keep: 'me' });
      const merged = JSON.parse(mergeReferrersIndex(existing, [d('a'), d('c')], 'tag')!.toString());
      expect(merged.manifests.map((m: { digest: string }) => m.digest[7])).toEqual(['a', 'c']);
      expect(merged.annotations).toEqual({ keep: 'me' });
    });

    it('answers undefined when every referrer is listed already', () => {
      expect(mergeReferrersIndex(serializeIndex([d('a')]), [d('a')], 'tag')).toBeUndefined();
    });

    it('refuses something that is not an index, naming the tag', () => {
      try {
        mergeReferrersIndex(Buffer.from('{"layers":[]}'), [d('a')], 'r.example/app:sha256-abc');
        expect.unreachable();
      } catch (err) {
        expect(isPromoteError(err, 'MANIFEST_INVALID') && err.message).toContain('r.example/app:sha256-abc');
      }
    });
  });
});
