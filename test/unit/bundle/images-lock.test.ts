import { describe, expect, it } from 'vitest';
import { parseImagesLock } from '../../../src/bundle/index.js';
import { isPromoteError } from '../../../src/errors.js';

const d1 = `sha256:${'a'.repeat(64)}`;
const d2 = `sha256:${'b'.repeat(64)}`;

function error(text: string): string {
  try {
    parseImagesLock(text, 'bundle x');
  } catch (err) {
    if (isPromoteError(err, 'IMAGES_LOCK_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected IMAGES_LOCK_INVALID');
}

describe('parseImagesLock', () => {
  describe('when the lock is well formed', () => {
    it('normalises every image and keeps annotations', () => {
      const lock = parseImagesLock(`---
apiVersion: imgpkg.carvel.dev/v1alpha1
kind: ImagesLock
images:
- image: nginx@${d1}
  annotations:
    kbld.carvel.dev/id: nginx
- image: 127.0.0.1:5000/app/x@${d2}
`, 'bundle x');
      expect(lock.images.map((i) => i.image)).toEqual([`index.docker.io/library/nginx@${d1}`, `127.0.0.1:5000/app/x@${d2}`]);
      expect(lock.images[0]?.annotations).toEqual({ 'kbld.carvel.dev/id': 'nginx' });
      expect(lock.images[1]?.ref).toMatchObject({ registry: '127.0.0.1:5000', repository: 'app/x', digest: d2 });
    });

    it('accepts a lock without images', () => {
      expect(parseImagesLock('apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n', 'b').images).toEqual([]);
    });
  });

  describe('when an image is not pinned by digest', () => {
    it('names the image and asks for digest form', () => {
      expect(error('apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: nginx:1.25\n'))
        .toMatch(/images\[0\]\.image: expected ref to be in digest form, got 'nginx:1\.25'/);
    });
  });

  describe('when the lock has an unknown field', () => {
    it('refuses it like imgpkg strict parsing', () => {
      expect(error(`apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: a@${d1}\n  extra: 1\n`)).toContain("unknown field 'images[0].extra'");
      expect(error('apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nfoo: bar\n')).toContain("unknown field 'foo'");
    });
  });

  describe('when apiVersion or kind is wrong', () => {
    it('names the wrong value', () => {
      expect(error('apiVersion: v1\nkind: ImagesLock\n')).toContain("apiVersion 'v1'");
      expect(error('apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\n')).toContain("kind 'BundleLock'");
    });
  });

  describe('when the YAML is malformed or hostile', () => {
    it('refuses duplicate keys and aliases', () => {
      expect(error('apiVersion: a\napiVersion: b\n')).toContain('not valid YAML');
      expect(error('x: &a [1]\ny: *a\n')).toMatch(/not valid YAML|unknown field/);
    });
  });
});
