/** Benchmark content, built with the test fixtures: images sharing base layers, cosign `.sig` images, a bundle. */
import { Fixtures, generateSigningKey, seededBytes, signLegacy } from '../test/support/fixtures.js';
import type { TestRegistry } from '../test/support/registry.js';
import { RawClient } from '../test/support/raw-client.js';

const MiB = 1024 * 1024;

export interface Content {
  readonly bundleDigest: string;
  /** Every manifest as a `repo:tag` or `repo@digest` reference, for the skopeo peer. */
  readonly refs: string[];
  /** Size of every blob by digest, to turn upload digests in an access log into bytes. */
  readonly blobSizes: Map<string, number>;
  readonly manifests: number;
  readonly blobs: number;
  readonly bytes: number;
}

/** Records the config and layer sizes of a pushed manifest. */
function record(sizes: Map<string, number>, manifest: Buffer): void {
  const m = JSON.parse(manifest.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  for (const d of [m.config, ...m.layers]) sizes.set(d.digest, d.size);
}

/**
 * `images` images, each one of 5 shared base layers of `baseMiB` and 2 unique 1 MiB layers, each signed, listed
 * in a signed bundle tagged `v1`.
 */
export async function buildContent(registry: TestRegistry, repo: string, images: number, baseMiB = 8): Promise<Content> {
  const client = RawClient.for(registry);
  const fx = new Fixtures(client);
  const key = generateSigningKey();
  const sizes = new Map<string, number>();
  const bases = Array.from({ length: 5 }, (_, i) => seededBytes(baseMiB * MiB, `base-${i}`));
  const pushed = [];
  for (let i = 0; i < images; i += 1) {
    const image = await fx.pushImage(repo, { layers: [bases[i % 5]!, seededBytes(MiB, `u1-${i}`), seededBytes(MiB, `u2-${i}`)] });
    record(sizes, image.manifest);
    record(sizes, (await signLegacy(client, repo, image.digest, key)).manifest);
    pushed.push(image);
  }
  const bundle = await fx.pushBundle(repo, { images: pushed.map((p) => p.ref), tag: 'v1' });
  record(sizes, bundle.manifest);
  record(sizes, (await signLegacy(client, repo, bundle.digest, key)).manifest);
  const digests = [bundle.digest, ...pushed.map((p) => p.digest)];
  return {
    bundleDigest: bundle.digest,
    refs: [`${repo}:v1`, ...digests.map((d) => `${repo}:${d.replace(':', '-')}.sig`), ...pushed.map((p) => `${repo}@${p.digest}`)],
    blobSizes: sizes,
    manifests: 2 * digests.length,
    blobs: sizes.size,
    bytes: [...sizes.values()].reduce((a, b) => a + b, 0),
  };
}

/** One image holding a single blob of `mib` MiB, in a bundle tagged `v1`. */
export async function buildBigBlob(registry: TestRegistry, repo: string, mib: number): Promise<Content> {
  const fx = new Fixtures(RawClient.for(registry));
  const sizes = new Map<string, number>();
  const image = await fx.pushImage(repo, { layers: [seededBytes(mib * MiB, 'big')] });
  record(sizes, image.manifest);
  const bundle = await fx.pushBundle(repo, { images: [image.ref], tag: 'v1' });
  record(sizes, bundle.manifest);
  return {
    bundleDigest: bundle.digest, refs: [`${repo}:v1`, `${repo}@${image.digest}`], blobSizes: sizes, manifests: 2, blobs: sizes.size,
    bytes: [...sizes.values()].reduce((a, b) => a + b, 0),
  };
}
