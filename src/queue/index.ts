import type { Logger } from '../log.js';
import { BullmqJobQueue, type BullmqJobQueueOptions } from './bullmq-queue.js';
import type { JobQueue } from './job-queue.js';
import { MemoryJobQueue, type MemoryJobQueueOptions } from './memory-queue.js';

export type {
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
export { dedupIdOf, jobIdOf } from './job-id.js';
export { BullmqJobQueue, type BullmqJobQueueOptions } from './bullmq-queue.js';
export { MemoryJobQueue, type MemoryJobQueueOptions } from './memory-queue.js';
export { DROP_REASON, INTERNAL, STOP_REASON } from './failure.js';

/** The options both adapters share, plus the one that picks the adapter. */
export type CreateJobQueueOptions = Omit<BullmqJobQueueOptions, 'url'> &
  Omit<MemoryJobQueueOptions, 'log'> & {
    /** `REDIS_URL`. Given: BullMQ on that Redis. Absent or empty: the in-process queue. */
    readonly redisUrl?: string | undefined;
    readonly log: Logger;
  };

/**
 * The queue `bundle-promoter` runs on: BullMQ when a Redis URL is configured, otherwise the in-process adapter
 * (`run` without `REDIS_URL`). Options that only concern BullMQ (prefix, locks, stalls) are ignored in process.
 */
export function createJobQueue(options: CreateJobQueueOptions): JobQueue {
  const { redisUrl, ...rest } = options;
  if (redisUrl !== undefined && redisUrl !== '') return new BullmqJobQueue({ ...rest, url: redisUrl });
  return new MemoryJobQueue(memoryOptionsOf(rest));
}

function memoryOptionsOf(options: Omit<CreateJobQueueOptions, 'redisUrl'>): MemoryJobQueueOptions {
  const { log, attempts, backoffMs, retainFinishedMs, retainFinishedCount, stopGraceMs, abortGraceMs } = options;
  return {
    log,
    ...(attempts === undefined ? {} : { attempts }),
    ...(backoffMs === undefined ? {} : { backoffMs }),
    ...(retainFinishedMs === undefined ? {} : { retainFinishedMs }),
    ...(retainFinishedCount === undefined ? {} : { retainFinishedCount }),
    ...(stopGraceMs === undefined ? {} : { stopGraceMs }),
    ...(abortGraceMs === undefined ? {} : { abortGraceMs }),
  };
}
