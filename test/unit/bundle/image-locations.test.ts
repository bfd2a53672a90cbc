import { gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildImageLocationsImage, imageLocationsTag, imageLocationsYaml, parseImageLocationsYaml, readFileFromLayer, isImageLocationsYml } from '../../../src/bundle/index.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

describe('image locations', () => {
  describe('when serialised', () => {
    it('writes imgpkg\'s format: --- prefix, sorted keys, images sorted by image', () => {
      expect(imageLocationsYaml([{ image: `r.example/z@${d('b')}`, isBundle: true }, { image: `r.example/a@${d('a')}`, isBundle: false }])).toBe(
        `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n- image: r.example/a@${d('a')}\n  isBundle: false\n- image: r.example/z@${d('b')}\n  isBundle: true\nkind: ImageLocations\n`);
    });

    it('writes images: null when the bundle has no images', () => {
      expect(imageLocationsYaml([])).toBe('---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages: null\nkind: ImageLocations\n');
    });

    it('round-trips through the parser', () => {
      const images = [{ image: `r.example/a@${d('a')}`, isBundle: false }];
      expect(parseImageLocationsYaml(imageLocationsYaml(images), 'x')).toEqual(images);
    });
  });

  describe('when built as an image', () => {
    it('is deterministic, Docker-typed, and holds image-locations.yml', async () => {
      const images = [{ image: `r.example/a@${d('a')}`, isBundle: false }];
      const a = await buildImageLocationsImage(images);
      const b = await buildImageLocationsImage(images);
      expect(a.manifest.digest).toBe(b.manifest.digest);
      expect(a.manifest.digest).toBe(`sha256:${createHash('sha256').update(a.manifest.bytes).digest('hex')}`);
      const manifest = JSON.parse(a.manifest.bytes.toString());
      expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      expect(manifest.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
      expect(manifest.layers).toHaveLength(1);
      expect(manifest.layers[0].mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
      const layer = a.blobs.find((x) => x.digest === manifest.layers[0].digest)!.bytes;
      const config = JSON.parse(a.blobs.find((x) => x.digest === manifest.config.digest)!.bytes.toString());
      expect(config.config).toEqual({});
      expect(config.rootfs.diff_ids[0]).toBe(`sha256:${createHash('sha256').update(gunzipSync(layer)).digest('hex')}`);
      const text = await readFileFromLayer(layer, isImageLocationsYml, { layer: 'l', file: 'image-locations.yml', maxFileBytes: 1 << 20 });
      expect(text).toBe(imageLocationsYaml(images));
    });

    it('is tagged after the bundle digest', () => {
      expect(imageLocationsTag(d('c'))).toBe(`sha256-${'c'.repeat(64)}.image-locations.imgpkg`);
    });
  });
});
