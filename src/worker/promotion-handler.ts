import { SignatureVerifier } from '../cosign/index.js';
import { isPromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseReference, parseRepository, type RegistryClientOptions } from '../oci/index.js';
import { PromotionEngine, type Progress, type VerificationGate } from '../promote/index.js';
import type { JobHandler, PromotionJobData, PromotionJobProgress, PromotionJobResult } from '../queue/job-queue.js';
import type { ConfigReader } from '../sources/ports.js';
import { openRegistry } from '../sources/registry-access.js';
import { policyFromSpec } from '../sources/verify-policy.js';

/** What the worker reports beyond the job's own result: the metrics module implements it. */
export interface PromotionObserver {
  copied?(registry: string, counts: PromotionJobResult['counts'] & { manifestsCopied: number; manifestsPresent: number }): void;
  verification?(stage: 'source' | 'target', result: 'passed' | 'failed', reason?: string): void;
}

export interface PromotionHandlerDeps {
  readonly reader: ConfigReader;
  readonly log: Logger;
  readonly registryOptions?: Partial<RegistryClientOptions>;
  readonly observer?: PromotionObserver;
  /** Least time between two progress reports of one job (phase changes always report). @defaultValue 1000 */
  readonly progressIntervalMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The worker's job: resolve the referenced Secrets, build the registry client and the verification gate,
 * and run the engine. Errors stay `PromoteError`s; the queue decides what is retried.
 */
export function promotionHandler(deps: PromotionHandlerDeps): JobHandler {
  return async (job, reportProgress, signal) => {
    const data = job.data;
    const log = deps.log.child({ promotion: `${data.promotion.namespace}/${data.promotion.name}`, jobId: job.id, attempt: job.attemptsMade + 1 });
    const handle = await openRegistry({
      namespace: data.promotion.namespace, sourceCredentials: data.sourceCredentials, targetCredentials: data.targetCredentials, registry: data.registry,
    }, { reader: deps.reader, log, ...(deps.env ? { env: deps.env } : {}), ...(deps.registryOptions ? { options: deps.registryOptions } : {}) }, signal);
    try {
      const gate = await gateOf(data, handle.client, deps, log, signal);
      const engine = new PromotionEngine({ registry: handle.client, log });
      const report = throttled(reportProgress, deps.progressIntervalMs ?? 1000);
      log.info({ source: data.source, target: data.target }, 'promotion started');
      let result;
      try {
        result = await engine.promote({
          source: parseReference(data.source),
          target: parseRepository(data.target),
          tags: data.tags,
          attached: {
            signatures: data.copy.signatures,
            attestations: data.copy.include.includes('att'),
            sboms: data.copy.include.includes('sbom'),
            referrers: data.copy.include.includes('referrers'),
          },
        }, { concurrency: data.copy.concurrency, onProgress: report, ...(gate ? { gate } : {}) }, signal);
      } catch (e) {
        if (isPromoteError(e, 'VERIFICATION_FAILED')) deps.observer?.verification?.(/in the target/.test(e.message) ? 'target' : 'source', 'failed', reasonIn(e.message));
        throw e;
      }
      if (gate) {
        if (data.verify?.source !== false) deps.observer?.verification?.('source', 'passed');
        if (data.verify?.target !== false) deps.observer?.verification?.('target', 'passed');
      }
      const c = result.counts;
      const counts = {
        images: c.images, artifacts: c.artifacts, blobsUploaded: c.blobs.uploaded, blobsMounted: c.blobs.mounted, blobsPresent: c.blobs.present,
        bytes: c.bytesUploaded, registryRequests: handle.client.stats.requests,
      };
      deps.observer?.copied?.(parseRepository(data.target).registry, { ...counts, manifestsCopied: c.artifactsCopied, manifestsPresent: c.artifactsPresent });
      log.info({ digest: result.sourceDigest, uploaded: c.blobs.uploaded, bytes: c.bytesUploaded }, 'promotion finished');
      return { sourceDigest: result.sourceDigest, target: result.target, tags: result.tags, startedAt: result.startedAt, finishedAt: result.finishedAt, counts };
    } finally {
      await handle.close();
    }
  };
}

/** The engine's gate for `spec.verify`: each side may be switched off; `undefined` when nothing is verified. */
async function gateOf(data: PromotionJobData, registry: ConstructorParameters<typeof SignatureVerifier>[0]['registry'], deps: PromotionHandlerDeps, log: Logger, signal: AbortSignal): Promise<VerificationGate | undefined> {
  const spec = data.verify;
  if (spec === undefined || (spec.source === false && spec.target === false)) return undefined;
  const policy = await policyFromSpec(spec, data.promotion.namespace, deps.reader, signal);
  const verifier = new SignatureVerifier({ registry, log });
  const target = parseRepository(data.target);
  const inTarget = (repo: { registry: string; repository: string }) => repo.registry === target.registry && repo.repository === target.repository;
  return {
    scope: policy.scope,
    async verify(subject, sig) {
      // A side switched off passes without looking: the engine asks both.
      const side = inTarget(subject.repo) ? spec.target : spec.source;
      if (side === false) return { digest: subject.digest, passed: true, reasons: [] };
      return verifier.verify(subject, policy, sig);
    },
  };
}

/** The first failure reason named in a verification message, for a bounded metrics label. */
function reasonIn(message: string): string {
  const known = ['no signatures found', 'signature invalid', 'digest mismatch', 'missing or incorrect annotation', 'untrusted identity', 'tlog evidence missing', 'tlog evidence invalid', 'attestation missing'];
  return known.find((r) => message.includes(r)) ?? 'other';
}

function throttled(report: (p: PromotionJobProgress) => void, intervalMs: number): (p: Progress) => void {
  let last = 0;
  let phase = '';
  return (p) => {
    const now = Date.now();
    if (p.phase === phase && now - last < intervalMs) return;
    last = now;
    phase = p.phase;
    report({ ...p });
  };
}

