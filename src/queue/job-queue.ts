import type { PromotionCounts, PromotionRef, PromotionSpec } from '../sources/promotion.js';

/**
 * What a worker needs to carry out one promotion. References to Secrets, never their values: this goes
 * into Redis.
 */
export interface PromotionJobData {
  readonly promotion: PromotionRef & { readonly uid: string; readonly generation: number };
  /** The source pinned to the digest the controller resolved: `registry/repo@sha256:…`. */
  readonly source: string;
  readonly sourceDigest: string;
  readonly target: string;
  readonly tags: readonly string[];
  /** The source credentials Secret (same namespace), if any. */
  readonly sourceCredentials?: string;
  readonly targetCredentials?: string;
  readonly copy: Required<NonNullable<PromotionSpec['copy']>>;
  readonly verify?: PromotionSpec['verify'];
  readonly registry?: PromotionSpec['registry'];
  /** Why this job exists beyond the spec: a `requestedAt` value or a re-check time. Part of the job id. */
  readonly trigger?: string;
}

/** A worker's structured result, stored with the job. */
export interface PromotionJobResult {
  readonly sourceDigest: string;
  readonly target: string;
  readonly tags: readonly string[];
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly counts: PromotionCounts;
}

/** The engine's phase names (src/promote `Phase`) and the counts reached so far. */
export interface PromotionJobProgress {
  readonly phase: string;
  readonly artifactsDone: number;
  readonly artifactsTotal: number;
  readonly blobsDone: number;
  readonly blobsTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

export type JobState = 'waiting' | 'active' | 'delayed' | 'completed' | 'failed';

export interface JobFailure {
  /** The catalogue code (src/errors.ts) of the error that ended the job, or `INTERNAL` for anything else. */
  readonly code: string;
  readonly message: string;
  /** False when the job will not be retried (permanent error, or attempts used up). */
  readonly final: boolean;
}

export interface JobSnapshot {
  readonly id: string;
  readonly state: JobState;
  readonly data: PromotionJobData;
  readonly attemptsMade: number;
  readonly progress?: PromotionJobProgress;
  readonly result?: PromotionJobResult;
  /** Set once an attempt has failed: the last failure. */
  readonly failure?: JobFailure;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
}

/** Tells the reconciler a job moved (enqueued, started, progressed, retried, completed, failed, removed). */
export type JobListener = (event: { readonly jobId: string; readonly promotion: PromotionRef | undefined }) => void;

/** The worker's handler: resolves when the promotion is done, throws a `PromoteError` when it is not. */
export type JobHandler = (
  job: { readonly id: string; readonly data: PromotionJobData; readonly attemptsMade: number },
  reportProgress: (progress: PromotionJobProgress) => void,
  signal: AbortSignal,
) => Promise<PromotionJobResult>;

export interface JobQueue {
  /**
   * Adds a job with the deterministic id {@link jobIdOf}(data). Adding an id that exists is a no-op;
   * at most one job per promotion runs at a time, and while one runs only the newest add waits behind it.
   */
  enqueue(data: PromotionJobData): Promise<{ readonly id: string; readonly created: boolean }>;
  get(id: string): Promise<JobSnapshot | undefined>;
  /** Removes every job of a promotion that is not running (deleted promotion); aborts a running one. */
  drop(promotion: PromotionRef): Promise<void>;
  counts(): Promise<Record<JobState, number>>;
  onJobEvent(listener: JobListener): void;
  /** Starts processing jobs with `concurrency` parallel handlers in this process. */
  work(handler: JobHandler, options: { readonly concurrency: number }): JobWorker;
  /** True when the backing store answers (Redis ping); always true in process. */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

export interface JobWorker {
  /** Jobs running in this process now. */
  readonly active: number;
  /** Stops taking jobs; waits up to `graceMs` for running ones, then aborts them. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}
