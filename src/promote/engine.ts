import type { Logger } from '../log.js';
import { PromoteError } from '../errors.js';
import { formatReference, formatRepository, parseReference, type Registry, type Repository } from '../oci/index.js';
import { Planner, type PlanOptions, type PlanRequest, type PromotionPlan } from './plan.js';
import { PlanExecutor, type CopyCounts, type ExecuteOptions, type Progress } from './executor.js';
import { TargetWrites } from './target-writes.js';

/** What a verification of one artifact concluded; the cosign verifier's result satisfies this shape. */
export interface GateVerdict {
  readonly digest: string;
  readonly passed: boolean;
  readonly reasons: readonly string[];
}

/**
 * The signature policy as the engine sees it: which artifacts it covers and how to check one. Keeps the
 * engine free of key and policy formats; `cosign/` supplies the implementation.
 */
export interface VerificationGate {
  /** `bundle`: the root bundle only; `all`: every bundle and image the bundle references. */
  readonly scope: 'bundle' | 'all';
  verify(subject: GateSubject, signal?: AbortSignal): Promise<GateVerdict>;
}

/** One artifact to verify, with what the policy needs to pick its rules. */
export interface GateSubject {
  readonly repo: Repository;
  readonly digest: string;
  /** A bundle (the root or a nested one) or an image (or index) a bundle references. */
  readonly kind: 'bundle' | 'image';
  /**
   * Where the artifact comes from by name: the repository `images.yml` names it by (signed content of the
   * bundle), else the repository it is read from. A policy's `images[].match` is tested against it.
   */
  readonly origin: Repository;
}

export interface PromotionOptions extends PlanOptions, ExecuteOptions {
  /** Checked in the source before anything is written, and in the target before the bundle tags. */
  gate?: VerificationGate;
}

export interface PromotionResult {
  readonly source: string;
  readonly sourceDigest: string;
  readonly target: string;
  readonly tags: readonly string[];
  readonly counts: CopyCounts;
  readonly nonDistributable: PromotionPlan['nonDistributable'];
  readonly verification?: { readonly source: readonly GateVerdict[]; readonly target: readonly GateVerdict[] };
  readonly startedAt: string;
  readonly finishedAt: string;
}

/**
 * resolve → plan → verify source → copy → verify target → write tags. A pure function of its inputs and
 * the registries' contents: re-running it after any failure re-does only what is missing.
 */
export class PromotionEngine {
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #now: () => Date;

  constructor(deps: { registry: Registry; log: Logger; now?: () => Date }) {
    this.#registry = deps.registry;
    this.#log = deps.log;
    this.#now = deps.now ?? (() => new Date());
  }

  plan(request: PlanRequest, options: PlanOptions = {}, signal?: AbortSignal): Promise<PromotionPlan> {
    return new Planner({ registry: this.#registry, log: this.#log }).plan(request, options, signal);
  }

  async promote(request: PlanRequest, options: PromotionOptions = {}, signal?: AbortSignal): Promise<PromotionResult> {
    const startedAt = this.#now().toISOString();
    // Later phases report with the counts the copy reached, not a reset to zero.
    let last: Progress = { phase: 'plan', artifactsDone: 0, artifactsTotal: 0, blobsDone: 0, blobsTotal: 0, bytesDone: 0, bytesTotal: 0 };
    const report = (p: Progress) => {
      last = p;
      options.onProgress?.(p);
    };
    const progress = (phase: Progress['phase']) => report({ ...last, phase });
    progress('plan');
    // Every image is verified under scope all: no unsigned cache or shortcut may decide which images exist or what they are.
    const planOptions: PlanOptions = options.gate?.scope === 'all' ? { ...options, bundleDetectionShortcuts: false } : { ...options };
    // Without a gate nothing must wait for a verdict, so blob copies start while the walk still runs; with
    // one, nothing is written before the source has passed.
    const writes = options.gate ? undefined : new TargetWrites({ registry: this.#registry, target: request.target, ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}) }, signal);
    if (writes) planOptions.onBlobNeeded = (blob, targetIsNew) => void writes.copyBlob(blob, targetIsNew);
    let plan: PromotionPlan;
    try {
      plan = await this.plan(request, planOptions, signal);
    } catch (err) {
      // No copy outlives the promotion that started it.
      writes?.abort(err);
      await writes?.settled();
      throw err;
    }
    const log = this.#log.child({ source: formatReference(request.source), target: formatRepository(request.target) });
    log.info({ digest: plan.rootDigest, artifacts: plan.artifacts.length, blobs: plan.blobs.size }, 'planned promotion');

    const { gate } = options;
    let sourceVerdicts: GateVerdict[] = [];
    if (gate) {
      progress('verify-source');
      sourceVerdicts = await this.#verify(plan, gate, (a) => a.source, signal);
      failIfRejected(sourceVerdicts, `source ${formatReference(request.source)}`);
    }

    const executor = new PlanExecutor({ registry: this.#registry, log });
    const counts = await executor.copyContent(plan, { ...options, onProgress: report }, signal, writes);

    let targetVerdicts: GateVerdict[] = [];
    if (gate) {
      progress('verify-target');
      targetVerdicts = await this.#verify(plan, gate, () => plan.target, signal);
      failIfRejected(targetVerdicts, `target ${formatRepository(plan.target)}`);
    }

    progress('tags');
    counts.tagsWritten += await executor.writeBundleTags(plan, signal);
    progress('done');
    log.info({ digest: plan.rootDigest, copied: counts.artifactsCopied, uploaded: counts.blobs.uploaded, bytes: counts.bytesUploaded }, 'promotion complete');
    return {
      source: formatReference(request.source),
      sourceDigest: plan.rootDigest,
      target: formatRepository(plan.target),
      tags: plan.targetTags,
      counts,
      nonDistributable: plan.nonDistributable,
      ...(gate ? { verification: { source: sourceVerdicts, target: targetVerdicts } } : {}),
      startedAt,
      finishedAt: this.#now().toISOString(),
    };
  }

  async #verify(plan: PromotionPlan, gate: VerificationGate, repoOf: (a: PromotionPlan['artifacts'][number]) => Repository, signal?: AbortSignal): Promise<GateVerdict[]> {
    const subjects = plan.artifacts.filter((a) =>
      a.digest === plan.rootDigest || (gate.scope === 'all' && (a.kind === 'bundle' || a.kind === 'image' || a.kind === 'index')));
    return Promise.all(subjects.map((a) => gate.verify({ repo: repoOf(a), digest: a.digest, kind: a.kind === 'bundle' ? 'bundle' : 'image', origin: originOf(a) }, signal)));
  }
}

function originOf(a: PromotionPlan['artifacts'][number]): Repository {
  if (a.origRef !== undefined) {
    try {
      const ref = parseReference(a.origRef);
      return { registry: ref.registry, repository: ref.repository };
    } catch {
      // images.yml was validated when planning; fall back to where it is read from.
    }
  }
  return a.source;
}

function failIfRejected(verdicts: readonly GateVerdict[], where: string): void {
  const rejected = verdicts.filter((v) => !v.passed);
  if (rejected.length === 0) return;
  const detail = rejected.map((v) => `${v.digest}: ${v.reasons.join('; ') || 'rejected'}`).join(', ');
  throw new PromoteError('VERIFICATION_FAILED', `signature verification failed in the ${where}: ${detail}`);
}
