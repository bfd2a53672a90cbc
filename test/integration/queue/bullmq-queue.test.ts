import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PromoteError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import {
  BullmqJobQueue,
  MemoryJobQueue,
  createJobQueue,
  type BullmqJobQueueOptions,
  type JobQueue,
  type JobWorker,
  type PromotionJobData,
} from '../../../src/queue/index.js';
import { startRedisProxy } from '../../support/redis-proxy.js';
import { startRedisServer, type TestRedisServer } from '../../support/redis-server.js';
import { deferred, describeJobQueueContract, progressOf, promotionJob, resultOf, until, untilState } from './job-queue-contract.js';

let redis: TestRedisServer;
let sequence = 0;
/** A unique hash-tagged prefix per queue: tests share one redis-server and never see each other's keys. */
const uniquePrefix = (): string => `{bp-test-${process.pid}-${++sequence}}`;

/** Fast lock and stall settings so that recovery tests take seconds, not minutes. */
const FAST = { lockDurationMs: 2000, stalledIntervalMs: 500, abortGraceMs: 1000, healthTimeoutMs: 500 } as const;

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await redis?.stop();
});

describeJobQueueContract('BullmqJobQueue', async ({ attempts, backoffMs }) =>
  new BullmqJobQueue({ url: redis.url, prefix: uniquePrefix(), log: silentLogger(), attempts, backoffMs, ...FAST }),
);

describe('BullmqJobQueue (Redis-specific)', () => {
  const queues: JobQueue[] = [];
  const workers: JobWorker[] = [];
  const children: ChildProcess[] = [];
  const servers: TestRedisServer[] = [];

  function open(options: Partial<BullmqJobQueueOptions> & { prefix: string }, url = redis.url): BullmqJobQueue {
    const queue = new BullmqJobQueue({ url, log: silentLogger(), attempts: 3, backoffMs: 50, ...FAST, ...options });
    queues.push(queue);
    return queue;
  }

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(workers.splice(0).map((w) => w.stop(0)));
    await Promise.all(queues.splice(0).map((q) => q.close()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it('when createJobQueue gets a Redis URL it uses BullMQ, and without one the in-process queue', async () => {
    const onRedis = createJobQueue({ redisUrl: redis.url, prefix: uniquePrefix(), log: silentLogger() });
    queues.push(onRedis);
    expect(onRedis).toBeInstanceOf(BullmqJobQueue);
    expect(await onRedis.healthy()).toBe(true);
    const inProcess = createJobQueue({ redisUrl: undefined, log: silentLogger() });
    queues.push(inProcess);
    expect(inProcess).toBeInstanceOf(MemoryJobQueue);
  });

  it('keeps every key under the hash-tagged prefix, so that a Redis Cluster keeps the queue in one slot', async () => {
    const prefix = uniquePrefix();
    const queue = open({ prefix });
    const release = deferred();
    workers.push(queue.work(async (job) => (job.data.promotion.generation === 1 ? release.promise.then(() => resultOf(job.data)) : resultOf(job.data)), { concurrency: 1 }));
    const v1 = await queue.enqueue(promotionJob('app', 1));
    await untilState(queue, v1.id, 'active');
    await queue.enqueue(promotionJob('app', 2)); // a follow-up: BullMQ's dn: key and our pointer
    const all = await redis.keys();
    expect(all.filter((k) => k.startsWith(`${prefix}:promotions:`)).length).toBeGreaterThan(3);
    // Every key on this server, this test's and the earlier tests', sits under a queue's hash-tagged prefix.
    for (const key of all) expect(key).toMatch(/^\{bp-test-\d+-\d+\}:promotions:./);
    release.resolve();
  });

  it('when a job of a promotion runs in another process, drop() cancels it there through Redis pub/sub', async () => {
    const prefix = uniquePrefix();
    const workerSide = open({ prefix });
    const controllerSide = open({ prefix });
    const aborted = deferred<unknown>();
    workers.push(
      workerSide.work(
        async (_job, _report, signal) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted.resolve(signal.reason);
              reject(new PromoteError('ABORTED', 'stopped copying'));
            }),
          ),
        { concurrency: 1 },
      ),
    );
    const { id } = await controllerSide.enqueue(promotionJob());
    await untilState(controllerSide, id, 'active');
    await until('the worker subscribed to cancellations', async () => {
      await controllerSide.drop({ namespace: 'team-a', name: 'app' });
      return Promise.race([aborted.promise.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 100))]);
    });
    expect(await aborted.promise).toBe('the promotion was dropped');
    const job = await untilState(controllerSide, id, 'failed');
    expect(job.failure).toMatchObject({ code: 'ABORTED', final: true });
  });

  it('when the worker process is killed with SIGKILL mid-job, another worker recovers the job and completes it', async () => {
    const prefix = uniquePrefix();
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../support/queue-worker-child.ts', import.meta.url))], {
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        BP_PREFIX: prefix,
        BP_LOCK_DURATION_MS: String(FAST.lockDurationMs),
        BP_STALLED_INTERVAL_MS: String(FAST.stalledIntervalMs),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));

    const producer = open({ prefix });
    const { id } = await producer.enqueue(promotionJob());
    await until(`the child started ${id} (output so far: ${output})`, async () => output.includes(`started ${id}`), 30_000);
    expect(await producer.get(id)).toMatchObject({ state: 'active' });
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    expect(await exited).toEqual([null, 'SIGKILL']);

    const seen: string[] = [];
    workers.push(
      producer.work(
        async (job) => {
          seen.push(job.id);
          return resultOf(job.data);
        },
        { concurrency: 1 },
      ),
    );
    const job = await untilState(producer, id, 'completed', 30_000);
    expect(seen).toEqual([id]);
    expect(job.result).toEqual(resultOf(promotionJob()));
    expect(job.failure).toBeUndefined();
  });

  it('when Redis restarts mid-run, the queued and running jobs still complete (AOF)', async () => {
    const prefix = uniquePrefix();
    const queue = open({ prefix });
    const restarted = deferred();
    const ran: string[] = [];
    workers.push(
      queue.work(
        async (job) => {
          ran.push(job.id);
          await restarted.promise;
          return resultOf(job.data);
        },
        { concurrency: 2 },
      ),
    );
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) ids.push((await queue.enqueue(promotionJob(name))).id);
    await until('two jobs run', async () => (await queue.counts()).active === 2);
    await redis.restart();
    restarted.resolve();
    for (const id of ids) await untilState(queue, id, 'completed', 60_000);
    expect(new Set(ran)).toEqual(new Set(ids));
    expect(await queue.counts()).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 6, failed: 0 });
  });

  it('when Redis is down, healthy() answers false within its timeout, and true again once it is back', async () => {
    const server = await startRedisServer();
    servers.push(server);
    const queue = open({ prefix: uniquePrefix() }, server.url);
    expect(await queue.healthy()).toBe(true);
    await server.restart();
    await until('healthy() is true again after the restart', () => queue.healthy());
    await server.stop();
    const started = Date.now();
    expect(await queue.healthy()).toBe(false);
    expect(Date.now() - started).toBeLessThan(FAST.healthTimeoutMs + 1000);
  });

  it('when a worker stops while its cancel subscription is being re-established, no promise rejection goes unhandled', async () => {
    // ioredis's own re-subscribe after a reconnect leaves its promise without a handler: a stop that closes the
    // connection before Redis answers used to reject it unhandled, which ends a Node process (CI saw it once).
    const proxy = await startRedisProxy(redis.port);
    const probe = new Redis(redis.url);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const prefix = uniquePrefix();
      const queue = open({ prefix }, proxy.url);
      const worker = queue.work(async (job) => resultOf(job.data), { concurrency: 1 });
      workers.push(worker);
      const subscribed = async (): Promise<boolean> => (await probe.pubsub('CHANNELS', `${prefix}*`)).length === 1;
      await until('the worker subscribed to cancellations', subscribed);
      proxy.swallowRepliesTo(/\r\nsubscribe\r\n/i);
      proxy.dropConnections();
      await until('the subscription is re-sent after the reconnect, and gets no answer', async () => proxy.swallowing === 1);
      await worker.stop(0);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      // The queue still works after all that: the cut connections came back.
      expect(await queue.healthy()).toBe(true);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      probe.disconnect();
      await proxy.close();
    }
  });

  it('when jobs have run, Redis holds Secret names only: no credential, no Redis password, no field beyond the job data', async () => {
    const password = 'redis-pw-Jx81vQ';
    const server = await startRedisServer({ password });
    servers.push(server);
    const queue = open({ prefix: uniquePrefix(), attempts: 3, backoffMs: 10 }, server.url);
    // What a worker reads from the Secrets the job names; it must reach nothing that is stored.
    const token = 'ghp_7f3a9cSecretTokenValue0042';
    const dockerconfig = Buffer.from(`robot:${token}`).toString('base64');
    const secrets: Record<string, string> = { 'dev-pull-secret': dockerconfig, 'prod-push-secret': dockerconfig };
    queue.onJobEvent(() => undefined);
    workers.push(
      queue.work(
        async (job, report) => {
          const credential = secrets[job.data.sourceCredentials ?? ''] ?? '';
          report(progressOf('copy', 1));
          if (job.data.promotion.name === 'library-error' && job.attemptsMade === 0) {
            throw new TypeError(`fetch https://robot:${token}@registry.example/v2/ failed, Authorization: Basic ${credential}`);
          }
          if (job.data.promotion.name === 'denied') {
            throw new PromoteError('REGISTRY_DENIED', 'registry.example denied push to prod/denied', {
              cause: new Error(`Authorization: Basic ${credential}`),
            });
          }
          return resultOf(job.data);
        },
        { concurrency: 2 },
      ),
    );
    const ok = await queue.enqueue(promotionJob('ok'));
    const retried = await queue.enqueue(promotionJob('library-error'));
    const denied = await queue.enqueue(promotionJob('denied'));
    await untilState(queue, ok.id, 'completed');
    await untilState(queue, retried.id, 'completed');
    await untilState(queue, denied.id, 'failed');

    const dump = await server.dump();
    expect(dump).toContain('dev-pull-secret'); // the Secret's name is there: the dump does read the job data
    expect(dump).toContain('registry.example denied push to prod/denied');
    for (const secret of [token, dockerconfig, password]) expect(dump).not.toContain(secret);

    const allowed = new Set<string>(['promotion', 'source', 'sourceDigest', 'target', 'tags', 'sourceCredentials', 'targetCredentials', 'copy', 'verify', 'registry', 'trigger']);
    const jobKeys = (await server.keys()).filter((k) => /:promotions:bp-[0-9a-f]{40}$/.test(k));
    expect(jobKeys).toHaveLength(3);
    for (const key of jobKeys) {
      const job = await queue.get(key.slice(key.lastIndexOf(':') + 1));
      const data = job?.data as PromotionJobData;
      for (const field of Object.keys(data)) expect(allowed).toContain(field);
      expect(Object.keys(data.promotion).sort()).toEqual(['generation', 'name', 'namespace', 'uid']);
    }
  });
});
