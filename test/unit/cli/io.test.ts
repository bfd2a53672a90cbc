import { describe, expect, it } from 'vitest';
import { counted } from '../../../src/cli/io.js';

describe('counted', () => {
  describe('when the count is 1', () => {
    it('uses the singular', () => {
      expect(counted(1, 'bundle')).toBe('1 bundle');
      expect(counted(1, 'signature tag')).toBe('1 signature tag');
    });
  });

  describe('when the count is 0 or more than 1', () => {
    it('uses the plural, regular or given', () => {
      expect(counted(0, 'image')).toBe('0 images');
      expect(counted(17, 'manifest')).toBe('17 manifests');
      expect(counted(2, 'index', 'indexes')).toBe('2 indexes');
    });
  });
});
