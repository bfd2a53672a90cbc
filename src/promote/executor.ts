import type { Logger } from '../log.js';
import { PromoteError } from '../errors.js';
import { formatRepository, type Registry, type Repository } from '../oci/index.js';
import { buildImageLocationsImage, imageLocationsTag } from '../bundle/index.js';
import { imgpkgTag, type PlannedArtifact, type PlannedReferrers, type PromotionPlan } from './plan.js';
import { limiter } from './limiter.js';

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
 * Writes a plan into its target in the order that keeps every tag honest: blobs, then manifests children
 * first, then signature tags and referrer indexes, then locations images. The bundle's own tags are a
 * separate step (`writeBundleTags`), taken only after the target has been verified.
 */
export class PlanExecutor {
  readonly #registry: Registry;
  readonly #log: Logger;

  constructor(deps: { registry: Registry; log: Logger }) {
    this.#registry = deps.registry;
    this.#log = deps.log;
  }

  async copyContent(plan: PromotionPlan, options: ExecuteOptions = {}, signal?: AbortSignal): Promise<CopyCounts> {
    const limit = limiter(options.concurrency ?? 8);
    const target = plan.target;
    const toCopy = plan.artifacts.filter((a) => !a.presentInTarget);
    const blobDigests = [...new Set(toCopy.flatMap((a) => a.blobs))];
    const progress: Progress = {
      phase: 'blobs', artifactsDone: 0, artifactsTotal: plan.artifacts.length, blobsDone: 0, blobsTotal: blobDigests.length,
      bytesDone: 0, bytesTotal: blobDigests.reduce((n, d) => n + (plan.blobs.get(d)?.descriptor.size ?? 0), 0),
    };
    const report = (phase: Phase) => { progress.phase = phase; options.onProgress?.({ ...progress }); };
    const counts: CopyCounts = {
      artifacts: plan.artifacts.length, artifactsCopied: 0, artifactsPresent: plan.artifacts.length - toCopy.length,
      bundles: plan.bundles.length, images: plan.artifacts.filter((a) => a.kind === 'image' || a.kind === 'index').length,
      signatures: plan.signatureTags.length,
      blobs: { uploaded: 0, mounted: 0, present: 0, skippedNonDistributable: plan.nonDistributable.reduce((n, i) => n + i.digests.length, 0) },
      bytesUploaded: 0, tagsWritten: 0,
    };
    progress.artifactsDone = counts.artifactsPresent;
    report('blobs');

    // One failure stops the siblings still in flight: no point finishing uploads of a doomed promotion.
    const failFast = new AbortController();
    const linked = signal ? AbortSignal.any([signal, failFast.signal]) : failFast.signal;
    const all = async <T>(items: readonly T[], each: (item: T) => Promise<void>): Promise<void> => {
      await Promise.all(items.map((item) => limit(() => each(item)).catch((err: unknown) => {
        failFast.abort(err);
        throw err;
      })));
    };

    await all(blobDigests, async (digest) => {
      const blob = plan.blobs.get(digest);
      if (!blob) throw new PromoteError('MANIFEST_INVALID', `internal: blob ${digest} is not in the plan`);
      const outcome = await this.#registry.copyBlob(
        { repo: blob.source, descriptor: blob.descriptor, ...(blob.bytes ? { bytes: blob.bytes } : {}), ...(plan.targetExisted ? {} : { targetIsNew: true }) }, target, linked);
      counts.blobs[outcome] += 1;
      if (outcome === 'uploaded') counts.bytesUploaded += blob.descriptor.size;
      progress.blobsDone += 1;
      progress.bytesDone += blob.descriptor.size;
      report('blobs');
    });

    report('manifests');
    for (const level of byLevel(toCopy)) {
      await all(level, async (artifact) => {
        await this.#putManifest(artifact, target, linked);
        counts.artifactsCopied += 1;
        progress.artifactsDone += 1;
        report('manifests');
      });
    }

    report('attachments');
    const byDigest = new Map(plan.artifacts.map((a) => [a.digest, a]));
    await all(plan.signatureTags.filter((t) => !t.presentInTarget), async (t) => {
      const artifact = byDigest.get(t.digest);
      if (!artifact?.manifest) throw new PromoteError('MANIFEST_INVALID', `internal: ${t.tag} has no manifest in the plan`);
      await this.#put(target, { tag: t.tag }, artifact.manifest.mediaType, artifact.manifest.bytes, t.digest, linked);
      counts.tagsWritten += 1;
    });
    await all(plan.referrers, (r) => this.#writeReferrers(r, target, linked));

    report('locations');
    // Sequential, root first, as imgpkg writes them.
    for (const bundle of plan.bundles) {
      if (bundle.locationsPresentInTarget) continue;
      const image = await buildImageLocationsImage(bundle.locations);
      for (const blob of image.blobs) await this.#registry.pushBlob(target, blob.bytes, blob.mediaType, linked);
      const { mediaType, bytes, digest } = image.manifest;
      await this.#put(target, { tag: imageLocationsTag(bundle.digest) }, mediaType, bytes, digest, linked);
      await this.#put(target, { tag: imgpkgTag(digest) }, mediaType, bytes, digest, linked);
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

/** Groups manifests so that each group only depends on earlier ones (index children before their index). */
function byLevel(artifacts: readonly PlannedArtifact[]): PlannedArtifact[][] {
  const byDigest = new Map(artifacts.map((a) => [a.digest, a]));
  const levels = new Map<string, number>();
  const levelOf = (a: PlannedArtifact): number => {
    const known = levels.get(a.digest);
    if (known !== undefined) return known;
    let level = 0;
    for (const child of a.children) {
      const c = byDigest.get(child);
      if (c) level = Math.max(level, levelOf(c) + 1);
    }
    levels.set(a.digest, level);
    return level;
  };
  const groups: PlannedArtifact[][] = [];
  for (const a of artifacts) (groups[levelOf(a)] ??= []).push(a);
  return groups.filter((g) => g !== undefined);
}
