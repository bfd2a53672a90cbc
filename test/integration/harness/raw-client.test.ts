import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, sha256Digest } from '../../support/raw-client.js';
import { startRegistry, type RegistryOptions, type TestRegistry } from '../../support/registry.js';

describe('RawClient', () => {
  describe.each<{ name: string; options: RegistryOptions }>([
    { name: 'anonymous', options: {} },
    { name: 'basic', options: { auth: 'basic' } },
    { name: 'bearer', options: { auth: 'token' } },
    { name: 'TLS', options: { tls: true } },
  ])('when the registry uses $name access', ({ options }) => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await startRegistry(options);
    });
    afterAll(async () => {
      await registry.stop();
    });

    it('round-trips blobs, an OCI manifest, tags and a delete', async () => {
      const client = RawClient.for(registry);
      const config = Buffer.from('{}');
      const layer = Buffer.from('layer bytes');
      expect(await client.pushBlob('ns/app', config)).toBe(sha256Digest(config));
      const layerDigest = await client.pushBlob('ns/app', layer);
      expect(await client.blobExists('ns/app', layerDigest)).toBe(true);
      expect(await client.blobExists('ns/app', sha256Digest(Buffer.from('absent')))).toBe(false);
      expect(await client.getBlob('ns/app', layerDigest)).toEqual(layer);

      const mediaType = 'application/vnd.oci.image.manifest.v1+json';
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: sha256Digest(config) },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', size: layer.length, digest: layerDigest }],
        }),
      );
      const digest = await client.pushManifest('ns/app', 'v1', manifest, mediaType);
      expect(digest).toBe(sha256Digest(manifest));

      const fetched = await client.getManifest('ns/app', 'v1');
      expect(fetched).toEqual({ bytes: manifest, mediaType, digest });
      expect(await client.headManifest('ns/app', digest)).toEqual({ mediaType, digest, size: manifest.length });
      expect(await client.manifestExists('ns/app', 'v2')).toBe(false);
      expect(await client.findManifest('ns/app', 'v2')).toBeUndefined();
      await expect(client.getManifest('ns/app', 'v2')).rejects.toMatchObject({ status: 404 });
      expect(await client.listTags('ns/app')).toEqual(['v1']);
      expect(await client.listTags('ns/never')).toEqual([]);

      await client.deleteManifest('ns/app', digest);
      expect(await client.manifestExists('ns/app', 'v1')).toBe(false);
    });
  });
});
