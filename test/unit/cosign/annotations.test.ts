import { describe, expect, it } from 'vitest';
import { parseAnnotationFlags } from '../../../src/cosign/index.js';
import { annotationMismatches } from '../../../src/cosign/annotations.js';

describe('parseAnnotationFlags', () => {
  describe('when given cosign -a values', () => {
    it('splits each entry at the first "=" and keeps later "=" in the value', () => {
      expect(parseAnnotationFlags(['a=b=c', 'e2e-tests-passed=True'])).toEqual({ a: 'b=c', 'e2e-tests-passed': 'True' });
    });
    it('splits commas into entries, so "k=a,b" has a bad second entry', () => {
      expect(parseAnnotationFlags(['x=1,y=2'])).toEqual({ x: '1', y: '2' });
      expect(() => parseAnnotationFlags(['k=a,b'])).toThrow(/"b" must be key=value/);
    });
    it('keeps a quoted comma (pflag string slices are CSV records)', () => {
      expect(parseAnnotationFlags(['"k=a,b"'])).toEqual({ k: 'a,b' });
    });
    it('keeps the last value of a repeated key and allows empty values', () => {
      expect(parseAnnotationFlags(['k=1', 'k=2', 'e='])).toEqual({ k: '2', e: '' });
    });
    it('refuses entries without a key', () => {
      expect(() => parseAnnotationFlags(['=v'])).toThrow(/key=value/);
      expect(() => parseAnnotationFlags(['novalue'])).toThrow(/key=value/);
    });
  });
});

describe('annotationMismatches', () => {
  describe('when comparing required with signed annotations', () => {
    it('accepts a subset with exactly equal strings', () => {
      expect(annotationMismatches({ a: '1' }, { a: '1', extra: 'x' })).toEqual([]);
      expect(annotationMismatches({}, null)).toEqual([]);
    });
    it('never matches a signed number or boolean against a string', () => {
      expect(annotationMismatches({ timestamp: '1657296609', ok: 'true' }, { timestamp: 1657296609, ok: true })).toEqual(['timestamp', 'ok']);
    });
    it('does not match "k=" against an absent key', () => {
      expect(annotationMismatches({ k: '' }, {})).toEqual(['k']);
      expect(annotationMismatches({ k: '' }, { k: '' })).toEqual([]);
    });
    it('does not read inherited properties', () => {
      expect(annotationMismatches({ toString: 'x' }, {})).toEqual(['toString']);
    });
  });
});
