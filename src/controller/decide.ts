import type { JobSnapshot, PromotionJobData } from '../queue/job-queue.js';
import { jobIdOf } from '../queue/job-id.js';
import type { Condition, Phase, Promotion, PromotionRecord, PromotionStatus } from '../sources/promotion.js';
import { mergeConditions, reasonOf, type ConditionState } from './conditions.js';
import { parseDuration } from './duration.js';

/** What the reconciler found out before deciding: the source's digest (or why there is none) and the job. */
export interface Observed {
  readonly source:
    | { readonly kind: 'resolved'; readonly digest: string; readonly reference: string; readonly tags: readonly string[]; readonly followed: boolean }
    | { readonly kind: 'failed'; readonly reason: string; readonly message: string; readonly retryable: boolean };
  /** The job `status.jobId` names, when the queue still has it. */
  readonly job?: JobSnapshot;
  /** The target's tags still point at `status.promotedDigest` (checked only in the steady state). */
  readonly targetIntact?: boolean;
}

export type EventType = 'Normal' | 'Warning';

export interface Decision {
  readonly status: PromotionStatus;
  /** A job to add (idempotent: its id is derived from the data). */
  readonly enqueue?: PromotionJobData;
  /** Reconcile again after this many milliseconds, unless something happens first. */
  readonly requeueAfterMs?: number;
  readonly events: readonly { readonly type: EventType; readonly reason: string; readonly message: string }[];
}

const DEFAULT_INTERVAL_MS = 5 * 60_000;
const RESOLVE_RETRY_MS = 30_000;

/**
 * The level-triggered reconcile decision: pure, no I/O, no clock but `now`. The same (promotion,
 * observation, now) always gives the same decision, so a reconcile can run any number of times.
 */
export function decide(p: Promotion, seen: Observed, now: Date): Decision {
  const previous = p.status ?? {};
  const intervalMs = parseDuration(p.spec.interval) ?? DEFAULT_INTERVAL_MS;
  const base = { observedGeneration: p.generation };
  const conditions = (states: readonly ConditionState[]) => mergeConditions(previous.conditions, states, p.generation, now);

  if (p.spec.suspend === true) {
    const ready = previous.conditions?.find((c) => c.type === 'Ready');
    return withEvents(previous, {
      status: { ...previous, ...base, phase: 'Suspended', conditions: conditions([
        { type: 'Ready', status: ready?.status ?? 'Unknown', reason: 'Suspended', message: 'spec.suspend is true: nothing is resolved or promoted' },
      ]) },
    });
  }

  if (seen.source.kind === 'failed') {
    const { reason, message, retryable } = seen.source;
    return withEvents(previous, {
      status: {
        ...previous, ...base, phase: reason === 'UpstreamNotReady' ? 'Pending' : 'Failed',
        conditions: conditions([
          { type: 'Ready', status: 'False', reason, message },
          { type: 'SourceResolved', status: 'False', reason, message },
        ]),
      },
      requeueAfterMs: retryable ? Math.min(RESOLVE_RETRY_MS, intervalMs) : intervalMs,
    });
  }

  const source = seen.source;
  const resolved: ConditionState = { type: 'SourceResolved', status: 'True', reason: 'Resolved', message: `${source.reference} is ${source.digest}` };
  const desired = jobData(p, source);
  const job = seen.job !== undefined && sameAttempt(seen.job.data, desired) ? seen.job : undefined;
  const followUp = source.followed ? intervalMs : undefined;

  // A job for exactly this spec, digest and request: its state is the promotion's state.
  if (job !== undefined) {
    const view = jobView(job, source.digest);
    const status: PromotionStatus = {
      ...withoutRequestedAt(previous), ...base, sourceDigest: source.digest, jobId: job.id, ...requestedAtOf(p),
      phase: view.phase, conditions: conditions([view.ready, resolved, ...view.conditions]),
    };
    if (job.state === 'completed') {
      const record = recordOf(p, job, 'Succeeded');
      const finished = withRecord(status, record, p.spec.historyLimit ?? 10);
      return withEvents(previous, { status: { ...finished, promotedDigest: source.digest, promotedTags: job.data.tags }, ...(followUp ? { requeueAfterMs: followUp } : {}) });
    }
    if (job.state === 'failed' && job.failure?.final !== false) {
      const record = recordOf(p, job, 'Failed');
      const finished = withRecord(status, record, p.spec.historyLimit ?? 10);
      // A failed attempt is retried once per interval, as a new job (its id carries the failed job's end).
      const retryAt = (job.finishedAt ?? now.getTime()) + intervalMs;
      if (now.getTime() >= retryAt) {
        const retry = { ...desired, trigger: `${desired.trigger ?? ''}|retry@${job.finishedAt ?? 0}` };
        // Status follows the retry from now on: the next reconciles find it by status.jobId.
        return withEvents(previous, {
          status: {
            ...finished, jobId: jobIdOf(retry), phase: 'Queued',
            conditions: conditions([
              { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: `retrying the promotion of ${source.digest}; the last attempt failed: [${job.failure?.code ?? 'INTERNAL'}] ${job.failure?.message ?? ''}`.trim() },
              resolved,
            ]),
          },
          enqueue: retry,
        });
      }
      return withEvents(previous, { status: finished, requeueAfterMs: retryAt - now.getTime() });
    }
    return withEvents(previous, { status });
  }

  // No job for this attempt, but the same spec and digest were promoted before and the target still holds them.
  const last = previous.lastPromotion;
  const steady = last !== undefined && last.result === 'Succeeded' && last.digest === source.digest && last.generation === p.generation
    && (previous.lastHandledRequestedAt ?? '') === (p.requestedAt ?? '') && sameTags(last.tags, desired.tags) && last.target === desired.target;
  if (steady && seen.targetIntact !== false) {
    return withEvents(previous, {
      status: {
        ...previous, ...base, sourceDigest: source.digest, phase: 'Succeeded',
        conditions: conditions([readyPromoted(last), resolved, ...passedConditions()]),
      },
      ...(followUp ? { requeueAfterMs: followUp } : {}),
    });
  }
  // A failed attempt whose job has since been removed from the queue: retry on the interval as above.
  if (last !== undefined && last.result === 'Failed' && last.digest === source.digest && last.generation === p.generation && previous.jobId === last.jobId
    && (previous.lastHandledRequestedAt ?? '') === (p.requestedAt ?? '') && last.finishedAt !== undefined) {
    const retryAt = Date.parse(last.finishedAt) + intervalMs;
    if (now.getTime() < retryAt) return withEvents(previous, { status: { ...previous, ...base }, requeueAfterMs: retryAt - now.getTime() });
  }

  const enqueue = desired;
  return withEvents(previous, {
    status: {
      ...withoutRequestedAt(previous), ...base, sourceDigest: source.digest, jobId: jobIdOf(enqueue), ...requestedAtOf(p), phase: 'Queued',
      conditions: conditions([
        { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: `promotion of ${source.digest} queued` },
        resolved,
      ]),
    },
    enqueue,
  });
}

/**
 * `status.lastHandledRequestedAt`, absent when there is no annotation: an empty string is not written, since
 * API servers before 1.21 read "" in custom resources as null and refuse it (kubernetes/kubernetes#99804).
 */
function requestedAtOf(p: Promotion): Pick<PromotionStatus, 'lastHandledRequestedAt'> {
  return p.requestedAt !== undefined && p.requestedAt !== '' ? { lastHandledRequestedAt: p.requestedAt } : {};
}

function withoutRequestedAt(status: PromotionStatus): PromotionStatus {
  const { lastHandledRequestedAt: _dropped, ...rest } = status;
  return rest;
}

/** The job this promotion wants now; its trigger is the `requestedAt` annotation (empty when none). */
export function jobData(p: Promotion, source: { digest: string; reference: string; tags: readonly string[] }): PromotionJobData {
  const { spec } = p;
  const at = source.reference.lastIndexOf('@');
  const repo = at >= 0 ? source.reference.slice(0, at) : stripTag(source.reference);
  return {
    promotion: { namespace: p.ref.namespace, name: p.ref.name, uid: p.uid, generation: p.generation },
    source: `${repo}@${source.digest}`,
    sourceDigest: source.digest,
    target: spec.target.repository,
    tags: spec.target.tags ?? source.tags,
    ...(spec.source.credentials ? { sourceCredentials: spec.source.credentials.secretRef.name } : {}),
    ...(spec.target.credentials ? { targetCredentials: spec.target.credentials.secretRef.name } : {}),
    copy: { signatures: spec.copy?.signatures ?? true, include: spec.copy?.include ?? [], concurrency: spec.copy?.concurrency ?? 8 },
    ...(spec.verify ? { verify: spec.verify } : {}),
    ...(spec.registry ? { registry: spec.registry } : {}),
    trigger: p.requestedAt ?? '',
  };
}

/** `registry/repo:tag` → `registry/repo` (a port's colon comes before the last slash). */
export function stripTag(reference: string): string {
  const slash = reference.lastIndexOf('/');
  const colon = reference.lastIndexOf(':');
  return colon > slash ? reference.slice(0, colon) : reference;
}

function sameAttempt(a: PromotionJobData, b: PromotionJobData): boolean {
  const triggerOf = (d: PromotionJobData) => (d.trigger ?? '').split('|retry@')[0];
  return a.promotion.uid === b.promotion.uid && a.promotion.generation === b.promotion.generation && a.sourceDigest === b.sourceDigest
    && a.target === b.target && sameTags(a.tags, b.tags) && triggerOf(a) === triggerOf(b);
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

interface JobView {
  readonly phase: Phase;
  readonly ready: ConditionState;
  readonly conditions: readonly ConditionState[];
}

const COPY_PHASES = new Set(['blobs', 'manifests', 'attachments', 'locations']);

/** Conditions from a job's state, and from the engine phase it reached (or failed in). */
function jobView(job: JobSnapshot, digest: string): JobView {
  const enginePhase = job.progress?.phase ?? 'plan';
  const verifying = job.data.verify !== undefined;
  const sourceGate = verifying && job.data.verify?.source !== false;
  const targetGate = verifying && job.data.verify?.target !== false;
  const pending = (type: ConditionState['type'], message: string): ConditionState => ({ type, status: 'Unknown', reason: 'Progressing', message });
  const skipped = (type: ConditionState['type']): ConditionState => ({ type, status: 'True', reason: 'NotRequired', message: 'spec.verify does not ask for this check' });
  const passed = (type: ConditionState['type'], message: string): ConditionState => ({ type, status: 'True', reason: 'Succeeded', message });

  if (job.state === 'completed') {
    const r = job.result;
    const ready: ConditionState = { type: 'Ready', status: 'True', reason: 'Promoted', message: `promoted ${digest} to ${job.data.target}${job.data.tags.length ? `:${job.data.tags.join(',')}` : ''}` };
    return {
      phase: 'Succeeded', ready,
      conditions: [
        sourceGate ? passed('SourceVerified', 'signatures and annotations verified in the source') : skipped('SourceVerified'),
        passed('Copied', r ? `${r.counts.artifacts} artifacts, ${r.counts.blobsUploaded} blobs uploaded, ${r.counts.blobsMounted} mounted, ${r.counts.blobsPresent} present` : 'copied'),
        targetGate ? passed('TargetVerified', 'signatures and annotations verified in the target') : skipped('TargetVerified'),
      ],
    };
  }

  // Where the engine was: the gates before and after the copy.
  const order = ['plan', 'verify-source', 'blobs', 'manifests', 'attachments', 'locations', 'verify-target', 'tags', 'done'];
  const at = Math.max(0, order.indexOf(enginePhase));
  const beyond = (phase: string) => at > order.indexOf(phase);

  if (job.state === 'failed' && job.failure?.final !== false) {
    const failure = job.failure ?? { code: 'INTERNAL', message: 'the job failed without a reason', final: true };
    const reason = reasonOf(failure.code);
    const failed = (type: ConditionState['type']): ConditionState => ({ type, status: 'False', reason, message: failure.message });
    const inTarget = enginePhase === 'verify-target' || (failure.code === 'VERIFICATION_FAILED' && /in the target/.test(failure.message));
    const inSource = !inTarget && failure.code === 'VERIFICATION_FAILED';
    const conditions: ConditionState[] = [];
    if (inSource) conditions.push(failed('SourceVerified'));
    else if (!sourceGate) conditions.push(skipped('SourceVerified'));
    else if (beyond('verify-source')) conditions.push(passed('SourceVerified', 'signatures and annotations verified in the source'));
    if (inTarget) {
      conditions.push(passed('Copied', 'content and signatures copied'), failed('TargetVerified'));
    } else if (!inSource) {
      conditions.push(failed('Copied'));
    }
    return { phase: 'Failed', ready: { type: 'Ready', status: 'False', reason, message: failure.message }, conditions };
  }

  const queued = job.state === 'waiting' || job.state === 'delayed';
  const retrying = job.failure !== undefined ? ` (attempt ${job.attemptsMade + 1}; last error [${job.failure.code}] ${job.failure.message})` : '';
  const progress = job.progress;
  // The engine's phase, not its counts: a status write per phase, not per progress report (API server load);
  // the counts are in the job's progress and the metrics.
  const detail = progress && !queued ? `${progress.phase}` : queued ? 'queued' : 'started';
  const conditions: ConditionState[] = [
    !sourceGate ? skipped('SourceVerified') : beyond('verify-source') ? passed('SourceVerified', 'signatures and annotations verified in the source') : pending('SourceVerified', 'not verified yet'),
    beyond('locations') ? passed('Copied', 'content and signatures copied') : pending('Copied', detail),
    !targetGate ? skipped('TargetVerified') : beyond('verify-target') ? passed('TargetVerified', 'signatures and annotations verified in the target') : pending('TargetVerified', 'not verified yet'),
  ];
  return {
    phase: queued ? 'Queued' : 'Promoting',
    ready: { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: `promotion of ${digest}: ${detail}${retrying}` },
    conditions,
  };
}

function passedConditions(): ConditionState[] {
  return [
    { type: 'SourceVerified', status: 'True', reason: 'Succeeded', message: 'verified at the last promotion' },
    { type: 'Copied', status: 'True', reason: 'Succeeded', message: 'the target holds the promoted digest' },
    { type: 'TargetVerified', status: 'True', reason: 'Succeeded', message: 'verified at the last promotion' },
  ];
}

function readyPromoted(last: PromotionRecord): ConditionState {
  return { type: 'Ready', status: 'True', reason: 'Promoted', message: `promoted ${last.digest} to ${last.target}${last.tags.length ? `:${last.tags.join(',')}` : ''}` };
}

function recordOf(p: Promotion, job: JobSnapshot, result: PromotionRecord['result']): PromotionRecord {
  const r = job.result;
  return {
    digest: job.data.sourceDigest, source: job.data.source, target: job.data.target, tags: job.data.tags, generation: p.generation, jobId: job.id, result,
    ...(result === 'Failed' && job.failure ? { reason: reasonOf(job.failure.code) } : {}),
    ...(job.startedAt !== undefined ? { startedAt: new Date(job.startedAt).toISOString() } : r ? { startedAt: r.startedAt } : {}),
    ...(job.finishedAt !== undefined ? { finishedAt: new Date(job.finishedAt).toISOString() } : r ? { finishedAt: r.finishedAt } : {}),
    ...(r ? { counts: r.counts } : {}),
  };
}

/** Sets `lastPromotion` and adds it to the bounded history once (a record is identified by its job id). */
function withRecord(status: PromotionStatus, record: PromotionRecord, limit: number): PromotionStatus {
  const history = status.history ?? [];
  const known = history.some((h) => h.jobId === record.jobId && h.result === record.result && h.finishedAt === record.finishedAt);
  const next = known ? history : [record, ...history.filter((h) => h.jobId !== record.jobId)];
  return { ...status, lastPromotion: record, history: next.slice(0, limit) };
}

/** Events for what changed between the status as it was and as decided: one per transition. */
function withEvents(previous: PromotionStatus, d: Omit<Decision, 'events'>): Decision {
  const before = readyOf(previous.conditions);
  const after = readyOf(d.status.conditions);
  const events: Decision['events'][number][] = [];
  const changed = before?.status !== after?.status || before?.reason !== after?.reason || previous.jobId !== d.status.jobId
    || previous.phase !== d.status.phase;
  if (after !== undefined && changed) {
    const phase = d.status.phase;
    if (phase === 'Queued' && d.enqueue) events.push({ type: 'Normal', reason: 'PromotionQueued', message: after.message });
    else if (phase === 'Promoting' && previous.phase !== 'Promoting') events.push({ type: 'Normal', reason: 'PromotionStarted', message: after.message });
    else if (phase === 'Succeeded' && before?.status !== 'True') events.push({ type: 'Normal', reason: 'PromotionSucceeded', message: after.message });
    else if (phase === 'Failed') events.push({ type: 'Warning', reason: after.reason, message: after.message });
    else if (phase === 'Suspended' && previous.phase !== 'Suspended') events.push({ type: 'Normal', reason: 'Suspended', message: after.message });
  }
  return { ...d, events };
}

function readyOf(conditions: readonly Condition[] | undefined): Condition | undefined {
  return conditions?.find((c) => c.type === 'Ready');
}
