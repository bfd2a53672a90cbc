import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FailureReason } from '../cosign/index.js';
import type { Logger } from '../log.js';
import type { RegistryObserver, RetryReason } from '../oci/index.js';

/** The labels that name a promotion: its namespace and name (for the YAML-directory source, its folder and file name). */
export interface PromotionLabels {
  readonly namespace: string;
  readonly name: string;
}

export type PromotionResult = 'succeeded' | 'failed';
export type VerificationStage = 'source' | 'target';
export type VerificationResult = 'passed' | 'failed';
export type ReconcileResult = 'success' | 'error' | 'requeue';
export type QueueState = 'waiting' | 'active' | 'delayed' | 'completed' | 'failed';
export type QueueCounts = Record<QueueState, number>;

/** What one promotion wrote to (or found in) its target registry. */
export interface CopyCounts {
  /** The target registry (`host[:port]`). */
  readonly registry: string;
  readonly blobsUploaded: number;
  readonly blobsMounted: number;
  readonly blobsPresent: number;
  /** Bytes uploaded to the target (mounted and present blobs cost none). */
  readonly bytes: number;
  readonly manifestsCopied: number;
  readonly manifestsPresent: number;
}

export interface MetricsOptions {
  /** Node's process and runtime metrics (`process_*`, `nodejs_*`, prom-client's standard names). @defaultValue true */
  defaultMetrics?: boolean;
  /** Where failing scrape-time callbacks are reported (at warn). @defaultValue no logging */
  log?: Logger;
  /**
   * Longest wait for a scrape-time callback ({@link Metrics.setQueueCounts}); a slower one is treated as
   * failed, so that a hung Redis cannot hold the whole scrape until Prometheus gives up. @defaultValue 2_000
   */
  collectTimeoutMs?: number;
}

const QUEUE_STATES: readonly QueueState[] = ['waiting', 'active', 'delayed', 'completed', 'failed'];

/**
 * The label for each verification failure reason. A `Record` over cosign's `FailureReason`, so that a
 * reason added there fails the type check here until it has a label; anything else is `other`.
 */
const REASON_LABELS: Readonly<Record<FailureReason, string>> = {
  'no signatures found': 'no_signatures_found',
  'signature invalid': 'signature_invalid',
  'digest mismatch': 'digest_mismatch',
  'missing or incorrect annotation': 'missing_or_incorrect_annotation',
  'untrusted identity': 'untrusted_identity',
  'tlog evidence missing': 'tlog_evidence_missing',
  'tlog evidence invalid': 'tlog_evidence_invalid',
  'attestation missing': 'attestation_missing',
};

/** Every value the `reason` label of `bundle_promoter_verifications_total` can take. */
export const VERIFICATION_REASON_LABELS: readonly string[] = ['none', ...Object.values(REASON_LABELS), 'other'];

/** The `reason` label for a verification: `none` when it passed, the snake_case reason, or `other`. */
export function verificationReasonLabel(result: VerificationResult, reason: string | undefined): string {
  if (result === 'passed') return 'none';
  if (reason === undefined) return 'other';
  return Object.hasOwn(REASON_LABELS, reason) ? REASON_LABELS[reason as FailureReason] : 'other';
}

/** The `code` label of a registry request: the HTTP status, or `error` when none came (network failure). */
export function statusCodeLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'error';
}

const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
const RETRY_REASONS: readonly RetryReason[] = ['throttled', 'server-error', 'network', 'timeout', 'auth-refresh'];

// Decision (docs/metrics.md#buckets): a promotion takes seconds (everything present) to an hour (GBs of
// layers); a registry request milliseconds (HEAD) to minutes (a streamed PUT of a large layer).
const PROMOTION_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const RECONCILE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Every metric of bundle-promoter, on a prom-client `Registry` of its own (never the global one), and the
 * verbs that record them. Label values are bounded: promotions (namespace/name), registries, HTTP methods
 * and statuses, and fixed enumerations — never digests, tags or job ids.
 */
export class Metrics {
  readonly #registry = new Registry();
  readonly #log: Logger | undefined;
  readonly #collectTimeoutMs: number;

  readonly #promotions: Counter<'namespace' | 'name' | 'result'>;
  readonly #promotionDuration: Histogram<'result'>;
  readonly #promotionReady: Gauge<'namespace' | 'name'>;
  readonly #lastSuccess: Gauge<'namespace' | 'name'>;
  readonly #lastSuccessSeconds = new Map<string, number>();

  readonly #blobs: Counter<'action'>;
  readonly #bytes: Counter<'registry'>;
  readonly #manifests: Counter<'action'>;
  readonly #verifications: Counter<'stage' | 'result' | 'reason'>;

  readonly #requests: Counter<'registry' | 'method' | 'code'>;
  readonly #requestDuration: Histogram<'registry' | 'method'>;
  readonly #throttled: Counter<'registry'>;
  readonly #retries: Counter<'registry' | 'reason'>;
  readonly #registriesSeen = new Set<string>();

  readonly #reconciles: Counter<'result'>;
  readonly #reconcileDuration: Histogram;

  readonly #queueJobs: Gauge<'state'>;
  #queueCounts: (() => Promise<QueueCounts>) | undefined;
  readonly #leader: Gauge;
  #leaderRegistered = false;
  readonly #activeJobs: Gauge;
  #activeJobsFn: (() => number) | undefined;
  readonly #collectErrors: Counter<'collector'>;

  constructor(options: MetricsOptions = {}) {
    this.#log = options.log;
    this.#collectTimeoutMs = options.collectTimeoutMs ?? 2_000;
    const registers = [this.#registry];

    this.#promotions = new Counter({
      name: 'bundle_promoter_promotions_total',
      help: 'Promotions finished, by promotion and result (succeeded, failed).',
      labelNames: ['namespace', 'name', 'result'],
      registers,
    });
    this.#promotionDuration = new Histogram({
      name: 'bundle_promoter_promotion_duration_seconds',
      help: 'Time from the start of a promotion job to its end, by result.',
      labelNames: ['result'],
      buckets: PROMOTION_BUCKETS,
      registers,
    });
    this.#promotionReady = new Gauge({
      name: 'bundle_promoter_promotion_ready',
      help: '1 when the promotion\'s Ready condition is True, else 0. Exported by the leading controller only.',
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.#lastSuccess = new Gauge({
      name: 'bundle_promoter_promotion_last_success_timestamp_seconds',
      help: 'Unix time at which the promotion last succeeded. Exported by the leading controller only.',
      labelNames: ['namespace', 'name'],
      registers,
    });

    this.#blobs = new Counter({
      name: 'bundle_promoter_blobs_total',
      help: 'Blobs handled by promotions, by action: uploaded, mounted (cross-repository), present (already in the target).',
      labelNames: ['action'],
      registers,
    });
    this.#bytes = new Counter({
      name: 'bundle_promoter_bytes_copied_total',
      help: 'Blob bytes uploaded to target registries.',
      labelNames: ['registry'],
      registers,
    });
    this.#manifests = new Counter({
      name: 'bundle_promoter_manifests_total',
      help: 'Manifests handled by promotions, by action: copied, present (already in the target).',
      labelNames: ['action'],
      registers,
    });
    this.#verifications = new Counter({
      name: 'bundle_promoter_verifications_total',
      help: 'Signature verifications, by stage (source, target), result (passed, failed) and failure reason (none when passed).',
      labelNames: ['stage', 'result', 'reason'],
      registers,
    });

    this.#requests = new Counter({
      name: 'bundle_promoter_registry_requests_total',
      help: 'HTTP requests to registries (every attempt, token requests included), by registry, method and status code (error: no answer).',
      labelNames: ['registry', 'method', 'code'],
      registers,
    });
    this.#requestDuration = new Histogram({
      name: 'bundle_promoter_registry_request_duration_seconds',
      help: 'Time from sending a registry request to its response headers (uploads include the body), by registry and method.',
      labelNames: ['registry', 'method'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.#throttled = new Counter({
      name: 'bundle_promoter_registry_throttled_total',
      help: 'Registry requests answered 429 Too Many Requests.',
      labelNames: ['registry'],
      registers,
    });
    this.#retries = new Counter({
      name: 'bundle_promoter_registry_retries_total',
      help: 'Registry requests tried again, by reason (throttled, server-error, timeout, network, auth-refresh).',
      labelNames: ['registry', 'reason'],
      registers,
    });

    this.#reconciles = new Counter({
      name: 'bundle_promoter_reconcile_total',
      help: 'Reconciles of a promotion, by result (success, error, requeue).',
      labelNames: ['result'],
      registers,
    });
    this.#reconcileDuration = new Histogram({
      name: 'bundle_promoter_reconcile_duration_seconds',
      help: 'Time one reconcile took.',
      buckets: RECONCILE_BUCKETS,
      registers,
    });

    this.#collectErrors = new Counter({
      name: 'bundle_promoter_metrics_collect_errors_total',
      help: 'Scrape-time callbacks that failed or timed out (their gauges keep the last values), by collector.',
      labelNames: ['collector'],
      registers,
    });
    this.#queueJobs = new Gauge({
      name: 'bundle_promoter_queue_jobs',
      help: 'Jobs in the promotion queue by state, read at scrape time.',
      labelNames: ['state'],
      registers,
    });
    // Decision (docs/metrics.md#presence): the leader and worker gauges appear only once a process takes
    // that role, so that `absent()` in an alert means "no process has it" and not "every process says 0".
    this.#leader = new Gauge({
      name: 'bundle_promoter_leader',
      help: '1 while this controller process holds the leader Lease, else 0.',
      registers: [],
    });
    this.#activeJobs = new Gauge({
      name: 'bundle_promoter_worker_active_jobs',
      help: 'Promotion jobs this worker process is running, read at scrape time.',
      registers: [],
    });

    // Known label values start at 0, so that rate() and increase() see the first event.
    for (const action of ['uploaded', 'mounted', 'present']) this.#blobs.inc({ action }, 0);
    for (const action of ['copied', 'present']) this.#manifests.inc({ action }, 0);
    for (const result of ['success', 'error', 'requeue']) this.#reconciles.inc({ result }, 0);
    for (const collector of ['queue_jobs', 'worker_active_jobs']) this.#collectErrors.inc({ collector }, 0);
    for (const stage of ['source', 'target'] as const) {
      for (const reason of VERIFICATION_REASON_LABELS) this.#verifications.inc({ stage, result: reason === 'none' ? 'passed' : 'failed', reason }, 0);
    }

    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.#registry });
      // Decision (docs/metrics.md#default-metrics): these three are gauges named `_total`, which
      // `promtool check metrics` rejects; `nodejs_active_{handles,requests,resources}{type}` carry the same counts.
      for (const name of LINT_FAILING_DEFAULTS) this.#registry.removeSingleMetric(name);
    }
  }

  // ---------------------------------------------------------------- promotions

  /** A promotion job ended: counts it, observes its duration, and on success moves the last-success time. */
  promotionFinished(ref: PromotionLabels, result: PromotionResult, durationSeconds: number, finishedAt: Date): void {
    this.#promotions.inc(labels(ref, { result }));
    if (Number.isFinite(durationSeconds) && durationSeconds >= 0) this.#promotionDuration.observe({ result }, durationSeconds);
    if (result === 'succeeded') this.promotionLastSucceeded(ref, finishedAt);
  }

  /**
   * Sets the last-success time without counting a promotion, e.g. from `status.lastPromotion` when a new
   * leader takes over. The time only moves forward.
   */
  promotionLastSucceeded(ref: PromotionLabels, finishedAt: Date): void {
    const seconds = finishedAt.getTime() / 1000;
    if (!Number.isFinite(seconds)) return;
    const key = keyOf(ref);
    if ((this.#lastSuccessSeconds.get(key) ?? Number.NEGATIVE_INFINITY) >= seconds) return;
    this.#lastSuccessSeconds.set(key, seconds);
    this.#lastSuccess.set(labels(ref), seconds);
  }

  /** The promotion's Ready condition, as the reconciler last computed it. */
  promotionReady(ref: PromotionLabels, ready: boolean): void {
    this.#promotionReady.set(labels(ref), ready ? 1 : 0);
  }

  /** The promotion was deleted: drops every series that names it. */
  forgetPromotion(ref: PromotionLabels): void {
    for (const result of ['succeeded', 'failed'] as const) this.#promotions.remove(labels(ref, { result }));
    this.#promotionReady.remove(labels(ref));
    this.#lastSuccess.remove(labels(ref));
    this.#lastSuccessSeconds.delete(keyOf(ref));
  }

  // ---------------------------------------------------------------- copy and verification

  /** What one promotion (or one run of it) copied into its target. */
  copied(c: CopyCounts): void {
    addIf(this.#blobs, { action: 'uploaded' }, c.blobsUploaded);
    addIf(this.#blobs, { action: 'mounted' }, c.blobsMounted);
    addIf(this.#blobs, { action: 'present' }, c.blobsPresent);
    addIf(this.#bytes, { registry: c.registry }, c.bytes);
    addIf(this.#manifests, { action: 'copied' }, c.manifestsCopied);
    addIf(this.#manifests, { action: 'present' }, c.manifestsPresent);
  }

  /**
   * One verification of a promotion's artifacts. `reason` is one of cosign's failure reasons (the most
   * telling one when there are several); any other string is recorded as `other`.
   */
  verification(stage: VerificationStage, result: VerificationResult, reason?: string): void {
    this.#verifications.inc({ stage, result, reason: verificationReasonLabel(result, reason) });
  }

  // ---------------------------------------------------------------- registries

  /** The hook to pass as `RegistryClientOptions.observer`: requests, durations, 429s and retries per registry. */
  registryObserver(): RegistryObserver {
    return {
      requestFinished: (e) => {
        this.#seeRegistry(e.registry);
        const method = METHODS.has(e.method) ? e.method : 'OTHER';
        this.#requests.inc({ registry: e.registry, method, code: statusCodeLabel(e.status) });
        if (Number.isFinite(e.durationMs) && e.durationMs >= 0) {
          this.#requestDuration.observe({ registry: e.registry, method }, e.durationMs / 1000);
        }
        if (e.status === 429) this.#throttled.inc({ registry: e.registry });
      },
      retried: (e) => {
        this.#seeRegistry(e.registry);
        this.#retries.inc({ registry: e.registry, reason: RETRY_REASONS.includes(e.reason) ? e.reason : 'other' });
      },
    };
  }

  /**
   * A registry's throttle and retry counters start at 0 with its first request, so that increase() sees
   * their first event and the auth-error alert (401s minus auth-refresh retries) has both sides.
   */
  #seeRegistry(registry: string): void {
    if (this.#registriesSeen.has(registry)) return;
    this.#registriesSeen.add(registry);
    this.#throttled.inc({ registry }, 0);
    for (const reason of RETRY_REASONS) this.#retries.inc({ registry, reason }, 0);
  }

  // ---------------------------------------------------------------- controller and worker

  /** One reconcile ended. */
  reconciled(result: ReconcileResult, durationSeconds: number): void {
    this.#reconciles.inc({ result });
    if (Number.isFinite(durationSeconds) && durationSeconds >= 0) this.#reconcileDuration.observe(durationSeconds);
  }

  /**
   * Whether this process leads. Losing the lead also drops the per-promotion gauges (ready, last
   * success): only the leader's view is current, and a standby's stale copy would keep alerts firing.
   */
  setLeader(leader: boolean): void {
    if (!this.#leaderRegistered) {
      this.#registry.registerMetric(this.#leader);
      this.#leaderRegistered = true;
    }
    this.#leader.set(leader ? 1 : 0);
    if (!leader) {
      this.#promotionReady.reset();
      this.#lastSuccess.reset();
      this.#lastSuccessSeconds.clear();
    }
  }

  /**
   * Where queue depth comes from; called at every scrape (by {@link render}, with a timeout). When it fails, the gauges keep
   * their last values and `bundle_promoter_metrics_collect_errors_total{collector="queue_jobs"}` counts it.
   */
  setQueueCounts(fn: () => Promise<QueueCounts>): void {
    this.#queueCounts = fn;
  }

  /** Marks this process as a worker; `fn` (the jobs it runs now) is read at every scrape. */
  setActiveJobs(fn: () => number): void {
    if (this.#activeJobsFn === undefined) this.#registry.registerMetric(this.#activeJobs);
    this.#activeJobsFn = fn;
  }

  // ---------------------------------------------------------------- exposition

  /** The Prometheus text exposition of every metric, collected now. */
  async render(): Promise<{ contentType: string; body: string }> {
    // Decision (docs/metrics.md#scrape-time): the callbacks run here, before prom-client serialises, not in
    // collect() hooks: prom-client runs those concurrently with the other metrics and fails the whole scrape
    // when one rejects; here a failure is contained and counted in the same scrape.
    this.#collectActiveJobs();
    await this.#collectQueue();
    return { contentType: this.#registry.contentType, body: await this.#registry.metrics() };
  }

  async #collectQueue(): Promise<void> {
    const fn = this.#queueCounts;
    if (fn === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${this.#collectTimeoutMs} ms`)), this.#collectTimeoutMs);
      });
      const counts = await Promise.race([Promise.resolve().then(fn), timeout]);
      for (const state of QUEUE_STATES) {
        const n = (counts as Partial<QueueCounts> | undefined)?.[state];
        if (typeof n === 'number' && Number.isFinite(n) && n >= 0) this.#queueJobs.set({ state }, n);
      }
    } catch (e) {
      this.#collectFailed('queue_jobs', e);
    } finally {
      clearTimeout(timer);
    }
  }

  #collectActiveJobs(): void {
    const fn = this.#activeJobsFn;
    if (fn === undefined) return;
    try {
      const n = fn();
      if (typeof n === 'number' && Number.isFinite(n) && n >= 0) this.#activeJobs.set(n);
    } catch (e) {
      this.#collectFailed('worker_active_jobs', e);
    }
  }

  #collectFailed(collector: string, e: unknown): void {
    this.#collectErrors.inc({ collector });
    this.#log?.warn({ collector, error: e instanceof Error ? e.message : String(e) }, 'metrics collector failed; keeping its last values');
  }
}

function labels(ref: PromotionLabels): { namespace: string; name: string };
function labels<T extends Record<string, string>>(ref: PromotionLabels, extra: T): { namespace: string; name: string } & T;
function labels(ref: PromotionLabels, extra: Record<string, string> = {}): Record<string, string> {
  return { namespace: ref.namespace, name: ref.name, ...extra };
}

function keyOf(ref: PromotionLabels): string {
  return `${ref.namespace}/${ref.name}`;
}

function addIf<L extends string>(counter: Counter<L>, labelValues: Partial<Record<L, string>>, n: number): void {
  if (Number.isFinite(n) && n > 0) counter.inc(labelValues, n);
}
