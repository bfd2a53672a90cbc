/**
 * Realistic registry content for tests and the benchmark, pushed through the independent {@link RawClient}:
 * images, multi-arch indexes, imgpkg bundles exactly as `imgpkg push` builds them (imgpkg-bundles.md §1.3, §2.1),
 * hostile bundles, and cosign signatures/attestations/SBOMs/referrers (see `cosign-fixtures.ts`).
 * Content is deterministic per seed; only signatures (ECDSA) and registry ports vary between runs.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import {
  attachSbom,
  attachSigstoreBundleReferrer,
  attestLegacy,
  cosignTag,
  generateSigningKey,
  keySignedSigstoreBundle,
  referrersTag,
  signLegacy,
  type LegacyAttestation,
  type LegacySignature,
  type LegacySignOptions,
  type PushedArtifact,
  type PushedReferrer,
  type ReferrerOptions,
  type SigningKey,
} from './cosign-fixtures.js';
import { RawClient, sha256Digest } from './raw-client.js';
import type { TestRegistry } from './registry.js';
import { gzip, packTar, type TarEntry } from './tar.js';

export * from './cosign-fixtures.js';
export { gzip, gzipBomb, packTar, readTar, type ReadTarEntry, type TarEntry } from './tar.js';

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** The config label that makes an image a bundle (its value is ignored by readers). */
export const BUNDLE_LABEL = 'dev.carvel.imgpkg.bundle';

export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
}

/** A pushed image manifest (plain image or bundle). */
export interface PushedImage {
  readonly repo: string;
  /** `host/repo@sha256:…`, the form images.yml uses. */
  readonly ref: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly manifest: Buffer;
  /** Manifest size in bytes. */
  readonly size: number;
  readonly configDigest: string;
  readonly config: Buffer;
  readonly layerDigests: readonly string[];
  /** Config and layer digests. */
  readonly blobs: readonly string[];
  readonly platform: Platform;
  /** Tags written for it (none when pushed by digest only). */
  readonly tags: readonly string[];
}

/** A pushed OCI index with its (already pushed) children. */
export interface PushedIndex {
  readonly repo: string;
  readonly ref: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly manifest: Buffer;
  readonly size: number;
  readonly children: readonly PushedImage[];
  readonly tags: readonly string[];
}

/** A pushed imgpkg bundle. */
export interface PushedBundle extends PushedImage {
  /** Exact `.imgpkg/images.yml` content. */
  readonly imagesYml: string;
  /** The gzip tar layer blob. */
  readonly layer: Buffer;
  readonly layerDigest: string;
}

export interface ImageOptions {
  /** Layer blobs, e.g. from {@link randomLayer}; may be shared between images. */
  readonly layers: readonly Uint8Array[];
  /** Tag to write; pushed by digest only when omitted. */
  readonly tag?: string;
  /** OCI manifest/config/layer types instead of Docker schema2. @defaultValue false */
  readonly oci?: boolean;
  /** `config.Labels`. */
  readonly labels?: Readonly<Record<string, string>>;
  /** @defaultValue linux/amd64 */
  readonly platform?: Platform;
  /** OCI manifest annotations (ignored for Docker manifests). */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** One `images.yml` entry. */
export interface ImagesLockEntry {
  /** Normally `host/repo@sha256:…`; anything is written as given (hostile tests). */
  readonly image: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface BundleOptions {
  /** The images.yml entries, in order: refs (digest form) or entries with annotations. */
  readonly images: readonly (string | ImagesLockEntry)[];
  /** The human tag. @defaultValue 'latest' (imgpkg's default) */
  readonly tag?: string;
  /** More files of the bundle directory by relative path, e.g. `.imgpkg/bundle.yml`, `config.yml`. */
  readonly files?: Readonly<Record<string, string | Uint8Array>>;
  /** Extra config labels (`imgpkg push --labels`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Appended after the regular tar entries (hostile tests). */
  readonly extraTarEntries?: readonly TarEntry[];
}

export interface RawBundleOptions {
  /** Tar entries of the single layer. @defaultValue a valid bundle with an empty images.yml */
  readonly tarEntries?: readonly TarEntry[];
  /** The layer blob as-is (e.g. {@link gzipBomb}, or bytes that are not gzip); overrides `tarEntries`. */
  readonly gzipBytes?: Uint8Array;
  /** @defaultValue the Docker layer type imgpkg requires */
  readonly layerMediaType?: string;
  /** Full control over the layers (e.g. two of them); overrides `tarEntries`, `gzipBytes` and `layerMediaType`. */
  readonly layers?: readonly { readonly bytes: Uint8Array; readonly mediaType?: string }[];
  /** Config labels; `null` writes none. @defaultValue `{ 'dev.carvel.imgpkg.bundle': 'true' }` */
  readonly labels?: Readonly<Record<string, string>> | null;
  /** OCI manifest and config types. @defaultValue false */
  readonly oci?: boolean;
  /** Tag to write; pushed by digest only when omitted. */
  readonly tag?: string;
}

/** Deterministic pseudo-random bytes (AES-256-CTR keystream keyed by sha256(seed)). */
export function seededBytes(size: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/**
 * A layer blob: a gzip stream of a tar holding one file of `size` seeded random bytes (so the blob is ~size + 1 KiB).
 * gzip level 0 (stored blocks): random data does not compress, and this keeps 100 MiB benchmark layers cheap.
 */
export async function randomLayer(size: number, seed: string): Promise<Buffer> {
  const name = `data/${createHash('sha256').update(seed).digest('hex').slice(0, 16)}.bin`;
  const tar = await packTar([{ name, content: seededBytes(size, seed), mode: 0o644 }]);
  return gzip(tar, 0);
}

/** `sha256-<hex>.imgpkg`: imgpkg's default tag for a copied manifest (imgpkg-bundles.md §3.3). */
export function imgpkgTag(digest: string): string {
  return `${digest.replace(':', '-')}.imgpkg`;
}

/** `sha256-<hex>.image-locations.imgpkg`: the tag of a bundle's locations image (imgpkg-bundles.md §3.4). */
export function locationsTag(digest: string): string {
  return `${digest.replace(':', '-')}.image-locations.imgpkg`;
}

/** An ImagesLock in imgpkg's exact serialisation (§2.1): `---\n`, sorted keys, sequences not indented. */
export function imagesLockYaml(images: readonly (string | ImagesLockEntry)[]): string {
  const entries = images.map((entry) => {
    const { image, annotations } = typeof entry === 'string' ? { image: entry, annotations: undefined } : entry;
    return annotations === undefined || Object.keys(annotations).length === 0 ? { image } : { annotations, image };
  });
  const lock = { apiVersion: 'imgpkg.carvel.dev/v1alpha1', ...(entries.length > 0 ? { images: entries } : {}), kind: 'ImagesLock' };
  return `---\n${stringify(lock, { sortMapEntries: true, indentSeq: false, lineWidth: 0 })}`;
}

/**
 * The tar entries `imgpkg push -f DIR` writes for a directory holding `files`: `.` first, then a depth-first walk in
 * lexical order (Go's filepath.Walk), directories 0700, files 0600.
 */
export function bundleTarEntries(files: Readonly<Record<string, string | Uint8Array>>): TarEntry[] {
  interface Dir { dirs: Map<string, Dir>; files: Map<string, string | Uint8Array> }
  const root: Dir = { dirs: new Map(), files: new Map() };
  for (const [path, content] of Object.entries(files)) {
    const parts = path.split('/');
    const base = parts.pop() ?? path;
    let dir = root;
    for (const part of parts) {
      let next = dir.dirs.get(part);
      if (next === undefined) dir.dirs.set(part, (next = { dirs: new Map(), files: new Map() }));
      dir = next;
    }
    dir.files.set(base, content);
  }
  const entries: TarEntry[] = [{ name: '.', type: 'directory' }];
  const walk = (dir: Dir, prefix: string): void => {
    for (const name of [...dir.dirs.keys(), ...dir.files.keys()].sort(byteOrder)) {
      const sub = dir.dirs.get(name);
      if (sub !== undefined) {
        entries.push({ name: prefix + name, type: 'directory' });
        walk(sub, `${prefix}${name}/`);
      } else {
        entries.push({ name: prefix + name, content: dir.files.get(name) ?? '' });
      }
    }
  };
  walk(root, '');
  return entries;
}

/** The config imgpkg writes (§1.3): empty platform, zero times, one `imgpkg` history entry per layer. */
export function imgpkgConfig(diffIds: readonly string[], labels: Readonly<Record<string, string>> | null): Buffer {
  const zero = '0001-01-01T00:00:00Z';
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: zero,
      history: diffIds.map(() => ({ author: 'imgpkg', created: zero, created_by: 'imgpkg' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: diffIds },
      config: labels === null ? {} : { Labels: sortKeys(labels) },
    }),
  );
}

/**
 * Pushes fixtures through one {@link RawClient}.
 *
 * @example
 * const fx = new Fixtures(RawClient.for(registry));
 * const app = await fx.pushImage('app', { layers: [await randomLayer(1024, 'a')] });
 * const bundle = await fx.pushBundle('app', { images: [app.ref], tag: 'v1' });
 * await fx.signLegacy('app', bundle.digest, generateSigningKey());
 */
export class Fixtures {
  readonly client: RawClient;
  /** `repo@digest` of the layers this builder has pushed. */
  readonly #pushed = new Set<string>();

  constructor(client: RawClient) {
    this.client = client;
  }

  /** `host:port` of the registry. */
  get host(): string {
    return this.client.host;
  }

  /** Pushes layers, config and manifest (Docker schema2 unless `oci`); by tag if given, else by digest. */
  async pushImage(repo: string, options: ImageOptions): Promise<PushedImage> {
    const oci = options.oci ?? false;
    const platform = options.platform ?? { architecture: 'amd64', os: 'linux' };
    const diffIds = options.layers.map(diffId);
    const created = '2024-01-01T00:00:00Z';
    const config = Buffer.from(
      JSON.stringify({
        architecture: platform.architecture,
        created,
        history: diffIds.map((_, i) => ({ created, created_by: `fixture layer ${i}` })),
        os: platform.os,
        rootfs: { type: 'layers', diff_ids: diffIds },
        config: {
          Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          Cmd: ['/bin/sh'],
          ...(options.labels === undefined ? {} : { Labels: sortKeys(options.labels) }),
        },
        ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      }),
    );
    return this.#push(repo, {
      oci,
      config,
      layers: options.layers.map((bytes) => ({ bytes, mediaType: oci ? MEDIA_TYPES.ociLayer : MEDIA_TYPES.dockerLayer })),
      tags: options.tag === undefined ? [] : [options.tag],
      platform,
      ...(oci && options.annotations !== undefined ? { annotations: options.annotations } : {}),
    });
  }

  /** Pushes an OCI index over already pushed children (platforms from each child); by tag if given, else by digest. */
  async pushIndex(repo: string, children: readonly PushedImage[], tag?: string): Promise<PushedIndex> {
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: children.map((c) => ({ mediaType: c.mediaType, size: c.size, digest: c.digest, platform: c.platform })),
      }),
    );
    const digest = sha256Digest(manifest);
    await this.client.pushManifest(repo, tag ?? digest, manifest, MEDIA_TYPES.ociIndex);
    return {
      repo,
      ref: `${this.host}/${repo}@${digest}`,
      digest,
      mediaType: MEDIA_TYPES.ociIndex,
      manifest,
      size: manifest.length,
      children,
      tags: tag === undefined ? [] : [tag],
    };
  }

  /**
   * Pushes a bundle exactly as `imgpkg push -b repo:tag -f DIR` would: Docker v2 manifest, imgpkg config with the
   * bundle label, one gzip (BestSpeed) tar layer with `.`, `.imgpkg/images.yml` and `files`; tags `tag` and
   * `sha256-<hex>.imgpkg`.
   */
  async pushBundle(repo: string, options: BundleOptions): Promise<PushedBundle> {
    const imagesYml = imagesLockYaml(options.images);
    const entries = [...bundleTarEntries({ '.imgpkg/images.yml': imagesYml, ...options.files }), ...(options.extraTarEntries ?? [])];
    const layer = await gzip(await packTar(entries));
    const labels = { ...options.labels, [BUNDLE_LABEL]: 'true' };
    const config = imgpkgConfig([diffId(layer)], labels);
    const tag = options.tag ?? 'latest';
    const pushed = await this.#push(repo, {
      oci: false,
      config,
      layers: [{ bytes: layer, mediaType: MEDIA_TYPES.dockerLayer }],
      tags: [tag],
      platform: { architecture: '', os: '' },
    });
    const defaultTag = imgpkgTag(pushed.digest);
    await this.client.pushManifest(repo, defaultTag, pushed.manifest, pushed.mediaType);
    return { ...pushed, tags: [tag, defaultTag], imagesYml, layer, layerDigest: pushed.layerDigests[0] ?? '' };
  }

  /**
   * Pushes a bundle-like image with full control over its layer(s), for hostile tests: path traversal, gzip bombs,
   * oversized or tag-form images.yml, two layers, an OCI layer type, no bundle label.
   */
  async rawBundle(repo: string, options: RawBundleOptions): Promise<PushedImage> {
    const oci = options.oci ?? false;
    let layers: { bytes: Uint8Array; mediaType: string }[];
    if (options.layers !== undefined) {
      layers = options.layers.map((l) => ({ bytes: l.bytes, mediaType: l.mediaType ?? MEDIA_TYPES.dockerLayer }));
    } else {
      const entries = options.tarEntries ?? bundleTarEntries({ '.imgpkg/images.yml': imagesLockYaml([]) });
      const bytes = options.gzipBytes ?? (await gzip(await packTar(entries)));
      layers = [{ bytes, mediaType: options.layerMediaType ?? MEDIA_TYPES.dockerLayer }];
    }
    const labels = options.labels === undefined ? { [BUNDLE_LABEL]: 'true' } : options.labels;
    const config = imgpkgConfig(layers.map((l) => diffId(l.bytes)), labels);
    return this.#push(repo, {
      oci,
      config,
      layers,
      tags: options.tag === undefined ? [] : [options.tag],
      platform: { architecture: '', os: '' },
    });
  }

  /** {@link signLegacy} with this client: appends a simple-signing signature to `sha256-<hex>.sig`. */
  signLegacy(repo: string, digest: string, key: SigningKey, options?: LegacySignOptions): Promise<LegacySignature> {
    return signLegacy(this.client, repo, digest, key, options);
  }

  /** {@link attestLegacy} with this client: appends a DSSE attestation to `sha256-<hex>.att`. */
  attestLegacy(repo: string, digest: string, key: SigningKey, predicateType: string, predicate: unknown): Promise<LegacyAttestation> {
    return attestLegacy(this.client, repo, digest, key, predicateType, predicate);
  }

  /** {@link attachSbom} with this client: writes `sha256-<hex>.sbom`. */
  attachSbom(repo: string, digest: string, sbom: Uint8Array, mediaType: string): Promise<PushedArtifact> {
    return attachSbom(this.client, repo, digest, sbom, mediaType);
  }

  /** {@link attachSigstoreBundleReferrer} with this client: referrer by digest + fallback index `sha256-<hex>`. */
  attachSigstoreBundleReferrer(repo: string, digest: string, bundleJson: Uint8Array, options?: ReferrerOptions): Promise<PushedReferrer> {
    return attachSigstoreBundleReferrer(this.client, repo, digest, bundleJson, options);
  }

  async #push(
    repo: string,
    spec: {
      oci: boolean;
      config: Buffer;
      layers: readonly { bytes: Uint8Array; mediaType: string }[];
      tags: readonly string[];
      platform: Platform;
      annotations?: Readonly<Record<string, string>>;
    },
  ): Promise<PushedImage> {
    const layerDigests: string[] = [];
    for (const layer of spec.layers) {
      // Layers shared between images go up once per repository (the benchmark shares 8 MiB bases 100 times).
      const digest = sha256Digest(layer.bytes);
      if (!this.#pushed.has(`${repo}@${digest}`)) await this.client.pushBlob(repo, layer.bytes);
      this.#pushed.add(`${repo}@${digest}`);
      layerDigests.push(digest);
    }
    const configDigest = await this.client.pushBlob(repo, spec.config);
    const mediaType = spec.oci ? MEDIA_TYPES.ociManifest : MEDIA_TYPES.dockerManifest;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: spec.oci ? MEDIA_TYPES.ociConfig : MEDIA_TYPES.dockerConfig, size: spec.config.length, digest: configDigest },
        layers: spec.layers.map((l, i) => ({ mediaType: l.mediaType, size: l.bytes.length, digest: layerDigests[i] })),
        ...(spec.annotations === undefined ? {} : { annotations: sortKeys(spec.annotations) }),
      }),
    );
    const digest = sha256Digest(manifest);
    if (spec.tags.length === 0) await this.client.pushManifest(repo, digest, manifest, mediaType);
    for (const tag of spec.tags) await this.client.pushManifest(repo, tag, manifest, mediaType);
    return {
      repo,
      ref: `${this.host}/${repo}@${digest}`,
      digest,
      mediaType,
      manifest,
      size: manifest.length,
      configDigest,
      config: spec.config,
      layerDigests,
      blobs: [configDigest, ...layerDigests],
      platform: spec.platform,
      tags: spec.tags,
    };
  }
}

/** Everything {@link buildPromotionFixture} pushed, and what a complete promotion must produce. */
export interface PromotionFixture {
  readonly repo: string;
  readonly key: SigningKey;
  /** Docker schema2 image (shares the base layer). */
  readonly web: PushedImage;
  /** OCI image (shares the base layer). */
  readonly api: PushedImage;
  /** Multi-arch OCI index over `multiArchChildren` (amd64, arm64). */
  readonly multiArch: PushedIndex;
  /** Listed only in the nested bundle. */
  readonly worker: PushedImage;
  /** Bundle listing `worker`; tag `nested-v1` in the source. */
  readonly nested: PushedBundle;
  /** Bundle listing web, api, multiArch and nested; tag `v1`. */
  readonly root: PushedBundle;
  /** `.sig` of web, api, multiArch, worker, nested and root, in that order. */
  readonly signatures: readonly LegacySignature[];
  /** `.att` of web. */
  readonly attestation: LegacyAttestation;
  /** `.sbom` of api. */
  readonly sbom: PushedArtifact;
  /** Sigstore-bundle referrer of root, with the fallback index at `sha256-<root hex>`. */
  readonly referrer: PushedReferrer;
  readonly expected: {
    /** Every manifest digest the target must hold, sorted (the fallback index excluded: its bytes are rebuilt). */
    readonly manifests: readonly string[];
    /** Every config and layer digest of those manifests, sorted (locations images excluded: not known in advance). */
    readonly blobs: readonly string[];
    /**
     * Every tag the target must have, sorted: `sha256-<d>.imgpkg` for every manifest above except index children
     * (signature, attestation, SBOM and referrer manifests included), `.sig`/`.att`/`.sbom`, the referrers fallback
     * tag of root, `sha256-<bundle>.image-locations.imgpkg` for both bundles, and `v1`. The locations images' own
     * `sha256-<L>.imgpkg` tags are not listed (their digests depend on the compressor).
     */
    readonly tags: readonly string[];
  };
}

export interface PromotionFixtureOptions {
  /** @defaultValue 'promotion' */
  readonly seed?: string;
  /** Size of each random layer. @defaultValue 4096 */
  readonly layerSize?: number;
  /** @defaultValue a fresh key */
  readonly key?: SigningKey;
}

/**
 * The standard source scenario for engine tests, all in `repo`: images web (Docker), api (OCI) and multiArch (index,
 * 2 children) sharing a base layer; bundle `nested` holding worker; bundle `root` (tag `v1`) holding web, api,
 * multiArch and nested; a `.sig` for every top-level manifest and both bundles, an `.att` on web, an `.sbom` on api,
 * a sigstore-bundle referrer (fallback index) on root.
 */
export async function buildPromotionFixture(
  registry: TestRegistry,
  repo: string,
  options: PromotionFixtureOptions = {},
): Promise<PromotionFixture> {
  const seed = options.seed ?? 'promotion';
  const size = options.layerSize ?? 4096;
  const key = options.key ?? generateSigningKey();
  const fx = new Fixtures(RawClient.for(registry));
  const layer = (name: string): Promise<Buffer> => randomLayer(size, `${seed}/${name}`);

  const base = await layer('base');
  const web = await fx.pushImage(repo, { layers: [base, await layer('web')] });
  const api = await fx.pushImage(repo, { layers: [base, await layer('api')], oci: true });
  const amd64 = await fx.pushImage(repo, { layers: [base, await layer('tools-amd64')], oci: true });
  const arm64 = await fx.pushImage(repo, {
    layers: [await layer('tools-arm64')],
    oci: true,
    platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
  });
  const multiArch = await fx.pushIndex(repo, [amd64, arm64]);
  const worker = await fx.pushImage(repo, { layers: [await layer('worker')] });
  const nested = await fx.pushBundle(repo, { images: [worker.ref], tag: 'nested-v1' });
  const root = await fx.pushBundle(repo, {
    images: [{ image: web.ref, annotations: { 'kbld.carvel.dev/id': 'web' } }, api.ref, multiArch.ref, nested.ref],
    tag: 'v1',
    files: { '.imgpkg/bundle.yml': bundleYml(), 'config.yml': 'replicas: 1\n' },
  });

  const signatures: LegacySignature[] = [];
  for (const subject of [web, api, multiArch, worker, nested, root]) signatures.push(await fx.signLegacy(repo, subject.digest, key));
  const attestation = await fx.attestLegacy(repo, web.digest, key, 'https://slsa.dev/provenance/v0.2', {
    builder: { id: 'https://ci.example/builder' },
  });
  const sbom = await fx.attachSbom(repo, api.digest, Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'api' })), 'text/spdx+json');
  const referrer = await fx.attachSigstoreBundleReferrer(repo, root.digest, keySignedSigstoreBundle(root.digest, key));

  const images = [web, api, amd64, arm64, worker, nested, root];
  const artifacts: PushedArtifact[] = [...signatures, attestation, sbom, referrer];
  const manifests = [...images.map((i) => i.digest), multiArch.digest, ...artifacts.map((a) => a.digest)];
  const blobs = [...images.flatMap((i) => i.blobs), ...artifacts.flatMap((a) => [a.configDigest, ...a.layerDigests])];
  const children = new Set([amd64.digest, arm64.digest]);
  const tags = [
    ...manifests.filter((d) => !children.has(d)).map(imgpkgTag),
    ...[web, api, multiArch, worker, nested, root].map((s) => cosignTag(s.digest, 'sig')),
    cosignTag(web.digest, 'att'),
    cosignTag(api.digest, 'sbom'),
    referrersTag(root.digest),
    locationsTag(root.digest),
    locationsTag(nested.digest),
    'v1',
  ];
  return {
    repo,
    key,
    web,
    api,
    multiArch,
    worker,
    nested,
    root,
    signatures,
    attestation,
    sbom,
    referrer,
    expected: { manifests: uniqueSorted(manifests), blobs: uniqueSorted(blobs), tags: uniqueSorted(tags) },
  };
}

function bundleYml(): string {
  return 'apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: promotion-fixture\nauthors:\n- name: Test\n  email: test@example.com\n';
}

/** sha256 of the uncompressed layer; of the bytes themselves when they are not gzip. */
function diffId(layer: Uint8Array): string {
  try {
    return sha256Digest(gunzipSync(layer));
  } catch {
    return sha256Digest(layer);
  }
}

function sortKeys<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => byteOrder(a, b)));
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function uniqueSorted(values: readonly string[]): string[] {
  return [...new Set(values)].sort(byteOrder);
}
