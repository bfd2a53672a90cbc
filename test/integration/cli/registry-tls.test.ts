import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { cli } from './run-cli.js';

describe('bundle-promoter against a TLS registry', () => {
  let registry: TestRegistry;

  beforeAll(async () => {
    registry = await startRegistry({ tls: true });
  });
  afterAll(async () => registry?.stop());

  describe('when its certificate is not trusted', () => {
    it('exits 1 naming the CLI flags and the BundlePromotion fields that fix it', async () => {
      const r = await cli(['plan', '-b', `${registry.host}/tls/app:v1`, '--to-repo', `${registry.host}/tls/prod`], { env: { ...process.env, NODE_EXTRA_CA_CERTS: '' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^bundle-promoter: error: \[TLS_CONFIG\] .*TLS with registry 127\.0\.0\.1:\d+ failed \(\w+\)/);
      expect(r.stderr).toContain('trust its CA (CLI --registry-ca-cert-path FILE, BundlePromotion spec.registry.ca)');
      expect(r.stderr).toContain(`mark it insecure (--registry-insecure ${registry.host}, spec.registry.insecure)`);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    });
  });

  describe('when its CA is given with --registry-ca-cert-path', () => {
    it('gets past TLS: the missing bundle is the failure', async () => {
      const r = await cli(['plan', '-b', `${registry.host}/tls/app:v1`, '--to-repo', `${registry.host}/tls/prod`, '--registry-ca-cert-path', registry.caFile ?? '']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^bundle-promoter: error: \[MANIFEST_NOT_FOUND\]/);
    });
  });
});
