import { Queue, QueueEvents, UnrecoverableError, WaitingError, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { PromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PromotionRef } from '../sources/promotion.js';
import { DROP_REASON, INTERNAL, STOP_REASON, classifyFailure, describeUnexpected, encodeFailure, parseFailure } from './failure.js';
import { promotionRefOf, samePromotion } from './job-data.js';
import { dedupIdOf, jobIdOf } from './job-id.js';
import type {
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

export interface BullmqJobQueueOptions {
  /**
   * `REDIS_URL`: `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. Never logged: it may carry a
   * password.
   */
  readonly url: string;
  readonly log: Logger;
  /**
   * Prefix of every key. A Redis Cluster hash tag, so that all of the queue's keys (which BullMQ's Lua scripts
   * touch together) live in one slot. @defaultValue '{bundle-promoter}'
   */
  readonly prefix?: string;
  /** @defaultValue 'promotions' */
  readonly queueName?: string;
  /** Attempts per job, the first included. @defaultValue 5 */
  readonly attempts?: number;
  /** Base of the exponential backoff between attempts: `backoffMs * 2^(attempt-1)`. @defaultValue 5000 */
  readonly backoffMs?: number;
  /** How long a completed or failed job stays readable through `get()`. @defaultValue 86_400_000 (24 h) */
  readonly retainFinishedMs?: number;
  /** At most this many completed (and, separately, failed) jobs are kept. @defaultValue 1000 */
  readonly retainFinishedCount?: number;
  /**
   * How long a worker's lock on a job lasts without renewal (renewed every half of it). A worker that dies holds
   * its job at most this long before another worker recovers it. @defaultValue 30_000
   */
  readonly lockDurationMs?: number;
  /** How often workers look for jobs whose lock expired (stalled jobs). @defaultValue 30_000 */
  readonly stalledIntervalMs?: number;
  /** How many times a job may stall and be recovered before it fails. @defaultValue 2 */
  readonly maxStalledCount?: number;
  /** `JobWorker.stop()` without an argument waits this long before it aborts running jobs. @defaultValue 25_000 */
  readonly stopGraceMs?: number;
  /**
   * After a stop aborts its jobs, how long their handlers have to settle before the worker lets go of them; such a
   * job is then recovered as stalled once its lock expires. @defaultValue 5000
   */
  readonly abortGraceMs?: number;
  /** Progress reports of one job are written at most this often (the last one always is). @defaultValue 1000 */
  readonly progressIntervalMs?: number;
  /** `healthy()` answers false when PING takes longer. @defaultValue 2000 */
  readonly healthTimeoutMs?: number;
}

const JOB_NAME = 'promote';
const EVENTS = ['waiting', 'active', 'progress', 'delayed', 'completed', 'failed', 'removed', 'stalled'] as const;
const REF_CACHE_SIZE = 10_000;
const ENQUEUE_ROUNDS = 5;
/** How long close() waits for a connection to close cleanly before it cuts it. */
const CLOSE_TIMEOUT_MS = 2000;

type Cancel = 'stop' | 'drop';

/**
 * The {@link JobQueue} on Redis through BullMQ: `bundle-promoter controller` enqueues, `bundle-promoter worker`
 * replicas run. Semantics and the keys it writes: docs/jobs.md#jobs-and-the-queue.
 */
export class BullmqJobQueue implements JobQueue {
  readonly #log: Logger;
  readonly #client: Redis;
  readonly #queue: Queue<PromotionJobData, PromotionJobResult>;
  readonly #queueName: string;
  readonly #prefix: string;
  readonly #jobOptions: Omit<JobsOptions, 'jobId' | 'deduplication'>;
  readonly #retainMs: number;
  readonly #workerSettings: WorkerSettings;
  readonly #healthTimeoutMs: number;
  readonly #workers = new Set<BullmqJobWorker>();
  readonly #listeners: JobListener[] = [];
  /** jobId → promotion, for events; bounded, oldest dropped first. */
  readonly #refs = new Map<string, PromotionRef>();
  #events: Promise<QueueEvents | undefined> | undefined;
  #eventsInstance: QueueEvents | undefined;
  #dispatching: Promise<void> = Promise.resolve();
  #closed: Promise<void> | undefined;

  constructor(options: BullmqJobQueueOptions) {
    const url = parseRedisUrl(options.url);
    this.#prefix = options.prefix ?? '{bundle-promoter}';
    this.#queueName = options.queueName ?? 'promotions';
    if (this.#queueName.includes(':') || this.#queueName === '') {
      throw new PromoteError('INVALID_CONFIG', `the queue name must be non-empty and contain no ':': ${this.#queueName}`);
    }
    this.#log = options.log.child({ component: 'queue', adapter: 'bullmq', redis: url.safe, queue: this.#queueName });
    const attempts = positiveInt(options.attempts ?? 5, 'attempts');
    const backoffMs = nonNegative(options.backoffMs ?? 5000, 'backoffMs');
    this.#retainMs = nonNegative(options.retainFinishedMs ?? 86_400_000, 'retainFinishedMs');
    const keep = {
      age: Math.max(1, Math.ceil(this.#retainMs / 1000)),
      count: nonNegative(options.retainFinishedCount ?? 1000, 'retainFinishedCount'),
    };
    this.#jobOptions = {
      attempts,
      backoff: { type: 'exponential', delay: backoffMs },
      removeOnComplete: keep,
      removeOnFail: keep,
      // The failure is `[CODE] message` in failedReason; a stack of our wrapper error tells nothing and would only
      // grow the hash.
      stackTraceLimit: 0,
    };
    const lockDurationMs = positiveInt(options.lockDurationMs ?? 30_000, 'lockDurationMs');
    this.#workerSettings = {
      lockDurationMs,
      stalledIntervalMs: positiveInt(options.stalledIntervalMs ?? 30_000, 'stalledIntervalMs'),
      maxStalledCount: nonNegative(options.maxStalledCount ?? 2, 'maxStalledCount'),
      stopGraceMs: nonNegative(options.stopGraceMs ?? 25_000, 'stopGraceMs'),
      abortGraceMs: nonNegative(options.abortGraceMs ?? 5000, 'abortGraceMs'),
      progressIntervalMs: nonNegative(options.progressIntervalMs ?? 1000, 'progressIntervalMs'),
    };
    this.#healthTimeoutMs = positiveInt(options.healthTimeoutMs ?? 2000, 'healthTimeoutMs');
    // BullMQ needs maxRetriesPerRequest null on what its Worker and QueueEvents use (library notes, pitfall 9):
    // commands wait for a reconnect instead of failing, which is also what lets jobs survive a Redis restart.
    this.#client = new Redis(options.url, { maxRetriesPerRequest: null });
    watchErrors(this.#client, this.#log, 'redis connection');
    this.#queue = new Queue<PromotionJobData, PromotionJobResult>(this.#queueName, {
      connection: this.#client,
      prefix: this.#prefix,
    });
    this.#queue.on('error', (err) => this.#log.warn({ err }, 'queue error'));
  }

  async enqueue(data: PromotionJobData): Promise<{ readonly id: string; readonly created: boolean }> {
    this.#assertOpen();
    await this.#eventsReady();
    const id = jobIdOf(data);
    const dedupId = dedupIdOf(data.promotion);
    this.#remember(id, promotionRefOf(data));
    const opts: JobsOptions = { ...this.#jobOptions, jobId: id, deduplication: { id: dedupId, keepLastIfActive: true } };
    for (let round = 0; round < ENQUEUE_ROUNDS; round++) {
      // A job hash with this id (in any state, finished ones included) makes the add a no-op; so does being the
      // follow-up already stored behind the promotion's running job.
      if ((await this.#client.exists(this.#key(id))) === 1) return { id, created: false };
      if ((await this.#client.hget(this.#nextKey(dedupId), 'jid')) === id) return { id, created: false };
      const job = await this.#queue.add(JOB_NAME, data, opts);
      if (job.id === id) return { id, created: true };
      // Deduplicated: another job of the promotion holds the deduplication key.
      const holder = job.id;
      if ((await this.#client.hget(this.#nextKey(dedupId), 'jid')) === id) {
        // The holder is running and we are its one follow-up (BullMQ's `dn:` payload, newest wins). A pointer lets
        // get() find us before BullMQ turns the payload into a job.
        await this.#client.set(this.#pointerKey(id), JSON.stringify({ dedupId, createdAt: Date.now() }), 'PX', this.#retainMs);
        return { id, created: true };
      }
      if ((await this.#client.exists(this.#key(id))) === 1) return { id, created: true }; // holder finished meanwhile
      if (holder === undefined) continue;
      const state = await this.#queue.getJobState(holder);
      if (state === 'active') continue; // it started after our add: the next round stores us behind it
      if (state === 'completed' || state === 'failed' || state === 'unknown') {
        await this.#queue.removeDeduplicationKey(dedupId); // stale key
        continue;
      }
      // Decision (docs/jobs.md#deduplication): BullMQ keeps the first payload of a job that has not started. It
      // would run an older spec, so the newest add replaces it. remove() answers 0 if it became active meanwhile.
      await this.#queue.remove(holder);
      this.#log.debug({ jobId: holder, replacedBy: id }, 'replaced a waiting job by a newer one of the same promotion');
    }
    throw new Error(`could not enqueue job ${id}: its promotion's jobs kept changing state`);
  }

  async get(id: string): Promise<JobSnapshot | undefined> {
    const found = await this.#snapshot(id);
    if (found !== undefined) return found;
    const pointer = await this.#client.get(this.#pointerKey(id));
    if (pointer === null) return undefined;
    const { dedupId, createdAt } = JSON.parse(pointer) as { dedupId: string; createdAt: number };
    const [jid, data] = await this.#client.hmget(this.#nextKey(dedupId), 'jid', 'data');
    if (jid === id && typeof data === 'string') {
      return { id, state: 'waiting', data: JSON.parse(data) as PromotionJobData, attemptsMade: 0, createdAt };
    }
    return this.#snapshot(id); // the payload may have just become a job
  }

  /**
   * Removes the promotion's jobs that are not running and the follow-up stored behind a running one, then aborts
   * a running one.
   *
   * Decision (docs/jobs.md#dropping): a job running in another process is cancelled through a Redis pub/sub
   * message that every worker of this queue listens to. Pub/sub is fire-and-forget: a worker that is disconnected
   * at that moment misses it, and the job then runs to its end (its result belongs to a deleted promotion and is
   * ignored). Either way no job of the promotion runs after it.
   */
  async drop(promotion: PromotionRef): Promise<void> {
    this.#assertOpen();
    const isMine = (job: Job | undefined): job is Job<PromotionJobData> =>
      job !== undefined && job !== null && samePromotion(promotionRefOf(job.data), promotion);
    const active = (await this.#queue.getJobs(['active'], 0, -1)).filter(isMine);
    // First the follow-ups, so that a running job finishing now cannot turn one into a job.
    for (const dedupId of new Set(active.map((job) => dedupIdOf(job.data.promotion)))) {
      await this.#client.del(this.#nextKey(dedupId));
    }
    const queued = (await this.#queue.getJobs(['waiting', 'prioritized', 'delayed', 'waiting-children'], 0, -1)).filter(isMine);
    const running = active.map((job) => job.id);
    for (const job of queued) {
      if (job.id === undefined) continue;
      // remove() also deletes the deduplication key (and any follow-up) the job holds; 0 = it became active.
      if ((await this.#queue.remove(job.id)) === 0) {
        await this.#client.del(this.#nextKey(dedupIdOf(job.data.promotion)));
        running.push(job.id);
      }
    }
    for (const jobId of running) {
      if (jobId === undefined) continue;
      const local = [...this.#workers].some((worker) => worker.cancel(jobId, 'drop'));
      if (!local) await this.#client.publish(this.#cancelChannel(), jobId);
    }
  }

  async counts(): Promise<Record<JobState, number>> {
    const c = await this.#queue.getJobCounts('waiting', 'prioritized', 'waiting-children', 'active', 'delayed', 'completed', 'failed');
    const n = (type: string): number => c[type] ?? 0;
    return {
      waiting: n('waiting') + n('prioritized') + n('waiting-children'),
      active: n('active'),
      delayed: n('delayed'),
      completed: n('completed'),
      failed: n('failed'),
    };
  }

  onJobEvent(listener: JobListener): void {
    this.#assertOpen();
    this.#listeners.push(listener);
    this.#events ??= this.#startEvents().catch((err: unknown) => {
      this.#log.error({ err }, 'could not subscribe to job events');
      return undefined;
    });
  }

  work(handler: JobHandler, options: { readonly concurrency: number }): JobWorker {
    this.#assertOpen();
    const worker = new BullmqJobWorker({
      ...this.#workerSettings,
      queueName: this.#queueName,
      prefix: this.#prefix,
      client: this.#client,
      cancelChannel: this.#cancelChannel(),
      log: this.#log,
      handler,
      concurrency: positiveInt(options.concurrency, 'concurrency'),
      onStopped: (w) => this.#workers.delete(w),
    });
    this.#workers.add(worker);
    return worker;
  }

  async healthy(): Promise<boolean> {
    if (this.#closed !== undefined) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#healthTimeoutMs);
    });
    try {
      return (await Promise.race([this.#client.ping(), timeout])) === 'PONG';
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops this process's workers without grace (their jobs go back to the queue), then closes every connection.
   * Does not hang when Redis is unreachable: what does not close in time is disconnected.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#workers].map((worker) => worker.stop(0)));
      const events = this.#eventsInstance;
      if (events !== undefined && !(await settles(events.close(), CLOSE_TIMEOUT_MS))) void events.disconnect().catch(() => undefined);
      await settles(this.#queue.close(), CLOSE_TIMEOUT_MS);
      await quitOrDisconnect(this.#client);
    })();
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed !== undefined) throw new PromoteError('ABORTED', 'the job queue is closed');
  }

  async #snapshot(id: string): Promise<JobSnapshot | undefined> {
    // The hash and the state lists are read by separate commands; a job that moves in between would show a state
    // its fields do not have yet (failed with attemptsMade 0). Read the state on both sides until it holds still.
    let read: { job: Job<PromotionJobData, PromotionJobResult>; state: JobState } | undefined;
    for (let i = 0; i < 5; i++) {
      const before = await this.#queue.getJobState(id);
      const job = await this.#queue.getJob(id);
      if (job === undefined || job === null) return undefined;
      const after = await this.#queue.getJobState(id);
      const state = stateOf(after);
      if (state === undefined) return undefined;
      read = { job, state };
      if (before === after) break;
    }
    if (read === undefined) return undefined;
    const { job, state } = read;
    const progress = isObject(job.progress) ? (job.progress as unknown as PromotionJobProgress) : undefined;
    const result = isObject(job.returnvalue) ? job.returnvalue : undefined;
    const reason = job.failedReason;
    return {
      id,
      state,
      data: job.data,
      attemptsMade: job.attemptsMade,
      createdAt: job.timestamp,
      ...(progress === undefined ? {} : { progress }),
      ...(result === undefined ? {} : { result }),
      ...(typeof reason === 'string' && reason !== '' ? { failure: parseFailure(reason, state === 'failed') } : {}),
      ...(job.processedOn === undefined ? {} : { startedAt: job.processedOn }),
      ...(job.finishedOn === undefined || (state !== 'completed' && state !== 'failed') ? {} : { finishedAt: job.finishedOn }),
    };
  }

  /**
   * Subscribes to the queue's event stream from its current end. The position is read before QueueEvents
   * connects, and enqueue() waits for this, so no event caused by this process after onJobEvent() is missed.
   */
  async #startEvents(): Promise<QueueEvents | undefined> {
    const last = await this.#client.xrevrange(this.#queue.toKey('events'), '+', '-', 'COUNT', 1);
    if (this.#closed !== undefined) return undefined;
    const events = new QueueEvents(this.#queueName, {
      connection: this.#client,
      prefix: this.#prefix,
      lastEventId: last[0]?.[0] ?? '0-0',
    });
    this.#eventsInstance = events;
    events.on('error', (err) => this.#log.warn({ err }, 'job events error'));
    for (const name of EVENTS) events.on(name, (args: { jobId: string }) => this.#dispatch(args.jobId));
    events.on('deduplicated', (args) => {
      this.#dispatch(args.jobId);
      this.#dispatch(args.deduplicatedJobId);
    });
    await events.waitUntilReady();
    return events;
  }

  async #eventsReady(): Promise<void> {
    if (this.#events !== undefined) await this.#events;
  }

  /** Calls the listeners in event order; the promotion comes from the cache, the job or its follow-up payload. */
  #dispatch(jobId: string): void {
    this.#dispatching = this.#dispatching.then(async () => {
      let promotion = this.#refs.get(jobId);
      if (promotion === undefined) {
        promotion = await this.#lookUpRef(jobId).catch(() => undefined);
        this.#remember(jobId, promotion);
      }
      for (const listener of this.#listeners) {
        try {
          listener({ jobId, promotion });
        } catch (err) {
          this.#log.warn({ err, jobId }, 'a job event listener threw');
        }
      }
    });
  }

  async #lookUpRef(jobId: string): Promise<PromotionRef | undefined> {
    const data = await this.#client.hget(this.#key(jobId), 'data');
    if (data !== null) return promotionRefOf(JSON.parse(data));
    const pointer = await this.#client.get(this.#pointerKey(jobId));
    if (pointer === null) return undefined;
    const { dedupId } = JSON.parse(pointer) as { dedupId: string };
    const next = await this.#client.hget(this.#nextKey(dedupId), 'data');
    return next === null ? undefined : promotionRefOf(JSON.parse(next));
  }

  #remember(jobId: string, promotion: PromotionRef | undefined): void {
    if (promotion === undefined) return;
    this.#refs.delete(jobId);
    this.#refs.set(jobId, promotion);
    if (this.#refs.size > REF_CACHE_SIZE) {
      const oldest = this.#refs.keys().next();
      if (oldest.done !== true) this.#refs.delete(oldest.value);
    }
  }

  /** The job hash: `<prefix>:<queue>:<jobId>`. */
  #key(jobId: string): string {
    return this.#queue.toKey(jobId);
  }

  /** BullMQ's stored follow-up payload of a deduplication id (keepLastIfActive). */
  #nextKey(dedupId: string): string {
    return this.#queue.toKey(`dn:${dedupId}`);
  }

  /** Ours: which deduplication id a follow-up job id waits under, so that get() can find it. */
  #pointerKey(jobId: string): string {
    return this.#queue.toKey(`bp-next:${jobId}`);
  }

  #cancelChannel(): string {
    return this.#queue.toKey('bp-cancel');
  }
}

interface WorkerSettings {
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
  readonly stopGraceMs: number;
  readonly abortGraceMs: number;
  readonly progressIntervalMs: number;
}

interface WorkerDeps extends WorkerSettings {
  readonly queueName: string;
  readonly prefix: string;
  readonly client: Redis;
  readonly cancelChannel: string;
  readonly log: Logger;
  readonly handler: JobHandler;
  readonly concurrency: number;
  readonly onStopped: (worker: BullmqJobWorker) => void;
}

/** One BullMQ Worker with its own connections, plus a subscription to the queue's cancel channel. */
class BullmqJobWorker implements JobWorker {
  readonly #deps: WorkerDeps;
  readonly #log: Logger;
  readonly #connection: Redis;
  readonly #subscriber: Redis;
  readonly #worker: Worker<PromotionJobData, PromotionJobResult>;
  /** Jobs running here → why they were cancelled, if they were. */
  readonly #running = new Map<string, Cancel | undefined>();
  #stopped: Promise<void> | undefined;

  constructor(deps: WorkerDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ role: 'worker' });
    // Its own connection (BullMQ adds a blocking one): stop() may have to cut it without touching the queue's.
    this.#connection = deps.client.duplicate();
    watchErrors(this.#connection, this.#log, 'worker connection');
    // Three declared parameters, or BullMQ creates no AbortSignal (library notes, pitfall 13).
    const processor = async (job: Job<PromotionJobData, PromotionJobResult>, token: string | undefined, signal: AbortSignal | undefined) =>
      this.#process(job, token, signal);
    if (processor.length < 3) throw new Error('the processor must declare three parameters to receive an AbortSignal');
    this.#worker = new Worker<PromotionJobData, PromotionJobResult>(deps.queueName, processor, {
      connection: this.#connection,
      prefix: deps.prefix,
      concurrency: deps.concurrency,
      lockDuration: deps.lockDurationMs,
      stalledInterval: deps.stalledIntervalMs,
      maxStalledCount: deps.maxStalledCount,
    });
    this.#worker.on('error', (err) => this.#log.warn({ err }, 'worker error'));
    // ioredis re-subscribes after a reconnect with a promise nobody handles: when stop() closes the connection before
    // Redis answers (a stop while Redis comes back), that rejection was unhandled, which ends a Node process. So we
    // subscribe ourselves, on every 'ready', with the failure handled.
    const subscriber = deps.client.duplicate({ autoResubscribe: false });
    this.#subscriber = subscriber;
    watchErrors(subscriber, this.#log, 'cancel subscription');
    subscriber.on('message', (_channel: string, jobId: string) => {
      if (this.cancel(jobId, 'drop')) this.#log.info({ jobId }, 'cancelled a job its promotion was dropped for');
    });
    subscriber.on('ready', () => {
      subscriber.subscribe(deps.cancelChannel).catch((err: unknown) => {
        if (this.#stopped === undefined) this.#log.warn({ err }, 'could not subscribe to cancellations');
      });
    });
  }

  get active(): number {
    return this.#running.size;
  }

  /** Aborts a job this worker runs; false when it runs no job with that id. */
  cancel(jobId: string, why: Cancel): boolean {
    if (!this.#running.has(jobId)) return false;
    if (this.#running.get(jobId) === undefined) this.#running.set(jobId, why);
    return this.#worker.cancelJob(jobId, abortReason(why));
  }

  stop(graceMs?: number): Promise<void> {
    this.#stopped ??= this.#stop(graceMs ?? this.#deps.stopGraceMs);
    return this.#stopped;
  }

  async #stop(graceMs: number): Promise<void> {
    const subscriberClosed = disconnect(this.#subscriber);
    // close() stops fetching and waits for the running jobs, without a deadline (pitfall 14): we add one.
    const closing = this.#worker.close().catch((err: unknown) => this.#log.warn({ err }, 'closing the worker failed'));
    if (!(await settles(closing, graceMs))) {
      for (const [jobId, why] of this.#running) if (why === undefined) this.#running.set(jobId, 'stop');
      this.#worker.cancelAllJobs(abortReason('stop'));
      if (!(await settles(closing, this.#deps.abortGraceMs))) {
        // Cutting the connections stops lock renewal: the jobs stall and another worker recovers them. This is also
        // where a stop ends when Redis is unreachable.
        this.#log.warn({ jobIds: [...this.#running.keys()] }, 'the worker did not close in time; leaving its jobs to stall recovery');
        void this.#worker.disconnect().catch(() => undefined);
      }
    }
    await Promise.all([subscriberClosed, disconnect(this.#connection)]);
    this.#deps.onStopped(this);
  }

  async #process(job: Job<PromotionJobData, PromotionJobResult>, token: string | undefined, signal: AbortSignal | undefined): Promise<PromotionJobResult> {
    const jobId = job.id ?? '';
    const ownSignal = signal ?? new AbortController().signal;
    this.#running.set(jobId, undefined);
    const progress = new ProgressWriter(job, this.#deps.progressIntervalMs, this.#log);
    try {
      const result = await this.#deps.handler(
        { id: jobId, data: job.data, attemptsMade: job.attemptsMade },
        (p) => progress.report(p),
        ownSignal,
      );
      await progress.flush();
      return result;
    } catch (error) {
      await progress.flush();
      const cancelled = this.#running.get(jobId);
      if (cancelled === 'stop') {
        // Decision (docs/jobs.md#stopping): not a failed attempt. Back to the wait list for another worker, now
        // rather than after lockDuration.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const failure = cancelled === 'drop' ? { code: 'ABORTED', message: DROP_REASON, retryable: false } : classifyFailure(error);
      if (failure.code === INTERNAL) this.#log.warn({ jobId, error: describeUnexpected(error) }, 'a job failed with an unexpected error');
      // Only this module maps permanent errors to BullMQ's UnrecoverableError (STYLE.md rule 2).
      throw failure.retryable ? new Error(encodeFailure(failure)) : new UnrecoverableError(encodeFailure(failure));
    } finally {
      this.#running.delete(jobId);
    }
  }
}

/** Writes a job's progress at most every `intervalMs`, in order, keeping the last report. */
class ProgressWriter {
  readonly #job: Job;
  readonly #intervalMs: number;
  readonly #log: Logger;
  #latest: PromotionJobProgress | undefined;
  #sentAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(job: Job, intervalMs: number, log: Logger) {
    this.#job = job;
    this.#intervalMs = intervalMs;
    this.#log = log;
  }

  report(progress: PromotionJobProgress): void {
    this.#latest = progress;
    if (this.#timer !== undefined) return;
    const wait = this.#sentAt + this.#intervalMs - Date.now();
    if (wait <= 0) this.#write();
    else
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#write();
      }, wait);
  }

  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#write();
    await this.#writing;
  }

  #write(): void {
    const progress = this.#latest;
    if (progress === undefined) return;
    this.#latest = undefined;
    this.#sentAt = Date.now();
    this.#writing = this.#writing
      .then(() => this.#job.updateProgress({ ...progress }))
      .catch((err: unknown) => this.#log.debug({ err, jobId: this.#job.id }, 'could not write job progress'));
  }
}

/** BullMQ's cancelJob takes a string: it becomes the handler's `signal.reason`. */
function abortReason(why: Cancel): string {
  return why === 'stop' ? STOP_REASON : DROP_REASON;
}

function stateOf(state: string): JobState | undefined {
  switch (state) {
    case 'waiting':
    case 'prioritized':
    case 'waiting-children':
    case 'paused':
      return 'waiting';
    case 'active':
    case 'delayed':
    case 'completed':
    case 'failed':
      return state;
    default:
      return undefined;
  }
}

/** Checks the URL and returns what may be logged of it (host and port, never the password). */
function parseRedisUrl(url: string): { readonly safe: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PromoteError('INVALID_CONFIG', 'REDIS_URL is not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new PromoteError('INVALID_CONFIG', `REDIS_URL must start with redis:// or rediss://, not ${parsed.protocol}//`);
  }
  return { safe: `${parsed.protocol}//${parsed.host}` };
}

async function quitOrDisconnect(client: Redis): Promise<void> {
  // QUIT waits for a reconnect when Redis is down (maxRetriesPerRequest null queues it): bound it.
  if (client.status !== 'ready' || !(await settles(client.quit(), CLOSE_TIMEOUT_MS))) client.disconnect();
}

/**
 * Disconnects at once and resolves once the connection has closed (bounded), so that what a caller does next comes
 * after the commands still waiting on it have been rejected.
 */
function disconnect(client: Redis): Promise<void> {
  // A client waiting to reconnect has no socket left to close: it never emits 'end'.
  const done = client.status === 'end' || client.status === 'reconnecting';
  const closed = done ? Promise.resolve() : new Promise<void>((resolve) => client.once('end', () => resolve()));
  client.disconnect();
  return settles(closed, CLOSE_TIMEOUT_MS).then(() => undefined);
}

function watchErrors(client: Redis, log: Logger, what: string): void {
  // Without a listener ioredis prints every reconnect failure; with one we log it once per failure, quietly.
  client.on('error', (err: Error) => log.debug({ err: { message: err.message } }, `${what} error`));
}

/** True when `promise` settles (either way) within `ms`; false after that. */
function settles(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  if (ms <= 0) return Promise.race([settled, Promise.resolve(false)]);
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    settled,
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new PromoteError('INVALID_CONFIG', `${name} must be a positive integer, not ${value}`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new PromoteError('INVALID_CONFIG', `${name} must be a non-negative number, not ${value}`);
  return value;
}
