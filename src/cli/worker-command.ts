import { Metrics } from '../metrics/index.js';
import { createJobQueue } from '../queue/index.js';
import { loadKubeConfig } from '../sources/kube/kube-api.js';
import { KubeConfigReader } from '../sources/kube/kube-config-reader.js';
import { promotionHandler } from '../worker/promotion-handler.js';
import { daemonCommand, daemonOptions, daemonUsage, lockOptions, maybeServe, observersOf, redisUrlOf, registryDefaults, shutdown, untilStopped } from './daemon.js';
import { positiveInt } from './registry-flags.js';

const usage = `Usage: bundle-promoter worker [flags]

Takes promotion jobs from the BullMQ queue at REDIS_URL and carries them out: reads the referenced
Secrets (registry credentials, verification keys), copies, verifies, tags. Scale by adding replicas.
On SIGTERM it stops taking jobs and lets running ones finish for the grace period; what it must abort
is picked up again by another worker, with nothing already copied sent twice and no tag written early.

  --concurrency N                promotions in parallel in this process (default 2)
  --grace-period SECONDS         how long running jobs may finish after SIGTERM (default 20; aborted jobs get 5 s more to stop)
  --job-lock-duration SECONDS    a job whose worker stops renewing its lock for this long is taken up again (default 30)
${daemonUsage}
  KUBECONFIG                     the cluster whose Secrets it reads (default: in-cluster service account)`;

const options = {
  ...daemonOptions,
  concurrency: { type: 'string' },
  'job-lock-duration': { type: 'string' },
  'grace-period': { type: 'string' },
} as const;

export const run = daemonCommand(usage, options, 'worker', async (values, log, io) => {
  const redisUrl = redisUrlOf(io, true);
  const concurrency = positiveInt(values.concurrency, '--concurrency', 2);
  const graceMs = positiveInt(values['grace-period'], '--grace-period', 20) * 1000;
  const kc = loadKubeConfig(io.env);
  const metrics = new Metrics();
  const queue = createJobQueue({ ...lockOptions(values['job-lock-duration']), redisUrl, log });
  const handler = promotionHandler({ reader: new KubeConfigReader(kc), log, registryOptions: registryDefaults(values, metrics), observer: observersOf(metrics).promotion });
  const worker = queue.work(handler, { concurrency });
  metrics.setActiveJobs(() => worker.active);
  metrics.setQueueCounts(() => queue.counts());
  const server = await maybeServe(values, {
    metrics, log,
    ready: async () => {
      const checks = { redis: await queue.healthy() };
      return { ready: checks.redis, checks };
    },
  });
  log.info({ concurrency }, 'worker started');
  await untilStopped(io);
  await shutdown(log, [
    ['worker', () => worker.stop(graceMs)],
    ['queue', () => queue.close()],
    ['http', server ? () => server.stop() : undefined],
  ]);
  return 0;
});
