import { silentLogger } from '../../../src/log.js';
import { MemoryJobQueue } from '../../../src/queue/index.js';
import { describeJobQueueContract } from './job-queue-contract.js';

describeJobQueueContract('MemoryJobQueue', async ({ attempts, backoffMs }) =>
  new MemoryJobQueue({ log: silentLogger(), attempts, backoffMs, abortGraceMs: 1000 }),
);
