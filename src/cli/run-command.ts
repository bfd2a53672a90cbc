import { resolve } from 'node:path';
import { Reconciler } from '../controller/reconciler.js';
import { RegistrySourceInspector } from '../controller/source-inspector.js';
import { Metrics } from '../metrics/index.js';
import { createJobQueue } from '../queue/index.js';
import { DirConfigReader } from '../sources/dir/dir-config-reader.js';
import { DirPromotionStore } from '../sources/dir/dir-promotion-store.js';
import { promotionHandler } from '../worker/promotion-handler.js';
import { daemonCommand, daemonOptions, daemonUsage, lockOptions, maybeServe, observersOf, redisUrlOf, registryDefaults, shutdown, untilStopped } from './daemon.js';
import { UsageError } from './io.js';
import { positiveInt } from './registry-flags.js';

const usage = `Usage: bundle-promoter run --promotions DIR [flags]

Controller and workers in one process, no cluster needed: BundlePromotions are read from the YAML files
in DIR (several documents per file; re-read on change; each validated against the CRD's schema, a bad
file reported and skipped), promoted, and their status written as YAML under --status-dir and served as
JSON at /status. Without REDIS_URL the job queue lives in this process.

  --promotions DIR               the promotion files (*.yaml, *.yml)
  --status-dir DIR               where status files go (default: DIR/.status)
  --secrets-dir DIR              Secrets and ConfigMaps as files: DIR/<name>/<key> (e.g. DIR/prod-registry/.dockerconfigjson)
  --concurrency N                promotions in parallel (default 2)
  --job-lock-duration SECONDS    a job whose worker stops renewing its lock for this long is taken up again (default 30)
${daemonUsage}`;

const options = {
  ...daemonOptions,
  promotions: { type: 'string' },
  'status-dir': { type: 'string' },
  'secrets-dir': { type: 'string' },
  concurrency: { type: 'string' },
  'job-lock-duration': { type: 'string' },
} as const;

export const run = daemonCommand(usage, options, 'run', async (values, log, io) => {
  if (values.promotions === undefined) throw new UsageError('--promotions DIR is required');
  const concurrency = positiveInt(values.concurrency, '--concurrency', 2);
  const metrics = new Metrics();
  const observers = observersOf(metrics);
  const registryOptions = registryDefaults(values, metrics);
  const queue = createJobQueue({ ...lockOptions(values['job-lock-duration']), redisUrl: redisUrlOf(io, false), log });
  const reader = new DirConfigReader(values['secrets-dir'] === undefined ? undefined : resolve(values['secrets-dir']));
  const store = new DirPromotionStore({ dir: resolve(values.promotions), ...(values['status-dir'] ? { statusDir: resolve(values['status-dir']) } : {}), log });
  const reconciler = new Reconciler({
    store, status: store, events: store, queue, inspector: new RegistrySourceInspector({ store, reader, log, registryOptions }), log, observer: observers.reconcile,
  });
  const worker = queue.work(promotionHandler({ reader, log, registryOptions, observer: observers.promotion }), { concurrency });
  metrics.setActiveJobs(() => worker.active);
  metrics.setQueueCounts(() => queue.counts());
  metrics.setLeader(true);
  const server = await maybeServe(values, {
    metrics, log, status: () => store.snapshot(),
    ready: async () => {
      const checks = { promotionsRead: store.synced(), queue: await queue.healthy() };
      return { ready: Object.values(checks).every(Boolean), checks };
    },
  });
  await store.start();
  log.info({ promotions: store.list().length, problems: store.problems().length, statusDir: store.statusDir }, 'run started');
  reconciler.start();

  await untilStopped(io);
  await shutdown(log, [
    ['reconciler', () => reconciler.stop()],
    ['worker', () => worker.stop(25_000)],
    ['store', () => store.stop()],
    ['queue', () => queue.close()],
    ['http', server ? () => server.stop() : undefined],
  ]);
  return 0;
});
