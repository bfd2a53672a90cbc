import type { Metrics } from '../../../src/metrics/index.js';

/** Every metric bundle-promoter defines (prefix `bundle_promoter_`), as its family name. */
export const ALL_METRICS = [
  'bundle_promoter_promotions_total',
  'bundle_promoter_promotion_duration_seconds',
  'bundle_promoter_promotion_ready',
  'bundle_promoter_promotion_last_success_timestamp_seconds',
  'bundle_promoter_blobs_total',
  'bundle_promoter_bytes_copied_total',
  'bundle_promoter_manifests_total',
  'bundle_promoter_verifications_total',
  'bundle_promoter_registry_requests_total',
  'bundle_promoter_registry_request_duration_seconds',
  'bundle_promoter_registry_throttled_total',
  'bundle_promoter_registry_retries_total',
  'bundle_promoter_reconcile_total',
  'bundle_promoter_reconcile_duration_seconds',
  'bundle_promoter_queue_jobs',
  'bundle_promoter_leader',
  'bundle_promoter_worker_active_jobs',
  'bundle_promoter_metrics_collect_errors_total',
] as const;

export const REF = { namespace: 'team-a', name: 'app-bundle' } as const;
export const FINISHED_AT = new Date('2025-01-02T03:04:05.000Z');
export const TARGET = 'registry.example.com:5000';

/** Calls every recording method once, with values the tests look for. */
export function exerciseEverything(m: Metrics): void {
  m.promotionFinished(REF, 'succeeded', 42, FINISHED_AT);
  m.promotionFinished(REF, 'failed', 7, new Date(FINISHED_AT.getTime() + 60_000));
  m.promotionReady(REF, true);
  m.copied({ registry: TARGET, blobsUploaded: 3, blobsMounted: 2, blobsPresent: 5, bytes: 123_456, manifestsCopied: 4, manifestsPresent: 1 });
  m.verification('source', 'passed');
  m.verification('target', 'failed', 'signature invalid');
  const observer = m.registryObserver();
  observer.requestFinished({ registry: TARGET, method: 'GET', kind: 'GET manifest', status: 200, durationMs: 12 });
  observer.requestFinished({ registry: TARGET, method: 'PUT', kind: 'PUT manifest', status: 429, durationMs: 3 });
  observer.retried({ registry: TARGET, reason: 'throttled' });
  m.reconciled('success', 0.02);
  m.setQueueCounts(async () => ({ waiting: 4, active: 1, delayed: 2, completed: 10, failed: 3 }));
  m.setLeader(true);
  m.setActiveJobs(() => 1);
}
