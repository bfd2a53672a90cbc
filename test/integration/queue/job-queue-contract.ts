import { afterEach, describe, expect, it } from 'vitest';
import { PromoteError, asAbort } from '../../../src/errors.js';
import type {
  JobHandler,
  JobQueue,
  JobSnapshot,
  JobWorker,
  PromotionJobData,
  PromotionJobProgress,
  PromotionJobResult,
} from '../../../src/queue/index.js';

/** What a contract test may ask of the queue it gets: fast retries. */
export interface ContractQueueOptions {
  /** @defaultValue 3 */
  readonly attempts?: number;
  /** @defaultValue 50 */
  readonly backoffMs?: number;
}

/** Makes a fresh, empty queue (BullMQ: a unique prefix). The suite closes it after the test. */
export type MakeJobQueue = (options: Required<ContractQueueOptions>) => Promise<JobQueue>;

/** A job of promotion `team-a/<name>`; a different generation or trigger makes a different job id. */
export function promotionJob(name = 'app', generation = 1, extra: { readonly trigger?: string } = {}): PromotionJobData {
  const digest = `sha256:${'ab'.repeat(32)}`;
  return {
    promotion: { namespace: 'team-a', name, uid: `uid-${name}`, generation },
    source: `registry.example/dev/${name}@${digest}`,
    sourceDigest: digest,
    target: `registry.example/prod/${name}`,
    tags: [`v${generation}`],
    sourceCredentials: 'dev-pull-secret',
    targetCredentials: 'prod-push-secret',
    copy: { signatures: true, include: ['att'], concurrency: 4 },
    ...(extra.trigger === undefined ? {} : { trigger: extra.trigger }),
  };
}

export function resultOf(data: PromotionJobData): PromotionJobResult {
  return {
    sourceDigest: data.sourceDigest,
    target: data.target,
    tags: data.tags,
    startedAt: '2024-01-01T00:00:00.000Z',
    finishedAt: '2024-01-01T00:00:01.000Z',
    counts: { images: 2, artifacts: 3, blobsUploaded: 4, blobsMounted: 1, blobsPresent: 0, bytes: 1234, registryRequests: 17 },
  };
}

export function progressOf(phase: string, done: number): PromotionJobProgress {
  return { phase, artifactsDone: done, artifactsTotal: 3, blobsDone: done, blobsTotal: 4, bytesDone: done * 100, bytesTotal: 400 };
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Resolves with the first truthy value of `check`, asked again every 20 ms, or rejects after `timeoutMs` saying
 * what did not happen.
 */
export async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function untilState(queue: JobQueue, id: string, state: JobSnapshot['state'], timeoutMs?: number): Promise<JobSnapshot> {
  return until(
    `job ${id} is ${state}`,
    async () => {
      const job = await queue.get(id);
      return job?.state === state ? job : undefined;
    },
    timeoutMs,
  );
}

/** A handler call, as the test saw it. */
export interface Call {
  readonly id: string;
  readonly data: PromotionJobData;
  readonly attemptsMade: number;
  readonly signal: AbortSignal;
  readonly at: number;
}

/** Waits until the signal aborts, then throws what a well-behaved engine throws: PromoteError ABORTED. */
function abortedBy(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = (): void => reject(asAbort(signal) ?? new PromoteError('ABORTED', 'aborted'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

/**
 * The behaviour every {@link JobQueue} adapter shares (docs/jobs.md), run against each: BullMQ on a real
 * redis-server and the in-process queue.
 */
export function describeJobQueueContract(name: string, makeQueue: MakeJobQueue): void {
  describe(`${name} (JobQueue contract)`, () => {
    const queues: JobQueue[] = [];
    const workers: JobWorker[] = [];

    async function open(options: ContractQueueOptions = {}): Promise<JobQueue> {
      const queue = await makeQueue({ attempts: options.attempts ?? 3, backoffMs: options.backoffMs ?? 50 });
      queues.push(queue);
      return queue;
    }

    function work(queue: JobQueue, handler: JobHandler, concurrency = 1): JobWorker {
      const worker = queue.work(handler, { concurrency });
      workers.push(worker);
      return worker;
    }

    /** A handler that records its calls and runs `body` for each. */
    function recording(calls: Call[], body: (call: Call, report: (p: PromotionJobProgress) => void) => Promise<PromotionJobResult>): JobHandler {
      return async (job, report, signal) => {
        const call = { id: job.id, data: job.data, attemptsMade: job.attemptsMade, signal, at: Date.now() };
        calls.push(call);
        return body(call, report);
      };
    }

    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.stop(0)));
      await Promise.all(queues.splice(0).map((q) => q.close()));
    });

    describe('job ids', () => {
      it('when the same data is enqueued twice, it keeps one job and answers created=false the second time', async () => {
        const queue = await open();
        const data = promotionJob();
        const first = await queue.enqueue(data);
        const second = await queue.enqueue(promotionJob());
        expect(first).toEqual({ id: expect.stringMatching(/^bp-[0-9a-f]{40}$/), created: true });
        expect(second).toEqual({ id: first.id, created: false });
        expect(await queue.counts()).toMatchObject({ waiting: 1, active: 0 });
        const job = await queue.get(first.id);
        expect(job).toMatchObject({ id: first.id, state: 'waiting', attemptsMade: 0, data });
        expect(job?.createdAt).toBeGreaterThan(0);
      });

      it('when a finished job is enqueued again, it answers created=false and does not run it again', async () => {
        const queue = await open();
        const calls: Call[] = [];
        work(queue, recording(calls, async (call) => resultOf(call.data)));
        const { id } = await queue.enqueue(promotionJob());
        await untilState(queue, id, 'completed');
        expect(await queue.enqueue(promotionJob())).toEqual({ id, created: false });
        // A different trigger is a different job, and it does run: once it has completed, the first one had its chance.
        const again = await queue.enqueue(promotionJob('app', 1, { trigger: 'requestedAt=2' }));
        expect(again.created).toBe(true);
        await untilState(queue, again.id, 'completed');
        expect(calls.map((c) => c.id)).toEqual([id, again.id]);
      });

      it('when get() is asked for an unknown id, it answers undefined', async () => {
        const queue = await open();
        expect(await queue.get('bp-0000000000000000000000000000000000000000')).toBeUndefined();
      });
    });

    describe('deduplication', () => {
      it('when a promotion changes three times while its job runs, exactly one follow-up runs, with the newest data', async () => {
        const queue = await open();
        const calls: Call[] = [];
        const release = deferred();
        work(
          queue,
          recording(calls, async (call) => {
            if (call.data.promotion.generation === 1) await release.promise;
            return resultOf(call.data);
          }),
        );
        const v1 = await queue.enqueue(promotionJob('app', 1));
        await untilState(queue, v1.id, 'active');
        const v2 = await queue.enqueue(promotionJob('app', 2));
        const v3 = await queue.enqueue(promotionJob('app', 3));
        const v4 = await queue.enqueue(promotionJob('app', 4));
        expect([v2.created, v3.created, v4.created]).toEqual([true, true, true]);
        expect(await queue.enqueue(promotionJob('app', 4))).toEqual({ id: v4.id, created: false });
        expect(await queue.get(v4.id)).toMatchObject({ state: 'waiting', data: promotionJob('app', 4) });
        expect(await queue.get(v2.id)).toBeUndefined();
        expect(await queue.get(v3.id)).toBeUndefined();
        release.resolve();
        const done = await untilState(queue, v4.id, 'completed');
        expect(done.data.promotion.generation).toBe(4);
        expect(calls.map((c) => c.data.promotion.generation)).toEqual([1, 4]);
        expect(await queue.get(v2.id)).toBeUndefined();
        expect(await queue.get(v3.id)).toBeUndefined();
        expect(await queue.counts()).toMatchObject({ waiting: 0, active: 0, completed: 2 });
      });

      it('when a promotion changes before its job starts, the newer job replaces the waiting one', async () => {
        const queue = await open();
        const v1 = await queue.enqueue(promotionJob('app', 1));
        const v2 = await queue.enqueue(promotionJob('app', 2));
        const other = await queue.enqueue(promotionJob('other', 1));
        expect(v2.created).toBe(true);
        expect(await queue.get(v1.id)).toBeUndefined();
        expect(await queue.get(v2.id)).toMatchObject({ state: 'waiting' });
        expect(await queue.counts()).toMatchObject({ waiting: 2 });

        const calls: Call[] = [];
        work(queue, recording(calls, async (call) => resultOf(call.data)));
        await untilState(queue, v2.id, 'completed');
        await untilState(queue, other.id, 'completed');
        expect(calls.map((c) => c.id).sort()).toEqual([v2.id, other.id].sort());
      });

      it('when two promotions have jobs, they run at the same time', async () => {
        const queue = await open();
        const both = deferred();
        let running = 0;
        work(
          queue,
          async (job) => {
            running += 1;
            if (running === 2) both.resolve();
            await both.promise;
            return resultOf(job.data);
          },
          2,
        );
        const a = await queue.enqueue(promotionJob('a'));
        const b = await queue.enqueue(promotionJob('b'));
        await untilState(queue, a.id, 'completed');
        await untilState(queue, b.id, 'completed');
      });
    });

    describe('failures', () => {
      it('when the handler fails twice with a retryable error, it retries with exponential backoff and completes', async () => {
        const backoffMs = 100;
        const queue = await open({ attempts: 5, backoffMs });
        const calls: Call[] = [];
        work(
          queue,
          recording(calls, async (call) => {
            if (call.attemptsMade < 2) throw new PromoteError('REGISTRY_UNAVAILABLE', `reset on attempt ${call.attemptsMade + 1}`);
            return resultOf(call.data);
          }),
        );
        const { id } = await queue.enqueue(promotionJob());
        const job = await untilState(queue, id, 'completed');
        expect(job.attemptsMade).toBe(3);
        expect(job.result).toEqual(resultOf(promotionJob()));
        // The last failure stays readable; it did not end the job.
        expect(job.failure).toEqual({ code: 'REGISTRY_UNAVAILABLE', message: 'reset on attempt 2', final: false });
        expect(calls.map((c) => c.attemptsMade)).toEqual([0, 1, 2]);
        const [a, b, c] = calls.map((x) => x.at) as [number, number, number];
        expect(b - a).toBeGreaterThanOrEqual(backoffMs - 5); // 2^0 × backoff
        expect(c - b).toBeGreaterThanOrEqual(2 * backoffMs - 5); // 2^1 × backoff
      });

      it('when a failed attempt waits for its retry, get() shows it delayed with a non-final failure', async () => {
        const queue = await open({ attempts: 2, backoffMs: 60_000 });
        work(queue, async () => {
          throw new PromoteError('REGISTRY_THROTTLED', 'slow down');
        });
        const { id } = await queue.enqueue(promotionJob());
        const job = await untilState(queue, id, 'delayed');
        expect(job).toMatchObject({ attemptsMade: 1, failure: { code: 'REGISTRY_THROTTLED', message: 'slow down', final: false } });
        expect(await queue.counts()).toMatchObject({ delayed: 1, waiting: 0, active: 0 });
      });

      it('when retryable failures use up the attempts, the job fails with the last code and final=true', async () => {
        const queue = await open({ attempts: 2, backoffMs: 10 });
        const calls: Call[] = [];
        work(
          queue,
          recording(calls, async () => {
            throw new PromoteError('REGISTRY_TIMEOUT', 'no answer');
          }),
        );
        const { id } = await queue.enqueue(promotionJob());
        const job = await untilState(queue, id, 'failed');
        expect(job).toMatchObject({ attemptsMade: 2, failure: { code: 'REGISTRY_TIMEOUT', message: 'no answer', final: true } });
        expect(job.finishedAt).toBeGreaterThanOrEqual(job.createdAt);
        expect(calls).toHaveLength(2);
      });

      it('when the handler fails with a permanent error, it fails at once with the code preserved', async () => {
        const queue = await open({ attempts: 5, backoffMs: 10 });
        const calls: Call[] = [];
        work(
          queue,
          recording(calls, async () => {
            throw new PromoteError('DIGEST_MISMATCH', 'blob sha256:abc has digest sha256:def');
          }),
        );
        const { id } = await queue.enqueue(promotionJob());
        const job = await untilState(queue, id, 'failed');
        expect(job.attemptsMade).toBe(1);
        expect(job.failure).toEqual({ code: 'DIGEST_MISMATCH', message: 'blob sha256:abc has digest sha256:def', final: true });
        expect(calls).toHaveLength(1);
        expect(await queue.counts()).toMatchObject({ failed: 1, delayed: 0, waiting: 0 });
      });

      it('when the handler throws something that is not a PromoteError, it is retried and fails as INTERNAL without its message', async () => {
        const queue = await open({ attempts: 2, backoffMs: 10 });
        work(queue, async () => {
          throw new TypeError('GET https://user:hunter2@registry.example/v2/ failed');
        });
        const { id } = await queue.enqueue(promotionJob());
        const job = await untilState(queue, id, 'failed');
        expect(job.failure).toEqual({ code: 'INTERNAL', message: 'unexpected TypeError (details in the worker log)', final: true });
        expect(job.attemptsMade).toBe(2);
      });

      it('when a message looks like an encoded code, it is read back unchanged', async () => {
        const queue = await open({ attempts: 1 });
        work(queue, async () => {
          throw new PromoteError('MANIFEST_INVALID', '[NOT_A_CODE] ] multi\nline');
        });
        const { id } = await queue.enqueue(promotionJob());
        const job = await untilState(queue, id, 'failed');
        expect(job.failure).toEqual({ code: 'MANIFEST_INVALID', message: '[NOT_A_CODE] ] multi\nline', final: true });
      });
    });

    describe('drop', () => {
      it('when a running job is dropped, its signal aborts and it fails as ABORTED without retry or follow-up', async () => {
        const queue = await open({ attempts: 5, backoffMs: 10 });
        const calls: Call[] = [];
        work(queue, recording(calls, async (call) => (call.data.promotion.name === 'app' ? abortedBy(call.signal) : resultOf(call.data))));
        const running = await queue.enqueue(promotionJob('app', 1));
        await untilState(queue, running.id, 'active');
        const followUp = await queue.enqueue(promotionJob('app', 2));
        await queue.drop({ namespace: 'team-a', name: 'app' });
        const job = await untilState(queue, running.id, 'failed');
        expect(calls).toHaveLength(1);
        expect(calls[0]?.signal.aborted).toBe(true);
        expect(job).toMatchObject({ attemptsMade: 1, failure: { code: 'ABORTED', final: true } });
        // Proof that nothing else of the promotion runs: a later job of another promotion completes alone.
        const later = await queue.enqueue(promotionJob('later'));
        await untilState(queue, later.id, 'completed');
        expect(await queue.get(followUp.id)).toBeUndefined();
        expect(calls.map((c) => c.data.promotion.name)).toEqual(['app', 'later']);
      });

      it('when a waiting job is dropped, it is removed and never runs; other promotions keep theirs', async () => {
        const queue = await open();
        const dropped = await queue.enqueue(promotionJob('app'));
        const kept = await queue.enqueue(promotionJob('other'));
        await queue.drop({ namespace: 'team-a', name: 'app' });
        expect(await queue.get(dropped.id)).toBeUndefined();
        expect(await queue.counts()).toMatchObject({ waiting: 1 });
        const calls: Call[] = [];
        work(queue, recording(calls, async (call) => resultOf(call.data)));
        await untilState(queue, kept.id, 'completed');
        expect(calls.map((c) => c.id)).toEqual([kept.id]);
        // The promotion's deduplication slot is free again: a new job of it is created and runs.
        const recreated = await queue.enqueue(promotionJob('app', 2));
        expect(recreated.created).toBe(true);
        await untilState(queue, recreated.id, 'completed');
      });

      it('when a job waiting for its retry is dropped, it is removed and does not run again', async () => {
        const queue = await open({ attempts: 3, backoffMs: 60_000 });
        const calls: Call[] = [];
        work(
          queue,
          recording(calls, async () => {
            throw new PromoteError('REGISTRY_UNAVAILABLE', '503');
          }),
        );
        const { id } = await queue.enqueue(promotionJob());
        await untilState(queue, id, 'delayed');
        await queue.drop({ namespace: 'team-a', name: 'app' });
        expect(await queue.get(id)).toBeUndefined();
        expect(await queue.counts()).toMatchObject({ delayed: 0, waiting: 0 });
        expect(calls).toHaveLength(1);
      });
    });

    describe('progress, result and events', () => {
      it('when the handler reports progress and returns a result, get() shows both', async () => {
        const queue = await open();
        const seen = deferred();
        work(queue, async (job, report) => {
          report(progressOf('copy', 1));
          await seen.promise;
          report(progressOf('copy', 2));
          report(progressOf('verify-target', 3));
          return resultOf(job.data);
        });
        const { id } = await queue.enqueue(promotionJob());
        const running = await until('progress is visible', async () => {
          const job = await queue.get(id);
          return job?.progress !== undefined ? job : undefined;
        });
        expect(running).toMatchObject({ state: 'active', progress: progressOf('copy', 1) });
        expect(running.startedAt).toBeGreaterThanOrEqual(running.createdAt);
        seen.resolve();
        const job = await untilState(queue, id, 'completed');
        expect(job.progress).toEqual(progressOf('verify-target', 3));
        expect(job.result).toEqual(resultOf(promotionJob()));
        expect(job.failure).toBeUndefined();
        expect(job.finishedAt).toBeGreaterThanOrEqual(job.startedAt ?? Infinity);
      });

      it('when a job moves through its states, onJobEvent reports each move with the promotion', async () => {
        const queue = await open({ attempts: 2, backoffMs: 10 });
        const events: { jobId: string; promotion: unknown }[] = [];
        queue.onJobEvent((event) => events.push(event));
        work(queue, async (job, report) => {
          report(progressOf('copy', 1));
          if (job.attemptsMade === 0) throw new PromoteError('REGISTRY_THROTTLED', '429');
          return resultOf(job.data);
        });
        const { id } = await queue.enqueue(promotionJob());
        await untilState(queue, id, 'completed');
        // enqueued, active, progress, delayed, waiting, active, progress, completed: at least one per state change.
        const mine = await until('the completion event arrives', async () => {
          const list = events.filter((e) => e.jobId === id);
          return list.length >= 6 ? list : undefined;
        });
        for (const event of mine) expect(event.promotion).toEqual({ namespace: 'team-a', name: 'app' });
      });

      it('counts() reports waiting, active, delayed, completed and failed jobs', async () => {
        const queue = await open({ attempts: 2, backoffMs: 60_000 });
        expect(await queue.counts()).toEqual({ waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0 });
        const release = deferred();
        work(queue, async (job) => {
          const name = job.data.promotion.name;
          if (name === 'block') await release.promise;
          if (name === 'retry') throw new PromoteError('REGISTRY_UNAVAILABLE', 'try later');
          if (name === 'broken') throw new PromoteError('NOT_A_BUNDLE', 'no bundle');
          return resultOf(job.data);
        });
        const done = await queue.enqueue(promotionJob('done'));
        await untilState(queue, done.id, 'completed');
        const broken = await queue.enqueue(promotionJob('broken'));
        await untilState(queue, broken.id, 'failed');
        const retry = await queue.enqueue(promotionJob('retry'));
        await untilState(queue, retry.id, 'delayed');
        const block = await queue.enqueue(promotionJob('block'));
        await untilState(queue, block.id, 'active');
        await queue.enqueue(promotionJob('w1'));
        await queue.enqueue(promotionJob('w2'));
        expect(await queue.counts()).toEqual({ waiting: 2, active: 1, delayed: 1, completed: 1, failed: 1 });
        release.resolve();
      });
    });

    describe('workers', () => {
      it('when a worker stops within its grace, it lets the running job finish', async () => {
        const queue = await open();
        const started = deferred();
        const finish = deferred();
        const worker = work(queue, async (job) => {
          started.resolve();
          await finish.promise;
          return resultOf(job.data);
        });
        const { id } = await queue.enqueue(promotionJob());
        await started.promise;
        expect(worker.active).toBe(1);
        const stopping = worker.stop(10_000);
        finish.resolve();
        await stopping;
        expect(worker.active).toBe(0);
        expect(await queue.get(id)).toMatchObject({ state: 'completed', attemptsMade: 1 });
        // A stopped worker takes no more jobs.
        const next = await queue.enqueue(promotionJob('next'));
        expect(await queue.get(next.id)).toMatchObject({ state: 'waiting' });
      });

      it('when a worker stops and the grace runs out, the job is aborted, not failed, and runs again on another worker', async () => {
        const queue = await open({ attempts: 1 });
        const first: Call[] = [];
        const worker = work(queue, recording(first, async (call) => abortedBy(call.signal)));
        const { id } = await queue.enqueue(promotionJob());
        await untilState(queue, id, 'active');
        await worker.stop(50);
        expect(first).toHaveLength(1);
        expect(first[0]?.signal.aborted).toBe(true);
        const back = await queue.get(id);
        expect(back).toMatchObject({ state: 'waiting', attemptsMade: 0 });
        expect(back?.failure).toBeUndefined();
        const second: Call[] = [];
        work(queue, recording(second, async (call) => resultOf(call.data)));
        const job = await untilState(queue, id, 'completed');
        expect(second.map((c) => c.attemptsMade)).toEqual([0]);
        expect(job.attemptsMade).toBe(1);
      });

      it('when stop() is called twice, both calls settle', async () => {
        const queue = await open();
        const worker = work(queue, async (job) => resultOf(job.data));
        await Promise.all([worker.stop(0), worker.stop(0)]);
        await worker.stop();
        expect(worker.active).toBe(0);
      });
    });

    describe('lifecycle', () => {
      it('when open it is healthy; close() is idempotent', async () => {
        const queue = await open();
        expect(await queue.healthy()).toBe(true);
        await queue.close();
        await queue.close();
        expect(await queue.healthy()).toBe(false);
      });
    });
  });
}
