/** Benchmark content, built with the test fixtures: images sharing base layers, cosign `.sig` images, a bundle. */
import { Fixtures, generateSigningKey, seededBytes, signLegacy } from '../test/support/fixtures.js';
import type { TestRegistry } from '../test/support/registry.js';
import { RawClient } from '../test/support/raw-client.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The shape of the signed bundle: `images` images, each one of `bases` shared layers plus `unique` own layers. */
export interface ContentProfile {
  readonly name: string;
  readonly images: number;
  readonly bases: number;
  readonly baseBytes: number;
  readonly unique: number;
  readonly uniqueBytes: number;
}

/**
 * `issue10` (default): the shape issue #10 states its targets on — 60 images, each one of 4 shared 4 MiB
 * layers + 2 unique 512 KiB layers, every image and the bundle signed: 122 artifacts.
 * `large`: the earlier default — 100 images, 5 shared 8 MiB + 2 unique 1 MiB layers: 202 artifacts.
 */
export const PROFILES: Readonly<Record<string, ContentProfile>> = {
  issue10: { name: 'issue10', images: 60, bases: 4, baseBytes: 4 * MiB, unique: 2, uniqueBytes: 512 * KiB },
  large: { name: 'large', images: 100, bases: 5, baseBytes: 8 * MiB, unique: 2, uniqueBytes: 1 * MiB },
};

/** One manifest of the content: what the floor lane reads (by digest) and writes (by `targetTag`). */
export interface Artifact {
  readonly digest: string;
  readonly mediaType: string;
  /** The one tag the promotion needs for it in the target: `.imgpkg` (images), `.sig` (signatures), the bundle tag. */
  readonly targetTag: string;
  /** Config and layer digests. */
  readonly blobs: readonly string[];
  readonly kind: 'bundle' | 'image' | 'signature';
}

export interface Content {
  readonly bundleDigest: string;
  /** Every manifest as a `repo:tag` or `repo@digest` reference, for the skopeo peer. */
  readonly refs: string[];
  /** Size of every blob by digest, to turn upload digests in an access log into bytes. */
  readonly blobSizes: Map<string, number>;
  /** Every manifest, children first and the bundle last. */
  readonly artifacts: readonly Artifact[];
  readonly manifests: number;
  readonly blobs: number;
  readonly bytes: number;
}

/** Records the config and layer sizes of a pushed manifest and answers its blob digests. */
function record(sizes: Map<string, number>, manifest: Buffer): string[] {
  const m = JSON.parse(manifest.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  for (const d of [m.config, ...m.layers]) sizes.set(d.digest, d.size);
  return [m.config.digest, ...m.layers.map((l) => l.digest)];
}

const imgpkgTag = (digest: string): string => `${digest.replace(':', '-')}.imgpkg`;

/** `profile.images` images as the profile describes them, each signed, listed in a signed bundle tagged `v1`. */
export async function buildContent(registry: TestRegistry, repo: string, profile: ContentProfile): Promise<Content> {
  const client = RawClient.for(registry);
  const fx = new Fixtures(client);
  const key = generateSigningKey();
  const sizes = new Map<string, number>();
  const artifacts: Artifact[] = [];
  const bases = Array.from({ length: profile.bases }, (_, i) => seededBytes(profile.baseBytes, `base-${i}`));
  const pushed = [];
  const sign = async (digest: string): Promise<void> => {
    const sig = await signLegacy(client, repo, digest, key);
    artifacts.push({ digest: sig.digest, mediaType: sig.mediaType, targetTag: `${digest.replace(':', '-')}.sig`, blobs: record(sizes, sig.manifest), kind: 'signature' });
  };
  for (let i = 0; i < profile.images; i += 1) {
    const own = Array.from({ length: profile.unique }, (_, u) => seededBytes(profile.uniqueBytes, `u${u + 1}-${i}`));
    const image = await fx.pushImage(repo, { layers: [bases[i % profile.bases]!, ...own] });
    artifacts.push({ digest: image.digest, mediaType: image.mediaType, targetTag: imgpkgTag(image.digest), blobs: record(sizes, image.manifest), kind: 'image' });
    await sign(image.digest);
    pushed.push(image);
  }
  const bundle = await fx.pushBundle(repo, { images: pushed.map((p) => p.ref), tag: 'v1' });
  await sign(bundle.digest);
  artifacts.push({ digest: bundle.digest, mediaType: bundle.mediaType, targetTag: 'v1', blobs: record(sizes, bundle.manifest), kind: 'bundle' });
  const digests = [bundle.digest, ...pushed.map((p) => p.digest)];
  return {
    bundleDigest: bundle.digest,
    refs: [`${repo}:v1`, ...digests.map((d) => `${repo}:${d.replace(':', '-')}.sig`), ...pushed.map((p) => `${repo}@${p.digest}`)],
    blobSizes: sizes,
    artifacts,
    manifests: artifacts.length,
    blobs: sizes.size,
    bytes: [...sizes.values()].reduce((a, b) => a + b, 0),
  };
}

/** One image holding a single blob of `mib` MiB, in a bundle tagged `v1`. */
export async function buildBigBlob(registry: TestRegistry, repo: string, mib: number): Promise<Content> {
  const fx = new Fixtures(RawClient.for(registry));
  const sizes = new Map<string, number>();
  const image = await fx.pushImage(repo, { layers: [seededBytes(mib * MiB, 'big')] });
  const imageBlobs = record(sizes, image.manifest);
  const bundle = await fx.pushBundle(repo, { images: [image.ref], tag: 'v1' });
  const artifacts: Artifact[] = [
    { digest: image.digest, mediaType: image.mediaType, targetTag: imgpkgTag(image.digest), blobs: imageBlobs, kind: 'image' },
    { digest: bundle.digest, mediaType: bundle.mediaType, targetTag: 'v1', blobs: record(sizes, bundle.manifest), kind: 'bundle' },
  ];
  return {
    bundleDigest: bundle.digest, refs: [`${repo}:v1`, `${repo}@${image.digest}`], blobSizes: sizes, artifacts, manifests: 2, blobs: sizes.size,
    bytes: [...sizes.values()].reduce((a, b) => a + b, 0),
  };
}
