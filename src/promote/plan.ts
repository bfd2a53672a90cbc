import type { Logger } from '../log.js';
import { PromoteError, isPromoteError } from '../errors.js';
import {
  MediaTypes, formatReference, formatRepository, isNonDistributable, parseManifest,
  type Descriptor, type RawManifest, type Reference, type Registry, type Repository,
} from '../oci/index.js';
import {
  DEFAULT_BUNDLE_LAYER_LIMITS, imageLocationsTag, isImageLocationsYml, isImagesYml, parseImageLocationsYaml,
  parseImagesLock, readFileFromLayer, type BundleLayerLimits, type ImageLocation, type LockedImage,
} from '../bundle/index.js';
import { limiter, once } from './limiter.js';

export type ArtifactKind = 'bundle' | 'image' | 'index' | 'index-child' | 'signature' | 'attestation' | 'sbom' | 'referrer';

/** One manifest in the promotion closure. */
export interface PlannedArtifact {
  readonly digest: string;
  readonly kind: ArtifactKind;
  /** The repository it is read from. */
  readonly source: Repository;
  /** The manifest as served; absent only when the target already holds it and nothing needed its bytes. */
  readonly manifest?: RawManifest;
  /** Manifests that must exist in the target before this one (index children). */
  readonly children: readonly string[];
  /** Blob digests this manifest references (config and layers). */
  readonly blobs: readonly string[];
  /** Tag it is written by (`sha256-<hex>.imgpkg`); `undefined` means by digest (index children, referrers). */
  readonly uploadTag: string | undefined;
  readonly presentInTarget: boolean;
  /** The reference `images.yml` names it by, for bundles and images. */
  readonly origRef?: string;
}

export interface PlannedBlob {
  readonly descriptor: Descriptor;
  readonly source: Repository;
  /** Bytes read while planning (configs, the bundle layer): uploaded from memory, saving a second GET. */
  bytes?: Buffer;
  readonly nonDistributable: boolean;
}

export interface PlannedBundle {
  readonly digest: string;
  readonly source: Repository;
  readonly locations: readonly ImageLocation[];
  readonly locationsPresentInTarget: boolean;
}

/** A tag that points at a signature-like manifest, written in the signature phase. */
export interface PlannedTag {
  readonly tag: string;
  readonly digest: string;
  readonly presentInTarget: boolean;
}

/** A subject whose referrers the target must list: a fallback index is written when its API does not. */
export interface PlannedReferrers {
  readonly subject: string;
  readonly referrers: readonly Descriptor[];
  /** The source's fallback index, copied byte for byte when the target has none. */
  readonly sourceIndex?: RawManifest;
}

export interface PromotionPlan {
  readonly source: Reference;
  readonly rootDigest: string;
  readonly root: RawManifest;
  readonly target: Repository;
  readonly targetTags: readonly string[];
  /**
   * Whether the target repository existed when planning began (its tag listing answered). A new repository
   * holds no blob, so uploads into it need no existence check beyond the self-mount.
   */
  readonly targetExisted: boolean;
  /** Every manifest, children before parents. */
  readonly artifacts: readonly PlannedArtifact[];
  readonly blobs: ReadonlyMap<string, PlannedBlob>;
  /** Root first, then nested bundles in discovery order. */
  readonly bundles: readonly PlannedBundle[];
  readonly signatureTags: readonly PlannedTag[];
  readonly referrers: readonly PlannedReferrers[];
  /** Non-distributable layers listed and not copied (imgpkg's default), per image, for the warning and the result. */
  readonly nonDistributable: readonly { image: string; digests: string[] }[];
}

/** Which attached artifacts travel with the bundle. */
export interface AttachedArtifacts {
  /** `.sig` tags and sigstore-bundle referrers (cosign v3). @defaultValue true */
  signatures: boolean;
  /** `.att` tags. @defaultValue false */
  attestations: boolean;
  /** `.sbom` tags. @defaultValue false */
  sboms: boolean;
  /** Every OCI referrer, not only sigstore bundles. @defaultValue false */
  referrers: boolean;
}

export interface PlanOptions {
  /** Parallel registry reads. @defaultValue 8 */
  concurrency?: number;
  /** @defaultValue DEFAULT_BUNDLE_LAYER_LIMITS */
  layerLimits?: BundleLayerLimits;
  /** Largest bundle layer read while planning. @defaultValue 256 MiB */
  maxBundleLayerBytes?: number;
  /** Blobs up to this size read while planning are kept in memory for the upload. @defaultValue 16 MiB */
  keepBlobBytes?: number;
  /** Nested bundle depth. @defaultValue 16 */
  maxDepth?: number;
  /** @defaultValue false: like imgpkg, non-distributable layers are listed, not copied. */
  includeNonDistributable?: boolean;
  /**
   * Learn whether an image is a bundle without reading its config where that is safe for the copy: from an
   * existing image-locations image (an unsigned cache anyone who can write the registry can plant), or from
   * a manifest that cannot be a valid bundle (imgpkg reads a bundle's images only from exactly one layer of
   * the Docker layer media type, and fails otherwise). The engine turns it off when every image is verified
   * (`scope: all`): then a lying `isBundle: false` cannot hide a nested bundle's images, and a malformed
   * nested bundle fails as under imgpkg instead of travelling as a plain image. The closure itself always
   * comes from each bundle's `.imgpkg/images.yml`. @defaultValue true
   */
  bundleDetectionShortcuts?: boolean;
  /**
   * Called once for each blob the target needs, as soon as the walk finds it, so that its copy can start
   * before the plan is complete. `targetIsNew`: the target repository did not exist (`targetExisted`).
   */
  onBlobNeeded?: (blob: PlannedBlob, targetIsNew: boolean) => void;
}

export interface PlanRequest {
  readonly source: Reference;
  readonly target: Repository;
  /** Human tags for the root bundle in the target; default: the source tag, if the source named one. */
  readonly tags?: readonly string[];
  readonly attached: AttachedArtifacts;
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const BUNDLE_LABEL = 'dev.carvel.imgpkg.bundle';
const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle';

export function imgpkgTag(digest: string): string {
  return `${digest.replace(':', '-')}.imgpkg`;
}

export function attachedTag(digest: string, suffix: 'sig' | 'att' | 'sbom'): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

interface Visit { readonly kind: ArtifactKind; readonly isBundle: boolean }

/**
 * Builds the promotion plan: reads the bundle closure from the source, learns what the target already
 * holds from one tag listing, and lists every manifest and blob once. Writes nothing.
 */
export class Planner {
  readonly #registry: Registry;
  readonly #log: Logger;

  constructor(deps: { registry: Registry; log: Logger }) {
    this.#registry = deps.registry;
    this.#log = deps.log;
  }

  async plan(request: PlanRequest, options: PlanOptions = {}, signal?: AbortSignal): Promise<PromotionPlan> {
    return new PlanBuilder(this.#registry, this.#log, request, options, signal).build();
  }
}

class PlanBuilder {
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #request: PlanRequest;
  readonly #signal: AbortSignal | undefined;
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly #layerLimits: BundleLayerLimits;
  readonly #maxBundleLayerBytes: number;
  readonly #keepBlobBytes: number;
  readonly #maxDepth: number;
  readonly #includeNonDistributable: boolean;
  readonly #shortcuts: boolean;
  readonly #onBlobNeeded: PlanOptions['onBlobNeeded'];

  readonly #artifacts = new Map<string, PlannedArtifact>();
  readonly #order: string[] = [];
  readonly #blobs = new Map<string, PlannedBlob>();
  readonly #bundles: PlannedBundle[] = [];
  readonly #signatureTags = new Map<string, PlannedTag>();
  readonly #referrers: PlannedReferrers[] = [];
  readonly #nonDistributable: { image: string; digests: string[] }[] = [];
  readonly #visits = once<string, Visit>();
  readonly #tagLists = once<string, ReadonlySet<string> | undefined>();
  #targetTags: ReadonlySet<string> = new Set();
  #targetExisted = true;

  constructor(registry: Registry, log: Logger, request: PlanRequest, options: PlanOptions, signal: AbortSignal | undefined) {
    this.#registry = registry;
    this.#log = log;
    this.#request = request;
    this.#signal = signal;
    this.#limit = limiter(options.concurrency ?? 8);
    this.#layerLimits = options.layerLimits ?? DEFAULT_BUNDLE_LAYER_LIMITS;
    this.#maxBundleLayerBytes = options.maxBundleLayerBytes ?? 256 * 1024 * 1024;
    this.#keepBlobBytes = options.keepBlobBytes ?? 16 * 1024 * 1024;
    this.#maxDepth = options.maxDepth ?? 16;
    this.#includeNonDistributable = options.includeNonDistributable ?? false;
    this.#shortcuts = options.bundleDetectionShortcuts ?? true;
    this.#onBlobNeeded = options.onBlobNeeded;
  }

  async build(): Promise<PromotionPlan> {
    const { source, target } = this.#request;
    const [root, targetTags] = await Promise.all([
      this.#read(() => this.#registry.getManifest(source, this.#signal)),
      // A target repository the token cannot see yet (Docker Hub answers 401 for a missing one) is empty.
      this.#read(() => this.#registry.listTags(target, { absentIfDenied: true }, this.#signal)),
    ]);
    this.#targetTags = new Set(targetTags ?? []);
    this.#targetExisted = targetTags !== undefined;
    const parsed = parseManifest(root);
    const name = formatReference(source);
    if (parsed.kind !== 'image') {
      throw new PromoteError('NOT_A_BUNDLE', `${name} is an image index; a bundle is an image manifest (hint: copy plain images with an images lock, not --bundle)`);
    }
    const rootRepo: Repository = { registry: source.registry, repository: source.repository };
    // A bundle complete in the target (its locations image is written last) was checked when it was copied.
    const known = this.#present(root.digest) && this.#targetTags.has(imageLocationsTag(root.digest));
    if (!known && !isBundleConfig(await this.#readConfig(rootRepo, parsed.config, name))) {
      throw new PromoteError('NOT_A_BUNDLE', `${name} is a plain image, not an imgpkg bundle: its config has no '${BUNDLE_LABEL}' label`);
    }
    await this.#visitBundle(rootRepo, root, undefined, 0, []);
    const tags = this.#request.tags ?? (source.tag !== undefined ? [source.tag] : []);
    return {
      source,
      rootDigest: root.digest,
      root,
      target,
      targetTags: [...new Set(tags)],
      targetExisted: this.#targetExisted,
      artifacts: this.#order.map((d) => this.#artifacts.get(d)!),
      blobs: this.#blobs,
      bundles: this.#bundles,
      signatureTags: [...this.#signatureTags.values()].sort((a, b) => a.tag.localeCompare(b.tag)),
      referrers: this.#referrers,
      nonDistributable: this.#nonDistributable,
    };
  }

  /** Records a manifest; children must be recorded first so that `#order` stays children-before-parents. */
  #add(artifact: PlannedArtifact): void {
    if (this.#artifacts.has(artifact.digest)) return;
    this.#artifacts.set(artifact.digest, artifact);
    this.#order.push(artifact.digest);
  }

  #read<T>(task: () => Promise<T>): Promise<T> {
    return this.#limit(task);
  }

  #present(digest: string): boolean {
    return this.#targetTags.has(imgpkgTag(digest));
  }

  async #readConfig(repo: Repository, descriptor: Descriptor, name: string): Promise<unknown> {
    if (descriptor.size > MAX_CONFIG_BYTES) {
      throw new PromoteError('MANIFEST_INVALID', `${name}: config blob ${descriptor.digest} is ${descriptor.size} bytes, more than ${MAX_CONFIG_BYTES}`);
    }
    const bytes = await this.#read(() => this.#registry.readBlob(repo, descriptor.digest, MAX_CONFIG_BYTES, this.#signal));
    this.#keep(repo, descriptor, bytes);
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new PromoteError('MANIFEST_INVALID', `${name}: config blob ${descriptor.digest} is not JSON`, { cause: err });
    }
  }

  #keep(repo: Repository, descriptor: Descriptor, bytes: Buffer): void {
    const blob = this.#blobs.get(descriptor.digest);
    if (bytes.length <= this.#keepBlobBytes) {
      if (blob) blob.bytes = bytes;
      else this.#blobs.set(descriptor.digest, { descriptor, source: repo, bytes, nonDistributable: false });
    }
  }

  /** `needed`: the manifest is missing from the target, so its blobs must be copied. */
  #addBlobs(repo: Repository, descriptors: readonly Descriptor[], image: string, needed: boolean): string[] {
    const digests: string[] = [];
    const skipped: string[] = [];
    for (const d of descriptors) {
      const nonDistributable = isNonDistributable(d.mediaType);
      if (nonDistributable && !this.#includeNonDistributable) {
        skipped.push(d.digest);
        continue;
      }
      digests.push(d.digest);
      let blob = this.#blobs.get(d.digest);
      if (!blob) this.#blobs.set(d.digest, blob = { descriptor: d, source: repo, nonDistributable });
      if (needed) this.#onBlobNeeded?.(blob, !this.#targetExisted);
    }
    if (skipped.length > 0) this.#nonDistributable.push({ image, digests: skipped });
    return digests;
  }

  async #visitBundle(repo: Repository, raw: RawManifest, origRef: string | undefined, depth: number, path: string[]): Promise<void> {
    const name = `${formatRepository(repo)}@${raw.digest}`;
    if (depth > this.#maxDepth) {
      throw new PromoteError('BUNDLE_TOO_DEEP', `bundle ${name} is nested more than ${this.#maxDepth} levels deep (${path.join(' → ')})`);
    }
    if (path.includes(raw.digest)) {
      throw new PromoteError('BUNDLE_INVALID', `bundle ${name} contains itself (${[...path, raw.digest].join(' → ')})`);
    }
    const manifest = parseManifest(raw);
    if (manifest.kind !== 'image') throw new PromoteError('BUNDLE_INVALID', `${name} is not an image manifest`);
    if (manifest.layers.length !== 1) {
      throw new PromoteError('BUNDLE_INVALID', `bundle ${name}: expected bundle to only have a single layer, got ${manifest.layers.length}`);
    }
    const layer = manifest.layers[0]!;
    if (layer.mediaType !== MediaTypes.dockerLayer) {
      throw new PromoteError('BUNDLE_INVALID', `bundle ${name}: expected layer to have docker layer media type, was ${layer.mediaType}`);
    }
    if (layer.size > this.#maxBundleLayerBytes) {
      throw new PromoteError('BUNDLE_LAYER_UNSAFE', `bundle ${name}: layer ${layer.digest} is ${layer.size} bytes, more than the ${this.#maxBundleLayerBytes} allowed`);
    }
    const { images, hints } = await this.#closureOf(repo, raw.digest, layer, name);

    const bundleEntry: { digest: string; source: Repository; locations: ImageLocation[]; locationsPresentInTarget: boolean } = {
      digest: raw.digest,
      source: repo,
      locations: [],
      locationsPresentInTarget: this.#targetTags.has(imageLocationsTag(raw.digest)),
    };
    this.#bundles.push(bundleEntry);
    // Attachments first: the first referrers lookup learns whether the registry has the API, so that the
    // lookups of the images below can rely on the tag listing instead of one probe each.
    await this.#attachments(repo, raw.digest);
    const visits = await Promise.all(images.map((entry) =>
      this.#visitImage(repo, entry.ref, entry.image, hints.get(entry.image), depth, [...path, raw.digest])));
    bundleEntry.locations = images.map((entry, i) => ({ image: entry.image, isBundle: visits[i]!.isBundle }));

    const blobs = this.#addBlobs(repo, [manifest.config, layer], name, !this.#present(raw.digest));
    this.#add({
      digest: raw.digest, kind: 'bundle', source: repo, manifest: raw, children: [], blobs,
      uploadTag: imgpkgTag(raw.digest), presentInTarget: this.#present(raw.digest),
      ...(origRef !== undefined ? { origRef } : {}),
    });
  }

  /**
   * The images a bundle lists, with isBundle hints. Decision (docs/security.md#closure): the closure always
   * comes from the bundle's own `.imgpkg/images.yml` — content its digest covers — never from an
   * image-locations image, which is an unsigned cache: a planted one could drop an image from what is
   * verified. A bundle already in the target is read there (the layer arrived before its tag): one small blob.
   */
  async #closureOf(repo: Repository, digest: string, layer: Descriptor, name: string): Promise<{ images: readonly LockedImage[]; hints: Map<string, boolean> }> {
    const from = this.#present(digest) ? this.#request.target : repo;
    const layerBytes = await this.#read(() => this.#registry.readBlob(from, layer.digest, this.#maxBundleLayerBytes, this.#signal));
    this.#keep(from, layer, layerBytes);
    const text = await readFileFromLayer(layerBytes, isImagesYml,
      { layer: `${layer.digest} of ${name}`, file: '.imgpkg/images.yml', maxFileBytes: this.#layerLimits.maxImagesYmlBytes }, this.#layerLimits);
    if (text === undefined) throw new PromoteError('BUNDLE_INVALID', `bundle ${name}: expected to find .imgpkg/images.yml in bundle image`);
    const lock = parseImagesLock(text, `bundle ${name}`);
    const hints = this.#shortcuts ? await this.#locationHints(repo, digest, name) : new Map<string, boolean>();
    return { images: lock.images, hints };
  }

  /** isBundle flags from an existing locations image: the source's, else the target's (same bundle, same content). */
  async #locationHints(repo: Repository, bundleDigest: string, name: string): Promise<Map<string, boolean>> {
    const tag = imageLocationsTag(bundleDigest);
    // The source's tag listing (fetched anyway for signatures) saves a probe when it has no locations image.
    const sourceTags = await this.#sourceTags(repo);
    const fromSource = sourceTags && !sourceTags.has(tag) ? undefined : await this.#readLocations(repo, tag, name);
    const found = fromSource ?? (this.#targetTags.has(tag) ? await this.#readLocations(this.#request.target, tag, name) : undefined);
    return new Map((found ?? []).map((l) => [l.image, l.isBundle]));
  }

  async #readLocations(repo: Repository, tag: string, name: string): Promise<ImageLocation[] | undefined> {
    // imgpkg treats 404, 401 and 403 alike as "no locations image": it is a cache, not the truth.
    const raw = await this.#read(() => this.#registry.findManifest({ ...repo, tag }, { absentIfDenied: true }, this.#signal));
    if (!raw) return undefined;
    try {
      const m = parseManifest(raw);
      if (m.kind !== 'image' || m.layers.length !== 1) return undefined;
      const layer = m.layers[0]!;
      const bytes = await this.#read(() => this.#registry.readBlob(repo, layer.digest, 16 * 1024 * 1024, this.#signal));
      const text = await readFileFromLayer(bytes, isImageLocationsYml,
        { layer: layer.digest, file: 'image-locations.yml', maxFileBytes: this.#layerLimits.maxImagesYmlBytes }, this.#layerLimits);
      return text === undefined ? undefined : parseImageLocationsYaml(text, `${name} locations`);
    } catch (err) {
      if (isPromoteError(err) && !err.retryable) {
        this.#log.warn({ bundle: name, code: err.code }, 'ignoring an unreadable image-locations image');
        return undefined;
      }
      throw err;
    }
  }

  /** One image of a bundle's images.yml: found in the bundle's repository first, then where the lock points. */
  #visitImage(bundleRepo: Repository, ref: Reference & { digest: string }, image: string, isBundleHint: boolean | undefined, depth: number, path: string[]): Promise<Visit> {
    return this.#visits(ref.digest, async () => {
      if (isBundleHint === false && this.#present(ref.digest)) {
        // Already complete in the target and known not to be a bundle: nothing to read but its attachments.
        this.#add({ digest: ref.digest, kind: 'image', source: bundleRepo, children: [], blobs: [], uploadTag: imgpkgTag(ref.digest), presentInTarget: true, origRef: image });
        await this.#attachments(bundleRepo, ref.digest);
        return { kind: 'image', isBundle: false };
      }
      const candidates: Reference[] = [{ ...bundleRepo, digest: ref.digest }];
      if (ref.registry !== bundleRepo.registry || ref.repository !== bundleRepo.repository) candidates.push(ref);
      let raw: RawManifest | undefined;
      let repo: Repository = bundleRepo;
      for (const candidate of candidates) {
        raw = await this.#read(() => this.#registry.findManifest(candidate, { absentIfDenied: true }, this.#signal));
        if (raw) {
          repo = { registry: candidate.registry, repository: candidate.repository };
          break;
        }
      }
      if (!raw) {
        throw new PromoteError('MANIFEST_NOT_FOUND',
          `image ${image} listed in bundle ${formatRepository(bundleRepo)}@${path.at(-1) ?? ''} was found neither in ${formatRepository(bundleRepo)} nor at ${formatReference(ref)}`);
      }
      const manifest = parseManifest(raw);
      if (manifest.kind === 'index') {
        await this.#visitIndex(repo, raw, image, true);
        await this.#attachments(repo, raw.digest);
        return { kind: 'index', isBundle: false };
      }
      let isBundle = isBundleHint;
      if (isBundle === undefined && this.#shortcuts && !mayBeBundle(manifest)) isBundle = false;
      if (isBundle === undefined) isBundle = isBundleConfig(await this.#readConfig(repo, manifest.config, image));
      if (isBundle) {
        await this.#visitBundle(repo, raw, image, depth + 1, path);
        return { kind: 'bundle', isBundle: true };
      }
      const blobs = this.#addBlobs(repo, [manifest.config, ...manifest.layers], image, !this.#present(raw.digest));
      await this.#attachments(repo, raw.digest);
      this.#add({ digest: raw.digest, kind: 'image', source: repo, manifest: raw, children: [], blobs, uploadTag: imgpkgTag(raw.digest), presentInTarget: this.#present(raw.digest), origRef: image });
      return { kind: 'image', isBundle: false };
    });
  }

  async #visitIndex(repo: Repository, raw: RawManifest, name: string, topLevel: boolean): Promise<void> {
    const manifest = parseManifest(raw);
    if (manifest.kind !== 'index') throw new PromoteError('MANIFEST_INVALID', `${name}: expected an index`);
    const present = topLevel && this.#present(raw.digest);
    const children: string[] = [];
    await Promise.all(manifest.manifests.map(async (child) => {
      children.push(child.digest);
      if (present) return; // an index is written only after all its children, so they are all there
      await this.#visits(child.digest, async () => {
        const childRaw = await this.#read(() => this.#registry.getManifest({ ...repo, digest: child.digest }, this.#signal));
        const m = parseManifest(childRaw);
        if (m.kind === 'index') {
          await this.#visitIndex(repo, childRaw, `${name} child ${child.digest}`, false);
        } else {
          const blobs = this.#addBlobs(repo, [m.config, ...m.layers], `${name} child ${child.digest}`, true);
          this.#add({ digest: child.digest, kind: 'index-child', source: repo, manifest: childRaw, children: [], blobs, uploadTag: undefined, presentInTarget: false });
        }
        return { kind: 'index-child', isBundle: false };
      });
    }));
    this.#add({
      digest: raw.digest, kind: topLevel ? 'index' : 'index-child', source: repo, manifest: raw, children: present ? [] : children,
      blobs: [], uploadTag: topLevel ? imgpkgTag(raw.digest) : undefined, presentInTarget: present, origRef: name,
    });
  }

  async #sourceTags(repo: Repository): Promise<ReadonlySet<string> | undefined> {
    return this.#tagLists(formatRepository(repo), async () => {
      try {
        const tags = await this.#read(() => this.#registry.listTags(repo, {}, this.#signal));
        return new Set(tags ?? []);
      } catch (err) {
        // Listing can be denied where pulling is allowed; then probe each tag instead.
        if (isPromoteError(err, 'REGISTRY_DENIED') || isPromoteError(err, 'REGISTRY_UNAUTHORIZED') || isPromoteError(err, 'REGISTRY_REJECTED')) return undefined;
        throw err;
      }
    });
  }

  /** `.sig`/`.att`/`.sbom` tags and referrers of one subject, found from one tag listing per repository. */
  async #attachments(repo: Repository, subject: string): Promise<void> {
    const { attached } = this.#request;
    const suffixes: ('sig' | 'att' | 'sbom')[] = [];
    if (attached.signatures) suffixes.push('sig');
    if (attached.attestations) suffixes.push('att');
    if (attached.sboms) suffixes.push('sbom');
    const tags = await this.#sourceTags(repo);
    await Promise.all(suffixes.map(async (suffix) => {
      const tag = attachedTag(subject, suffix);
      if (tags && !tags.has(tag)) return;
      await this.#attachedTag(repo, tag, suffix === 'sig' ? 'signature' : suffix === 'att' ? 'attestation' : 'sbom', tags !== undefined);
    }));
    if (attached.signatures || attached.referrers) {
      const fallbackTag = subject.replace(':', '-');
      if (tags && !tags.has(fallbackTag) && this.#registry.referrersApi?.(repo.registry) === 'unsupported') return;
      await this.#referrersOf(repo, subject);
    }
  }

  async #attachedTag(repo: Repository, tag: string, kind: ArtifactKind, listed: boolean): Promise<void> {
    const inTarget = this.#targetTags.has(tag);
    if (inTarget) {
      // Signature tags move when signatures are appended: compare digests, two HEADs instead of a GET.
      const [src, dst] = await Promise.all([
        this.#read(() => this.#registry.headManifest({ ...repo, tag }, this.#signal)),
        this.#read(() => this.#registry.headManifest({ ...this.#request.target, tag }, this.#signal)),
      ]);
      if (!src) return;
      if (dst && dst.digest === src.digest) {
        this.#signatureTags.set(tag, { tag, digest: src.digest, presentInTarget: true });
        return;
      }
    }
    const raw = await this.#read(() => this.#registry.findManifest({ ...repo, tag }, { absentIfDenied: !listed }, this.#signal));
    if (!raw) return;
    await this.#addAttachedManifest(repo, raw, kind, imgpkgTag(raw.digest), tag);
    this.#signatureTags.set(tag, { tag, digest: raw.digest, presentInTarget: false });
  }

  async #addAttachedManifest(repo: Repository, raw: RawManifest, kind: ArtifactKind, uploadTag: string | undefined, name: string): Promise<void> {
    await this.#visits(raw.digest, async () => {
      const m = parseManifest(raw);
      if (m.kind === 'index') {
        await this.#visitIndex(repo, raw, name, true);
      } else {
        const present = uploadTag !== undefined && this.#present(raw.digest);
        const blobs = present ? [] : this.#addBlobs(repo, [m.config, ...m.layers], name, true);
        this.#add({ digest: raw.digest, kind, source: repo, manifest: raw, children: [], blobs, uploadTag, presentInTarget: present });
      }
      return { kind, isBundle: false };
    });
  }

  async #referrersOf(repo: Repository, subject: string): Promise<void> {
    const all = await this.#read(() => this.#registry.listReferrers(repo, subject, this.#signal));
    const listed = all.filter((d) => this.#request.attached.referrers || (d.artifactType ?? '').startsWith(SIGSTORE_BUNDLE_PREFIX));
    if (listed.length === 0) return;
    const { target } = this.#request;
    const found = await Promise.all(listed.map(async (d) => {
      // The target first: a referrer already there costs one HEAD and no read of the source.
      if (await this.#read(() => this.#registry.headManifest({ ...target, digest: d.digest }, this.#signal))) return d;
      const raw = await this.#read(() => this.#registry.findManifest({ ...repo, digest: d.digest }, {}, this.#signal));
      if (!raw) {
        this.#log.warn({ subject, referrer: d.digest }, 'referrer listed but missing in the source; skipped');
        return undefined;
      }
      await this.#addAttachedManifest(repo, raw, 'referrer', undefined, `referrer ${d.digest} of ${subject}`);
      return d;
    }));
    const wanted = found.filter((d): d is Descriptor => d !== undefined);
    if (wanted.length === 0) return;
    const fallbackTag = subject.replace(':', '-');
    if (this.#targetTags.has(fallbackTag)) {
      // A re-run: nothing to write when the target's fallback index lists every referrer already.
      const index = await this.#read(() => this.#registry.findManifest({ ...target, tag: fallbackTag }, {}, this.#signal));
      const m = index ? parseManifest(index) : undefined;
      const indexed = new Set(m?.kind === 'index' ? m.manifests.map((d) => d.digest) : []);
      if (wanted.every((d) => indexed.has(d.digest))) return;
    }
    // Nothing to merge with in the target: the source's index, copied byte for byte, keeps its digest.
    const sourceIndex = !this.#targetTags.has(fallbackTag) && wanted.length === all.length && this.#registry.referrersApi?.(repo.registry) !== 'supported'
      ? await this.#read(() => this.#registry.findManifest({ ...repo, tag: fallbackTag }, { absentIfDenied: true }, this.#signal))
      : undefined;
    this.#referrers.push({ subject, referrers: wanted, ...(sourceIndex ? { sourceIndex } : {}) });
  }
}

/** imgpkg reads a bundle's images from exactly one layer of the Docker layer media type, and fails on any other. */
function mayBeBundle(manifest: { layers: readonly Descriptor[] }): boolean {
  return manifest.layers.length === 1 && manifest.layers[0]!.mediaType === MediaTypes.dockerLayer;
}

function isBundleConfig(config: unknown): boolean {
  const labels = (config as { config?: { Labels?: unknown } } | null)?.config?.Labels;
  return typeof labels === 'object' && labels !== null && Object.hasOwn(labels, BUNDLE_LABEL);
}
