import { PromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import { DROP_REASON, INTERNAL, STOP_REASON, classifyFailure, describeUnexpected, type ClassifiedFailure } from './failure.js';
import { dedupIdOf, jobIdOf } from './job-id.js';
import { exponentialBackoffMs, promotionRefOf, samePromotion } from './job-data.js';
import type { PromotionRef } from '../sources/promotion.js';
import type {
  JobFailure,
  JobHandler,
  JobListener,
  JobQueue,
  JobSnapshot,
  JobState,
  JobWorker,
  PromotionJobData,
  PromotionJobProgress,
  PromotionJobResult,
} from './job-queue.js';

export interface MemoryJobQueueOptions {
  readonly log: Logger;
  /** Attempts per job, the first included. @defaultValue 5 */
  readonly attempts?: number;
  /** Base of the exponential backoff between attempts: `backoffMs * 2^(attempt-1)`. @defaultValue 5000 */
  readonly backoffMs?: number;
  /** How long a completed or failed job stays readable through `get()`. @defaultValue 86_400_000 (24 h) */
  readonly retainFinishedMs?: number;
  /** At most this many completed (and, separately, failed) jobs are kept. @defaultValue 1000 */
  readonly retainFinishedCount?: number;
  /** `JobWorker.stop()` without an argument waits this long before it aborts running jobs. @defaultValue 25_000 */
  readonly stopGraceMs?: number;
  /**
   * After a stop aborts a job, how long its handler has to settle before the job is put back in the queue anyway
   * (a handler that ignores its signal). @defaultValue 5000
   */
  readonly abortGraceMs?: number;
}

type Cancel = 'stop' | 'drop';

interface Run {
  readonly worker: WorkerState;
  readonly controller: AbortController;
  cancel: Cancel | undefined;
  /** Set when a stop gave up waiting: whatever the handler does later is ignored. */
  detached: boolean;
}

interface JobRecord {
  readonly id: string;
  readonly dedupId: string;
  readonly data: PromotionJobData;
  readonly createdAt: number;
  state: JobState;
  attemptsMade: number;
  /** Waiting behind the running job of its promotion; not in the wait list until that one finishes. */
  pending: boolean;
  progress?: PromotionJobProgress;
  result?: PromotionJobResult;
  failure?: JobFailure;
  startedAt?: number;
  finishedAt?: number;
  retryTimer?: NodeJS.Timeout | undefined;
  run?: Run | undefined;
}

interface WorkerState {
  readonly handler: JobHandler;
  readonly concurrency: number;
  readonly running: Set<JobRecord>;
  stopping: boolean;
  /** Called whenever `running` shrinks. */
  readonly onSettle: Set<() => void>;
}

/**
 * The in-process {@link JobQueue}: the embedded default of `bundle-promoter run` without `REDIS_URL`. It keeps the
 * BullMQ adapter's semantics (docs/jobs.md): deterministic ids, one running job per promotion with the newest
 * add waiting behind it, exponential retries, permanent failures, abort on drop and stop. Jobs live only as long
 * as the process.
 */
export class MemoryJobQueue implements JobQueue {
  readonly #log: Logger;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #retainMs: number;
  readonly #retainCount: number;
  readonly #stopGraceMs: number;
  readonly #abortGraceMs: number;
  /** Every job, in creation order. */
  readonly #jobs = new Map<string, JobRecord>();
  readonly #waiting: JobRecord[] = [];
  /** Deduplication id → the job that holds it (waiting, delayed or active). */
  readonly #holders = new Map<string, JobRecord>();
  /** Deduplication id → the job added while the holder ran; queued when the holder finishes. */
  readonly #next = new Map<string, JobRecord>();
  readonly #workers = new Set<WorkerState>();
  readonly #listeners: JobListener[] = [];
  #closed: Promise<void> | undefined;

  constructor(options: MemoryJobQueueOptions) {
    this.#log = options.log.child({ component: 'queue', adapter: 'memory' });
    this.#attempts = positive(options.attempts ?? 5, 'attempts');
    this.#backoffMs = nonNegative(options.backoffMs ?? 5000, 'backoffMs');
    this.#retainMs = nonNegative(options.retainFinishedMs ?? 86_400_000, 'retainFinishedMs');
    this.#retainCount = nonNegative(options.retainFinishedCount ?? 1000, 'retainFinishedCount');
    this.#stopGraceMs = nonNegative(options.stopGraceMs ?? 25_000, 'stopGraceMs');
    this.#abortGraceMs = nonNegative(options.abortGraceMs ?? 5000, 'abortGraceMs');
  }

  async enqueue(data: PromotionJobData): Promise<{ readonly id: string; readonly created: boolean }> {
    this.#assertOpen();
    const id = jobIdOf(data);
    if (this.#jobs.has(id)) return { id, created: false };
    const dedupId = dedupIdOf(data.promotion);
    const job: JobRecord = {
      id,
      dedupId,
      data: structuredClone(data),
      createdAt: Date.now(),
      state: 'waiting',
      attemptsMade: 0,
      pending: false,
    };
    const holder = this.#holders.get(dedupId);
    if (holder?.state === 'active') {
      // Newest wins: only the last add made while the promotion's job runs waits behind it.
      const superseded = this.#next.get(dedupId);
      if (superseded !== undefined) this.#forget(superseded);
      job.pending = true;
      this.#jobs.set(id, job);
      this.#next.set(dedupId, job);
      this.#emit(job);
      return { id, created: true };
    }
    // A holder that has not started (or waits for its retry) runs an older spec: the newest add replaces it.
    if (holder !== undefined) this.#forget(holder);
    this.#jobs.set(id, job);
    this.#queue(job, 'back');
    return { id, created: true };
  }

  async get(id: string): Promise<JobSnapshot | undefined> {
    const job = this.#jobs.get(id);
    return job === undefined ? undefined : snapshotOf(job);
  }

  async drop(promotion: PromotionRef): Promise<void> {
    for (const job of [...this.#jobs.values()]) {
      if (!samePromotion(job.data.promotion, promotion)) continue;
      if (job.state === 'active') {
        const run = job.run;
        if (run !== undefined && !run.detached) {
          run.cancel = 'drop';
          run.controller.abort(DROP_REASON);
        }
      } else if (job.state === 'waiting' || job.state === 'delayed') {
        this.#forget(job);
      }
    }
  }

  async counts(): Promise<Record<JobState, number>> {
    const counts: Record<JobState, number> = { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 };
    // Like BullMQ, a job waiting behind its promotion's running job is not counted until it is queued.
    for (const job of this.#jobs.values()) if (!job.pending) counts[job.state] += 1;
    return counts;
  }

  onJobEvent(listener: JobListener): void {
    this.#listeners.push(listener);
  }

  work(handler: JobHandler, options: { readonly concurrency: number }): JobWorker {
    this.#assertOpen();
    const state: WorkerState = {
      handler,
      concurrency: positive(options.concurrency, 'concurrency'),
      running: new Set(),
      stopping: false,
      onSettle: new Set(),
    };
    this.#workers.add(state);
    let stopped: Promise<void> | undefined;
    const worker: JobWorker = {
      get active() {
        return state.running.size;
      },
      stop: (graceMs?: number) => (stopped ??= this.#stopWorker(state, graceMs ?? this.#stopGraceMs)),
    };
    this.#pump();
    return worker;
  }

  async healthy(): Promise<boolean> {
    return this.#closed === undefined;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#workers].map((w) => this.#stopWorker(w, 0)));
      for (const job of this.#jobs.values()) clearTimeout(job.retryTimer);
    })();
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed !== undefined) throw new PromoteError('ABORTED', 'the job queue is closed');
  }

  /** Puts a job in the wait list and makes it its promotion's holder. */
  #queue(job: JobRecord, end: 'front' | 'back'): void {
    job.state = 'waiting';
    job.pending = false;
    this.#holders.set(job.dedupId, job);
    if (end === 'front') this.#waiting.unshift(job);
    else this.#waiting.push(job);
    this.#emit(job);
    this.#pump();
  }

  /** Removes a job that is not running, and the follow-up waiting behind it (as BullMQ's remove does). */
  #forget(job: JobRecord): void {
    clearTimeout(job.retryTimer);
    this.#jobs.delete(job.id);
    const i = this.#waiting.indexOf(job);
    if (i >= 0) this.#waiting.splice(i, 1);
    if (this.#holders.get(job.dedupId) === job) {
      this.#holders.delete(job.dedupId);
      const next = this.#next.get(job.dedupId);
      if (next !== undefined) this.#forget(next);
    }
    if (this.#next.get(job.dedupId) === job) this.#next.delete(job.dedupId);
    this.#emit(job);
  }

  #pump(): void {
    if (this.#closed !== undefined) return;
    for (const worker of this.#workers) {
      while (!worker.stopping && worker.running.size < worker.concurrency) {
        const job = this.#waiting.shift();
        if (job === undefined) return;
        this.#start(job, worker);
      }
    }
  }

  #start(job: JobRecord, worker: WorkerState): void {
    const run: Run = { worker, controller: new AbortController(), cancel: undefined, detached: false };
    job.state = 'active';
    job.startedAt = Date.now();
    job.run = run;
    worker.running.add(job);
    this.#emit(job);
    const reportProgress = (progress: PromotionJobProgress): void => {
      if (job.run !== run || run.detached) return;
      job.progress = structuredClone(progress);
      this.#emit(job);
    };
    let settled: Promise<PromotionJobResult>;
    try {
      settled = worker.handler({ id: job.id, data: job.data, attemptsMade: job.attemptsMade }, reportProgress, run.controller.signal);
    } catch (error) {
      settled = Promise.reject(error);
    }
    settled.then(
      (result) => this.#settle(job, run, { result }),
      (error: unknown) => this.#settle(job, run, { error }),
    );
  }

  #settle(job: JobRecord, run: Run, outcome: { result: PromotionJobResult } | { error: unknown }): void {
    if (!run.detached) {
      job.run = undefined;
      if ('result' in outcome) this.#complete(job, outcome.result);
      else this.#fail(job, run, outcome.error);
    }
    run.worker.running.delete(job);
    for (const notify of run.worker.onSettle) notify();
    this.#pump();
  }

  #complete(job: JobRecord, result: PromotionJobResult): void {
    job.attemptsMade += 1;
    job.result = structuredClone(result);
    this.#finish(job, 'completed');
  }

  #fail(job: JobRecord, run: Run, error: unknown): void {
    if (run.cancel === 'stop') {
      // Decision (docs/jobs.md#stopping): a job aborted because its worker stops is not a failed attempt; it goes
      // back to the front of the queue for another worker.
      this.#queue(job, 'front');
      return;
    }
    const failure: ClassifiedFailure =
      run.cancel === 'drop' ? { code: 'ABORTED', message: DROP_REASON, retryable: false } : classifyFailure(error);
    if (failure.code === INTERNAL) this.#log.warn({ jobId: job.id, error: describeUnexpected(error) }, 'a job failed with an unexpected error');
    job.attemptsMade += 1;
    const retry = failure.retryable && job.attemptsMade < this.#attempts;
    job.failure = { code: failure.code, message: failure.message, final: !retry };
    if (!retry) {
      this.#finish(job, 'failed');
      return;
    }
    job.state = 'delayed';
    this.#emit(job);
    job.retryTimer = setTimeout(() => {
      job.retryTimer = undefined;
      if (this.#jobs.get(job.id) === job && job.state === 'delayed') this.#queue(job, 'back');
    }, exponentialBackoffMs(job.attemptsMade, this.#backoffMs));
  }

  #finish(job: JobRecord, state: 'completed' | 'failed'): void {
    job.state = state;
    job.finishedAt = Date.now();
    this.#emit(job);
    if (this.#holders.get(job.dedupId) === job) this.#holders.delete(job.dedupId);
    const next = this.#next.get(job.dedupId);
    if (next !== undefined) {
      this.#next.delete(job.dedupId);
      this.#queue(next, 'back');
    }
    this.#prune(state);
  }

  #prune(state: 'completed' | 'failed'): void {
    const oldest = Date.now() - this.#retainMs;
    const finished = [...this.#jobs.values()]
      .filter((j) => j.state === state)
      .sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0));
    const excess = finished.length - this.#retainCount;
    finished.forEach((job, i) => {
      if (i < excess || (job.finishedAt ?? 0) < oldest) this.#jobs.delete(job.id);
    });
  }

  async #stopWorker(worker: WorkerState, graceMs: number): Promise<void> {
    worker.stopping = true;
    if (!(await settledWithin(worker, graceMs))) {
      for (const job of worker.running) {
        const run = job.run;
        if (run === undefined) continue;
        run.cancel ??= 'stop';
        run.controller.abort(STOP_REASON);
      }
      if (!(await settledWithin(worker, this.#abortGraceMs))) {
        for (const job of worker.running) {
          const run = job.run;
          if (run === undefined) continue;
          this.#log.warn({ jobId: job.id }, 'a job ignored its abort signal; it is queued again while its handler still runs');
          run.detached = true;
          job.run = undefined;
          this.#queue(job, 'front');
        }
      }
    }
    this.#workers.delete(worker);
    this.#pump();
  }

  #emit(job: JobRecord): void {
    if (this.#listeners.length === 0) return;
    const event = { jobId: job.id, promotion: promotionRefOf(job.data) };
    queueMicrotask(() => {
      for (const listener of this.#listeners) {
        try {
          listener(event);
        } catch (error) {
          this.#log.warn({ err: error, jobId: job.id }, 'a job event listener threw');
        }
      }
    });
  }
}

function snapshotOf(job: JobRecord): JobSnapshot {
  return {
    id: job.id,
    state: job.state,
    data: job.data,
    attemptsMade: job.attemptsMade,
    createdAt: job.createdAt,
    ...(job.progress === undefined ? {} : { progress: job.progress }),
    ...(job.result === undefined ? {} : { result: job.result }),
    ...(job.failure === undefined ? {} : { failure: job.failure }),
    ...(job.startedAt === undefined ? {} : { startedAt: job.startedAt }),
    ...(job.finishedAt === undefined ? {} : { finishedAt: job.finishedAt }),
  };
}

/** Resolves true once the worker runs nothing, or false after `ms`. */
function settledWithin(worker: WorkerState, ms: number): Promise<boolean> {
  if (worker.running.size === 0) return Promise.resolve(true);
  if (ms <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (value: boolean): void => {
      clearTimeout(timer);
      worker.onSettle.delete(check);
      resolve(value);
    };
    const check = (): void => {
      if (worker.running.size === 0) done(true);
    };
    const timer = setTimeout(() => done(false), ms);
    worker.onSettle.add(check);
  });
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new PromoteError('INVALID_CONFIG', `${name} must be a positive integer, not ${value}`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new PromoteError('INVALID_CONFIG', `${name} must be a non-negative number, not ${value}`);
  return value;
}
