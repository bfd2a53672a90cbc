import { LeaderElector } from '../controller/leader-election.js';
import { Reconciler } from '../controller/reconciler.js';
import { RegistrySourceInspector } from '../controller/source-inspector.js';
import { Metrics } from '../metrics/index.js';
import { createJobQueue } from '../queue/index.js';
import { loadKubeConfig } from '../sources/kube/kube-api.js';
import { KubeConfigReader } from '../sources/kube/kube-config-reader.js';
import { KubeEventRecorder, KubePromotionStore, KubeStatusWriter } from '../sources/kube/kube-promotion-store.js';
import { daemonCommand, daemonOptions, daemonUsage, identity, maybeServe, observersOf, redisUrlOf, registryDefaults, shutdown, untilStopped } from './daemon.js';
import { UsageError } from './io.js';
import { positiveInt } from './registry-flags.js';

const usage = `Usage: bundle-promoter controller [flags]

Watches BundlePromotions on the Kubernetes API, resolves their sources, enqueues promotion jobs in the
BullMQ queue at REDIS_URL, and writes status and Events. Replicas elect a leader with a Lease; only the
leader reconciles, standbys serve health and metrics and take over within the lease duration.

  --namespace NS                 watch only NS (default: every namespace; or $WATCH_NAMESPACE)
  --leader-election-namespace NS where the Lease lives (default: $POD_NAMESPACE, else 'default')
  --no-leader-election           reconcile without a Lease (one replica only)
  --lease-duration SECONDS       a silent leader is replaced after this long (default 15)
  --concurrency N                promotions reconciled in parallel (default 4)
${daemonUsage}
  KUBECONFIG                     the cluster (default: ~/.kube/config, else the in-cluster service account)`;

const options = {
  ...daemonOptions,
  namespace: { type: 'string' },
  'leader-election-namespace': { type: 'string' },
  'no-leader-election': { type: 'boolean' },
  'lease-duration': { type: 'string' },
  concurrency: { type: 'string' },
} as const;

export const run = daemonCommand(usage, options, 'controller', async (values, log, io) => {
  const redisUrl = redisUrlOf(io, true);
  const concurrency = positiveInt(values.concurrency, '--concurrency', 4);
  const leaseSeconds = positiveInt(values['lease-duration'], '--lease-duration', 15);
  if (leaseSeconds < 3) throw new UsageError('--lease-duration must be at least 3 seconds');
  const kc = loadKubeConfig(io.env);
  const metrics = new Metrics();
  const observers = observersOf(metrics);
  const queue = createJobQueue({ redisUrl, log });
  metrics.setQueueCounts(() => queue.counts());
  const namespace = values.namespace ?? io.env['WATCH_NAMESPACE'];
  const store = new KubePromotionStore(kc, { ...(namespace ? { namespace } : {}), log });
  const reader = new KubeConfigReader(kc);
  const reconciler = new Reconciler({
    store, status: new KubeStatusWriter(kc), events: new KubeEventRecorder(kc, { component: 'bundle-promoter', instance: identity(io) }),
    queue, inspector: new RegistrySourceInspector({ store, reader, log, registryOptions: registryDefaults(values, metrics) }), log, observer: observers.reconcile,
  }, { concurrency });

  const elector = values['no-leader-election'] ? undefined : new LeaderElector(kc, {
    namespace: values['leader-election-namespace'] ?? io.env['POD_NAMESPACE'] ?? 'default',
    identity: identity(io),
    leaseDurationMs: leaseSeconds * 1000,
    renewDeadlineMs: Math.round(leaseSeconds * 1000 * 2 / 3),
    retryPeriodMs: Math.max(500, Math.round(leaseSeconds * 1000 / 7)),
    log,
    onStartedLeading: () => {
      metrics.setLeader(true);
      reconciler.start();
    },
    onStoppedLeading: async () => {
      // Back to standby: stop writing at once (another replica may lead now), keep campaigning. Nothing is
      // lost: a new term starts from the informer's cache and the jobs, as a fresh process would.
      metrics.setLeader(false);
      await reconciler.stop();
    },
  });
  metrics.setLeader(false);

  const server = await maybeServe(values, {
    metrics, log,
    ready: async () => {
      const checks = { informerSynced: store.synced(), redis: await queue.healthy(), leaderKnown: elector === undefined || elector.known };
      return { ready: Object.values(checks).every(Boolean), checks };
    },
  });
  await store.start();
  log.info({ namespace: namespace ?? '(all)', identity: identity(io) }, 'controller started');
  if (elector) elector.start();
  else {
    metrics.setLeader(true);
    reconciler.start();
  }
  await untilStopped(io);
  await shutdown(log, [
    ['leader election', elector ? () => elector.stop() : undefined],
    ['reconciler', () => reconciler.stop()],
    ['informer', () => store.stop()],
    ['queue', () => queue.close()],
    ['http', server ? () => server.stop() : undefined],
  ]);
  return 0;
});
