import { afterEach, describe, expect, it } from 'vitest';
import { PromoteError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { BullmqJobQueue, MemoryJobQueue, createJobQueue, type JobQueue } from '../../../src/queue/index.js';
import { deferred, promotionJob, resultOf, untilState } from '../../integration/queue/job-queue-contract.js';

describe('createJobQueue', () => {
  it('when no Redis URL is given (or an empty one), it returns the in-process queue', async () => {
    const a = createJobQueue({ log: silentLogger() });
    const b = createJobQueue({ log: silentLogger(), redisUrl: '' });
    expect(a).toBeInstanceOf(MemoryJobQueue);
    expect(b).toBeInstanceOf(MemoryJobQueue);
    await Promise.all([a.close(), b.close()]);
  });

  it('when the URL is not redis:// or rediss://, it throws INVALID_CONFIG without echoing the URL', () => {
    let error: unknown;
    try {
      createJobQueue({ log: silentLogger(), redisUrl: 'http://user:s3cr3t@redis.example:6379' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PromoteError);
    expect((error as PromoteError).code).toBe('INVALID_CONFIG');
    expect((error as PromoteError).message).not.toContain('s3cr3t');
    expect(() => new BullmqJobQueue({ url: 'not a url', log: silentLogger() })).toThrow(PromoteError);
  });

  it('when an option is out of range, it throws INVALID_CONFIG', () => {
    expect(() => new MemoryJobQueue({ log: silentLogger(), attempts: 0 })).toThrow(/attempts must be a positive integer/);
    expect(() => new BullmqJobQueue({ url: 'redis://127.0.0.1:1', log: silentLogger(), queueName: 'a:b' })).toThrow(/contain no ':'/);
  });
});

describe('MemoryJobQueue', () => {
  const queues: JobQueue[] = [];
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.close()));
  });
  const open = (options: Partial<ConstructorParameters<typeof MemoryJobQueue>[0]> = {}): MemoryJobQueue => {
    const queue = new MemoryJobQueue({ log: silentLogger(), attempts: 2, backoffMs: 1, ...options });
    queues.push(queue);
    return queue;
  };

  it('when more jobs finish than retainFinishedCount, it forgets the oldest', async () => {
    const queue = open({ retainFinishedCount: 2 });
    queue.work(async (job) => resultOf(job.data), { concurrency: 1 });
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const { id } = await queue.enqueue(promotionJob(name));
      await untilState(queue, id, 'completed');
      ids.push(id);
    }
    expect(await queue.get(ids[0] ?? '')).toBeUndefined();
    expect(await queue.get(ids[2] ?? '')).toMatchObject({ state: 'completed' });
    expect(await queue.counts()).toMatchObject({ completed: 2 });
  });

  it('when a stopping worker’s handler ignores its signal, the job is queued again after abortGraceMs and its late result is ignored', async () => {
    const queue = open({ abortGraceMs: 20 });
    const late = deferred();
    const worker = queue.work(
      async (job) => {
        await late.promise; // ignores the signal
        return { ...resultOf(job.data), target: 'late' };
      },
      { concurrency: 1 },
    );
    const { id } = await queue.enqueue(promotionJob());
    await untilState(queue, id, 'active');
    await worker.stop(0);
    expect(await queue.get(id)).toMatchObject({ state: 'waiting', attemptsMade: 0 });
    late.resolve();
    queue.work(async (job) => resultOf(job.data), { concurrency: 1 });
    const job = await untilState(queue, id, 'completed');
    expect(job.result?.target).toBe(resultOf(promotionJob()).target);
  });

  it('when the queue is closed, enqueue throws ABORTED', async () => {
    const queue = open();
    await queue.close();
    await expect(queue.enqueue(promotionJob())).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
