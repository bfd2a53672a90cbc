import { describe, expect, it } from 'vitest';
import { missingPrograms, setup } from '../../support/global-setup.js';

describe('global setup', () => {
  describe('when PATH holds every program', () => {
    it('finds nothing missing and passes', () => {
      expect(missingPrograms()).toEqual([]);
      expect(() => setup()).not.toThrow();
    });
  });

  describe('when PATH is empty', () => {
    it('names every program and its apt package', () => {
      expect(missingPrograms('')).toEqual([
        'docker-registry (apt package docker-registry)',
        'htpasswd (apt package apache2-utils)',
        'openssl (apt package openssl)',
        'skopeo (apt package skopeo)',
      ]);
    });
  });
});
