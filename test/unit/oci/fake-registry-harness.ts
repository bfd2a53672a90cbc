/** What the registry-client tests share: fake registries and clients closed after each test, and a manifest. */
import { afterEach } from 'vitest';
import { MediaTypes, RegistryClient, type RegistryClientOptions, type Repository } from '../../../src/oci/index.js';
import { FakeRegistry, type FakeRegistryOptions } from './fake-registry.js';

/** A minimal OCI image manifest (config digest of ones, no layers). */
export const TEST_MANIFEST = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: `sha256:${'1'.repeat(64)}`, size: 2 },
  layers: [],
}));

export interface FakeRegistryHarness {
  /** Runs `close` after the current test (in reverse order of registration). */
  cleanup(close: () => Promise<void>): void;
  /** A fake registry on port 0, with `app:v1` = {@link TEST_MANIFEST} when `seedManifest`. */
  fake(options?: FakeRegistryOptions): Promise<FakeRegistry>;
  /** A client speaking plain HTTP to `hosts`, with the harness's defaults under `options`. */
  client(hosts: readonly string[], options?: RegistryClientOptions): RegistryClient;
  repo(f: FakeRegistry, name: string): Repository;
}

/** Call at the top level of a test file: registers the `afterEach` that closes what the tests opened. */
export function fakeRegistryHarness(defaults: { client?: RegistryClientOptions; seedManifest?: boolean } = {}): FakeRegistryHarness {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const cleanup = (close: () => Promise<void>) => {
    cleanups.push(close);
  };
  return {
    cleanup,
    async fake(options = {}) {
      const f = await FakeRegistry.start(options);
      cleanup(() => f.close());
      if (defaults.seedManifest === true) f.putManifest('app', 'v1', TEST_MANIFEST, MediaTypes.ociManifest);
      return f;
    },
    client(hosts, options = {}) {
      const c = new RegistryClient({ insecure: hosts, ...defaults.client, ...options });
      cleanup(() => c.close());
      return c;
    },
    repo: (f, name) => ({ registry: f.host, repository: name }),
  };
}
