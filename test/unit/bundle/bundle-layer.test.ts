import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { readFileFromLayer, isImagesYml, DEFAULT_BUNDLE_LAYER_LIMITS } from '../../../src/bundle/index.js';
import { rejectionOf } from '../../support/failure.js';

async function tarOf(entries: { name: string; content?: string; type?: 'file' | 'directory' | 'symlink'; linkname?: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    pack.entry({ name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}) }, e.content ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const what = { layer: 'sha256:test', file: '.imgpkg/images.yml', maxFileBytes: 1024 };

describe('readFileFromLayer', () => {
  describe('when the layer holds .imgpkg/images.yml', () => {
    it('returns its text, with or without a ./ prefix', async () => {
      const plain = gzipSync(await tarOf([{ name: '.imgpkg/images.yml', content: 'a: 1' }]));
      const dotted = gzipSync(await tarOf([{ name: './.imgpkg/images.yml', content: 'b: 2' }]));
      expect(await readFileFromLayer(plain, isImagesYml, what)).toBe('a: 1');
      expect(await readFileFromLayer(dotted, isImagesYml, what)).toBe('b: 2');
    });

    it('takes the first matching entry, as imgpkg does', async () => {
      const layer = gzipSync(await tarOf([{ name: '.imgpkg/images.yml', content: 'first' }, { name: './.imgpkg/images.yml', content: 'second' }]));
      expect(await readFileFromLayer(layer, isImagesYml, what)).toBe('first');
    });
  });

  describe('when the file is absent', () => {
    it('returns undefined', async () => {
      const layer = gzipSync(await tarOf([{ name: 'config.yml', content: 'x' }]));
      expect(await readFileFromLayer(layer, isImagesYml, what)).toBeUndefined();
    });
  });

  describe('when an entry escapes the bundle root', () => {
    it('refuses a ../ path even after the wanted file', async () => {
      const layer = gzipSync(await tarOf([{ name: '.imgpkg/images.yml', content: 'ok' }, { name: 'a/../../etc/passwd', content: 'x' }]));
      const f = await rejectionOf(readFileFromLayer(layer, isImagesYml, what));
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toContain('a/../../etc/passwd');
    });

    it('refuses an absolute path', async () => {
      const layer = gzipSync(await tarOf([{ name: '/etc/passwd', content: 'x' }]));
      expect((await rejectionOf(readFileFromLayer(layer, isImagesYml, what))).code).toBe('BUNDLE_LAYER_UNSAFE');
    });

    it('refuses a symlink pointing outside', async () => {
      const layer = gzipSync(await tarOf([{ name: 'evil', type: 'symlink', linkname: '../../../etc' }]));
      const f = await rejectionOf(readFileFromLayer(layer, isImagesYml, what));
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toContain('evil');
    });
  });

  describe('when the layer is a gzip bomb', () => {
    it('stops at the decompression limit', async () => {
      const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
      expect(bomb.length).toBeLessThan(256 * 1024);
      const f = await rejectionOf(readFileFromLayer(bomb, isImagesYml, what, { ...DEFAULT_BUNDLE_LAYER_LIMITS, maxDecompressedBytes: 8 * 1024 * 1024 }));
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toMatch(/decompresses to more than 8388608 bytes/);
    });
  });

  describe('when images.yml is larger than allowed', () => {
    it('refuses it by its header size without reading it', async () => {
      const layer = gzipSync(await tarOf([{ name: '.imgpkg/images.yml', content: 'x'.repeat(2048) }]));
      const f = await rejectionOf(readFileFromLayer(layer, isImagesYml, what));
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toContain('2048 bytes');
    });
  });

  describe('when the layer has too many entries', () => {
    it('stops at the entry limit', async () => {
      const layer = gzipSync(await tarOf(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}` }))));
      const f = await rejectionOf(readFileFromLayer(layer, isImagesYml, what, { ...DEFAULT_BUNDLE_LAYER_LIMITS, maxEntries: 10 }));
      expect(f.code).toBe('BUNDLE_LAYER_UNSAFE');
      expect(f.message).toContain('more than 10 tar entries');
    });
  });

  describe('when the bytes are not gzip', () => {
    it('says the layer is not a readable gzip tar', async () => {
      const f = await rejectionOf(readFileFromLayer(Buffer.from('not gzip at all'), isImagesYml, what));
      expect(f.code).toBe('BUNDLE_INVALID');
      expect(f.message).toContain('sha256:test');
    });
  });
});
