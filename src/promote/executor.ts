import type { Logger } from '../log.js';
import { PromoteError } from '../errors.js';
import { formatRepository, type Registry, type Repository } from '../oci/index.js';
import { buildImageLocationsImage, imageLocationsTag } from '../bundle/index.js';
import { imgpkgTag, type PlannedArtifact, type PlannedReferrers, type PlannedTag, type PromotionPlan } from './plan.js';
import { once } from './limiter.js';
import { TargetWrites } from './target-writes.js';

export type Phase = 'plan' | 'verify-source' | 'blobs' | 'manifests' | 'attachments' | 'locations' | 'verify-target' | 'tags' | 'done';

export interface Progress {
  phase: Phase;
  artifactsDone: number;
  artifactsTotal: number;
  blobsDone: number;
  blobsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface CopyCounts {
  /** Manifests in the closure (bundles, images, index children, signatures, attestations, SBOMs, referrers). */
  artifacts: number;
  artifactsCopied: number;
  artifactsPresent: number;
  bundles: number;
  images: number;
  signatures: number;
  blobs: { uploaded: number; mounted: number; present: number; skippedNonDistributable: number };
  bytesUploaded: number;
  tagsWritten: number;
}

export interface ExecuteOptions {
  /** Parallel blob and manifest writes. @defaultValue 8 */
  concurrency?: number;
  onProgress?: (progress: Progress) => void;
}

/**
 * Writes a plan into its target in the order that keeps every tag honest: an artifact's manifest once its
 * blobs (and index children) are in, its signature tags once it is, then referrer indexes, then locations
 * images. Nothing waits for a phase to end: each write waits only for what it depends on. The bundle's
 * own tags are a separate step (`writeBundleTags`), taken only after the target has been verified.
 */
export class PlanExecutor {
  readonly #registry: Registry;
  readonly #log: Logger;

  constructor(deps: { registry: Registry; log: Logger }) {
    this.#registry = deps.registry;
    this.#log = deps.log;
  }

  /**
   * `writes`: the promotion's writes, when some blob copies were started while planning (the engine's
   * overlap); by default a fresh one.
   */
  async copyContent(plan: PromotionPlan, options: ExecuteOptions = {}, signal?: AbortSignal, writes?: TargetWrites): Promise<CopyCounts> {
    const session = writes ?? new TargetWrites({ registry: this.#registry, target: plan.target, ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}) }, signal);
    const target = plan.target;
    const toCopy = plan.artifacts.filter((a) => !a.presentInTarget);
    const blobDigests = [...new Set(toCopy.flatMap((a) => a.blobs))];
    const progress: Progress = {
      phase: 'blobs', artifactsDone: 0, artifactsTotal: plan.artifacts.length, blobsDone: 0, blobsTotal: blobDigests.length,
      bytesDone: 0, bytesTotal: blobDigests.reduce((n, d) => n + (plan.blobs.get(d)?.descriptor.size ?? 0), 0),
    };
    const report = (phase: Phase) => { progress.phase = phase; options.onProgress?.({ ...progress }); };
    // Manifests go in while blobs still copy; the phase reported is the one that still has work left.
    const copying = () => report(progress.blobsDone < progress.blobsTotal ? 'blobs' : 'manifests');
    const counts: CopyCounts = {
      artifacts: plan.artifacts.length, artifactsCopied: 0, artifactsPresent: plan.artifacts.length - toCopy.length,
      bundles: plan.bundles.length, images: plan.artifacts.filter((a) => a.kind === 'image' || a.kind === 'index').length,
      signatures: plan.signatureTags.length,
      blobs: { uploaded: 0, mounted: 0, present: 0, skippedNonDistributable: plan.nonDistributable.reduce((n, i) => n + i.digests.length, 0) },
      bytesUploaded: 0, tagsWritten: 0,
    };
    progress.artifactsDone = counts.artifactsPresent;
    report('blobs');

    const blobsIn = once<string, void>();
    const blobIn = (digest: string) => blobsIn(digest, async () => {
      const blob = plan.blobs.get(digest);
      if (!blob) throw new PromoteError('MANIFEST_INVALID', `internal: blob ${digest} is not in the plan`);
      const outcome = await session.copyBlob(blob, !plan.targetExisted);
      counts.blobs[outcome] += 1;
      if (outcome === 'uploaded') counts.bytesUploaded += blob.descriptor.size;
      progress.blobsDone += 1;
      progress.bytesDone += blob.descriptor.size;
      copying();
    });
    const pending = new Map(toCopy.map((a) => [a.digest, a]));
    const tagsOf = Map.groupBy(plan.signatureTags.filter((t) => !t.presentInTarget), (t) => t.digest);
    const written = once<string, void>();
    const write = (artifact: PlannedArtifact): Promise<void> => written(artifact.digest, async () => {
      const children = artifact.children.flatMap((c) => pending.get(c) ?? []);
      await Promise.all([...artifact.blobs.map(blobIn), ...children.map(write)]);
      await session.run((s) => this.#putManifest(artifact, target, s));
      counts.artifactsCopied += 1;
      progress.artifactsDone += 1;
      copying();
      await Promise.all((tagsOf.get(artifact.digest) ?? []).map((t) => this.#writeTag(t, artifact, session, counts)));
    });
    await Promise.all(toCopy.map(write));

    report('attachments');
    // Tags of manifests already in the target (a run stopped between the manifest and its tag).
    const byDigest = new Map(plan.artifacts.map((a) => [a.digest, a]));
    const left = plan.signatureTags.filter((t) => !t.presentInTarget && !pending.has(t.digest));
    await Promise.all(left.map((t) => this.#writeTag(t, byDigest.get(t.digest), session, counts)));
    await Promise.all(plan.referrers.map((r) => session.run((s) => this.#writeReferrers(r, target, s))));

    report('locations');
    // Sequential, root first, as imgpkg writes them.
    for (const bundle of plan.bundles) {
      if (bundle.locationsPresentInTarget) continue;
      const image = await buildImageLocationsImage(bundle.locations);
      for (const blob of image.blobs) await session.run((s) => this.#registry.pushBlob(target, blob.bytes, blob.mediaType, s));
      const { mediaType, bytes, digest } = image.manifest;
      await session.run((s) => this.#put(target, { tag: imageLocationsTag(bundle.digest) }, mediaType, bytes, digest, s));
      await session.run((s) => this.#put(target, { tag: imgpkgTag(digest) }, mediaType, bytes, digest, s));
      counts.tagsWritten += 2;
    }
    return counts;
  }

  /** The root bundle's human tags: the very last writes of a promotion. */
  async writeBundleTags(plan: PromotionPlan, signal?: AbortSignal): Promise<number> {
    let written = 0;
    for (const tag of plan.targetTags) {
      // A tag already naming the digest is left alone: immutable tags (ECR) refuse even a same-digest PUT,
      // and a re-promotion then writes nothing. Returns the number of tags actually written.
      const held = await this.#registry.headManifest({ ...plan.target, tag }, signal);
      if (held?.digest === plan.rootDigest) continue;
      await this.#put(plan.target, { tag }, plan.root.mediaType, plan.root.bytes, plan.rootDigest, signal);
      written += 1;
    }
    return written;
  }

  async #putManifest(artifact: PlannedArtifact, target: Repository, signal: AbortSignal): Promise<void> {
    if (!artifact.manifest) throw new PromoteError('MANIFEST_INVALID', `internal: ${artifact.digest} is missing from the target but was not read`);
    // AWS ECR and imgpkg both prefer tags over digests for top-level manifests; children go by digest.
    const where = artifact.uploadTag !== undefined ? { tag: artifact.uploadTag } : { digest: artifact.digest };
    await this.#put(target, where, artifact.manifest.mediaType, artifact.manifest.bytes, artifact.digest, signal);
  }

  async #writeTag(t: PlannedTag, artifact: PlannedArtifact | undefined, session: TargetWrites, counts: CopyCounts): Promise<void> {
    if (!artifact?.manifest) throw new PromoteError('MANIFEST_INVALID', `internal: ${t.tag} has no manifest in the plan`);
    const { mediaType, bytes } = artifact.manifest;
    await session.run((s) => this.#put(session.target, { tag: t.tag }, mediaType, bytes, t.digest, s));
    counts.tagsWritten += 1;
  }

  async #put(target: Repository, where: { tag: string } | { digest: string }, mediaType: string, bytes: Buffer, expected: string, signal: AbortSignal | undefined): Promise<void> {
    const stored = await this.#registry.putManifest({ ...target, ...where }, { mediaType, bytes }, signal);
    if (stored !== expected) {
      throw new PromoteError('DIGEST_MISMATCH',
        `${formatRepository(target)}:${'tag' in where ? where.tag : where.digest} was stored as ${stored}, expected ${expected}`);
    }
  }

  async #writeReferrers(planned: PlannedReferrers, target: Repository, signal: AbortSignal): Promise<void> {
    const template = planned.sourceIndex ? { template: planned.sourceIndex } : {};
    const written = await this.#registry.indexReferrers(target, planned.subject, planned.referrers, template, signal);
    if (written) this.#log.debug({ subject: planned.subject, referrers: planned.referrers.length }, 'wrote referrers fallback index');
  }
}
