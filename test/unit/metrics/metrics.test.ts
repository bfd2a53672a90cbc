import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FAILURE_REASONS } from '../../../src/cosign/index.js';
import { createLogger } from '../../../src/log.js';
import { Metrics, VERIFICATION_REASON_LABELS, statusCodeLabel, verificationReasonLabel, type QueueCounts } from '../../../src/metrics/index.js';
import { ALL_METRICS, FINISHED_AT, REF, TARGET, exerciseEverything } from './exercise.js';
import { find, metricTypes, parseExposition, valueOf, type Sample } from './exposition.js';

async function scrape(m: Metrics): Promise<Sample[]> {
  return parseExposition((await m.render()).body);
}

/** Family name of a sample (histogram and counter suffixes of the text format removed). */
function family(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}

describe('Metrics', () => {
  describe('when every recording method has been called once', () => {
    it('exposes a sample of every metric, each with the expected type', async () => {
      const m = new Metrics({ defaultMetrics: false });
      exerciseEverything(m);
      const { body, contentType } = await m.render();
      expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
      const present = new Set(parseExposition(body).map((s) => family(s.name)));
      for (const name of ALL_METRICS) expect(present, name).toContain(name);
      const types = metricTypes(body);
      expect(Object.fromEntries(ALL_METRICS.map((n) => [n, types.get(n)]))).toEqual({
        bundle_promoter_promotions_total: 'counter',
        bundle_promoter_promotion_duration_seconds: 'histogram',
        bundle_promoter_promotion_ready: 'gauge',
        bundle_promoter_promotion_last_success_timestamp_seconds: 'gauge',
        bundle_promoter_blobs_total: 'counter',
        bundle_promoter_bytes_copied_total: 'counter',
        bundle_promoter_manifests_total: 'counter',
        bundle_promoter_verifications_total: 'counter',
        bundle_promoter_registry_requests_total: 'counter',
        bundle_promoter_registry_request_duration_seconds: 'histogram',
        bundle_promoter_registry_throttled_total: 'counter',
        bundle_promoter_registry_retries_total: 'counter',
        bundle_promoter_reconcile_total: 'counter',
        bundle_promoter_reconcile_duration_seconds: 'histogram',
        bundle_promoter_queue_jobs: 'gauge',
        bundle_promoter_leader: 'gauge',
        bundle_promoter_worker_active_jobs: 'gauge',
        bundle_promoter_metrics_collect_errors_total: 'counter',
      });
      // Nothing else hides under the prefix.
      expect([...present].filter((n) => n.startsWith('bundle_promoter_')).sort()).toEqual([...ALL_METRICS].sort());
    });

    it('records the values it was given', async () => {
      const m = new Metrics({ defaultMetrics: false });
      exerciseEverything(m);
      const s = await scrape(m);
      expect(valueOf(s, 'bundle_promoter_promotions_total', { ...REF, result: 'succeeded' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_promotions_total', { ...REF, result: 'failed' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_promotion_duration_seconds_sum', { result: 'succeeded' })).toBe(42);
      expect(valueOf(s, 'bundle_promoter_promotion_duration_seconds_bucket', { result: 'succeeded', le: '60' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_promotion_duration_seconds_bucket', { result: 'succeeded', le: '30' })).toBe(0);
      expect(valueOf(s, 'bundle_promoter_promotion_ready', REF)).toBe(1);
      expect(valueOf(s, 'bundle_promoter_promotion_last_success_timestamp_seconds', REF)).toBe(FINISHED_AT.getTime() / 1000);
      expect(valueOf(s, 'bundle_promoter_blobs_total', { action: 'uploaded' })).toBe(3);
      expect(valueOf(s, 'bundle_promoter_blobs_total', { action: 'mounted' })).toBe(2);
      expect(valueOf(s, 'bundle_promoter_blobs_total', { action: 'present' })).toBe(5);
      expect(valueOf(s, 'bundle_promoter_bytes_copied_total', { registry: TARGET })).toBe(123_456);
      expect(valueOf(s, 'bundle_promoter_manifests_total', { action: 'copied' })).toBe(4);
      expect(valueOf(s, 'bundle_promoter_manifests_total', { action: 'present' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_verifications_total', { stage: 'source', result: 'passed', reason: 'none' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_verifications_total', { stage: 'target', result: 'failed', reason: 'signature_invalid' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_requests_total', { registry: TARGET, method: 'GET', code: '200' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_requests_total', { registry: TARGET, method: 'PUT', code: '429' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_request_duration_seconds_sum', { registry: TARGET, method: 'GET' })).toBeCloseTo(0.012);
      expect(valueOf(s, 'bundle_promoter_registry_throttled_total', { registry: TARGET })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_retries_total', { registry: TARGET, reason: 'throttled' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_reconcile_total', { result: 'success' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_reconcile_total', { result: 'requeue' })).toBe(0);
      expect(valueOf(s, 'bundle_promoter_reconcile_duration_seconds_count')).toBe(1);
      expect(find(s, 'bundle_promoter_queue_jobs').map((x) => [x.labels['state'], x.value])).toEqual([
        ['waiting', 4], ['active', 1], ['delayed', 2], ['completed', 10], ['failed', 3],
      ]);
      expect(valueOf(s, 'bundle_promoter_leader')).toBe(1);
      expect(valueOf(s, 'bundle_promoter_worker_active_jobs')).toBe(1);
    });
  });

  describe('when a promotion finishes more than once', () => {
    it('keeps the newest success time, even when an older result arrives late', async () => {
      const m = new Metrics({ defaultMetrics: false });
      const later = new Date(FINISHED_AT.getTime() + 3_600_000);
      m.promotionFinished(REF, 'succeeded', 10, later);
      m.promotionFinished(REF, 'succeeded', 10, FINISHED_AT);
      m.promotionLastSucceeded(REF, FINISHED_AT);
      const s = await scrape(m);
      expect(valueOf(s, 'bundle_promoter_promotion_last_success_timestamp_seconds', REF)).toBe(later.getTime() / 1000);
      expect(valueOf(s, 'bundle_promoter_promotions_total', { ...REF, result: 'succeeded' })).toBe(2);
    });

    it('does not move the success time on a failure', async () => {
      const m = new Metrics({ defaultMetrics: false });
      m.promotionFinished(REF, 'failed', 10, FINISHED_AT);
      expect(find(await scrape(m), 'bundle_promoter_promotion_last_success_timestamp_seconds')).toEqual([]);
    });
  });

  describe('when a promotion is deleted', () => {
    it('forgetPromotion drops every series naming it and keeps the others', async () => {
      const m = new Metrics({ defaultMetrics: false });
      const other = { namespace: 'team-b', name: 'other' };
      for (const ref of [REF, other]) {
        m.promotionFinished(ref, 'succeeded', 1, FINISHED_AT);
        m.promotionFinished(ref, 'failed', 1, FINISHED_AT);
        m.promotionReady(ref, false);
      }
      m.forgetPromotion(REF);
      const s = await scrape(m);
      expect(s.filter((x) => x.labels['name'] === REF.name)).toEqual([]);
      expect(s.filter((x) => x.labels['name'] === other.name).map((x) => x.name).sort()).toEqual([
        'bundle_promoter_promotion_last_success_timestamp_seconds',
        'bundle_promoter_promotion_ready',
        'bundle_promoter_promotions_total',
        'bundle_promoter_promotions_total',
      ]);
      // A promotion created again with the same name starts afresh.
      m.promotionFinished(REF, 'succeeded', 1, new Date(0));
      expect(valueOf(await scrape(m), 'bundle_promoter_promotion_last_success_timestamp_seconds', REF)).toBe(0);
    });
  });

  describe('when leadership changes', () => {
    it('exports no leader gauge until the process takes part in the election', async () => {
      const m = new Metrics({ defaultMetrics: false });
      expect((await m.render()).body).not.toContain('bundle_promoter_leader');
      m.setLeader(false);
      expect(valueOf(await scrape(m), 'bundle_promoter_leader')).toBe(0);
    });

    it('drops the per-promotion gauges on losing the lead, so that a standby exports no stale state', async () => {
      const m = new Metrics({ defaultMetrics: false });
      m.setLeader(true);
      m.promotionFinished(REF, 'succeeded', 1, FINISHED_AT);
      m.promotionReady(REF, false);
      m.setLeader(false);
      const s = await scrape(m);
      expect(find(s, 'bundle_promoter_promotion_ready')).toEqual([]);
      expect(find(s, 'bundle_promoter_promotion_last_success_timestamp_seconds')).toEqual([]);
      expect(valueOf(s, 'bundle_promoter_promotions_total', { ...REF, result: 'succeeded' })).toBe(1); // counters stay
      m.setLeader(true);
      m.promotionLastSucceeded(REF, FINISHED_AT); // restored from status by the new leader
      expect(valueOf(await scrape(m), 'bundle_promoter_promotion_last_success_timestamp_seconds', REF)).toBe(FINISHED_AT.getTime() / 1000);
    });
  });

  describe('when the queue callback fails', () => {
    it('still serves the scrape, keeps the last queue values and counts the failure', async () => {
      const lines: string[] = [];
      const log = createLogger({ level: 'warn', destination: { write: (l: string) => void lines.push(l) } });
      const m = new Metrics({ defaultMetrics: false, log });
      let answer: () => Promise<QueueCounts> = async () => ({ waiting: 7, active: 1, delayed: 0, completed: 2, failed: 1 });
      m.setQueueCounts(() => answer());
      expect(valueOf(await scrape(m), 'bundle_promoter_queue_jobs', { state: 'waiting' })).toBe(7);

      answer = () => Promise.reject(new Error('redis is down'));
      m.promotionReady(REF, true);
      const s = await scrape(m);
      expect(valueOf(s, 'bundle_promoter_queue_jobs', { state: 'waiting' })).toBe(7);
      expect(valueOf(s, 'bundle_promoter_promotion_ready', REF)).toBe(1);
      expect(valueOf(s, 'bundle_promoter_metrics_collect_errors_total', { collector: 'queue_jobs' })).toBe(1);
      expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toMatchObject([{ collector: 'queue_jobs', error: 'redis is down', level: 40 }]);
    });

    it('treats a synchronous throw like a rejection', async () => {
      const m = new Metrics({ defaultMetrics: false });
      m.setQueueCounts(() => {
        throw new Error('not connected');
      });
      const s = await scrape(m);
      expect(find(s, 'bundle_promoter_queue_jobs')).toEqual([]);
      expect(valueOf(s, 'bundle_promoter_metrics_collect_errors_total', { collector: 'queue_jobs' })).toBe(1);
    });

    it('gives up on a callback that never answers after collectTimeoutMs', async () => {
      const m = new Metrics({ defaultMetrics: false, collectTimeoutMs: 50 });
      m.setQueueCounts(() => new Promise<QueueCounts>(() => {}));
      const started = performance.now();
      const s = await scrape(m);
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(valueOf(s, 'bundle_promoter_metrics_collect_errors_total', { collector: 'queue_jobs' })).toBe(1);
    });

    it('skips states whose count is missing or not a number', async () => {
      const m = new Metrics({ defaultMetrics: false });
      m.setQueueCounts(async () => ({ waiting: 3, active: Number.NaN, failed: -1 }) as unknown as QueueCounts);
      expect(find(await scrape(m), 'bundle_promoter_queue_jobs').map((x) => x.labels['state'])).toEqual(['waiting']);
    });
  });

  describe('when the active-jobs callback throws', () => {
    it('keeps the last value and counts the failure', async () => {
      const m = new Metrics({ defaultMetrics: false });
      let n = 3;
      m.setActiveJobs(() => {
        if (n < 0) throw new Error('worker closed');
        return n;
      });
      expect(valueOf(await scrape(m), 'bundle_promoter_worker_active_jobs')).toBe(3);
      n = -1;
      const s = await scrape(m);
      expect(valueOf(s, 'bundle_promoter_worker_active_jobs')).toBe(3);
      expect(valueOf(s, 'bundle_promoter_metrics_collect_errors_total', { collector: 'worker_active_jobs' })).toBe(1);
    });

    it('exports no worker gauge in a process that runs no worker', async () => {
      expect((await new Metrics({ defaultMetrics: false }).render()).body).not.toContain('bundle_promoter_worker_active_jobs');
    });
  });

  describe('label values', () => {
    it('maps every cosign failure reason to a snake_case label, and anything else to other', () => {
      for (const reason of FAILURE_REASONS) expect(verificationReasonLabel('failed', reason)).toBe(reason.replaceAll(' ', '_'));
      expect(verificationReasonLabel('failed', `digest sha256:${'a'.repeat(64)} differs`)).toBe('other');
      expect(verificationReasonLabel('failed', 'toString')).toBe('other');
      expect(verificationReasonLabel('failed', undefined)).toBe('other');
      expect(verificationReasonLabel('passed', 'signature invalid')).toBe('none');
      expect(VERIFICATION_REASON_LABELS).toEqual(['none', ...FAILURE_REASONS.map((r) => r.replaceAll(' ', '_')), 'other']);
    });

    it('records a network failure as code="error" and an unknown method as OTHER', async () => {
      expect(statusCodeLabel(0)).toBe('error');
      expect(statusCodeLabel(503)).toBe('503');
      const m = new Metrics({ defaultMetrics: false });
      const o = m.registryObserver();
      o.requestFinished({ registry: 'r', method: 'GET', kind: 'GET blob', status: 0, durationMs: 5 });
      o.requestFinished({ registry: 'r', method: 'PROPFIND', kind: 'x', status: 200, durationMs: 5 });
      const s = await scrape(m);
      expect(valueOf(s, 'bundle_promoter_registry_requests_total', { code: 'error', method: 'GET' })).toBe(1);
      expect(valueOf(s, 'bundle_promoter_registry_requests_total', { code: '200', method: 'OTHER' })).toBe(1);
    });

    it('never carries digests, tags, job ids or kinds: every label value comes from a bounded set', async () => {
      const m = new Metrics({ defaultMetrics: false });
      exerciseEverything(m);
      for (let i = 0; i < 50; i++) {
        m.verification('target', 'failed', `digest mismatch for sha256:${i.toString(16).padStart(64, '0')}`);
        m.registryObserver().requestFinished({ registry: TARGET, method: 'GET', kind: `GET blob sha256:${i}`, status: 200, durationMs: 1 });
      }
      const bounded: Record<string, ReadonlySet<string>> = {
        namespace: new Set([REF.namespace]),
        name: new Set([REF.name]),
        registry: new Set([TARGET]),
        result: new Set(['succeeded', 'failed', 'passed', 'success', 'error', 'requeue']),
        action: new Set(['uploaded', 'mounted', 'present', 'copied']),
        stage: new Set(['source', 'target']),
        reason: new Set([...VERIFICATION_REASON_LABELS, 'throttled', 'server-error', 'network', 'timeout', 'auth-refresh']),
        method: new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OTHER']),
        code: new Set(['200', '429', 'error']),
        state: new Set(['waiting', 'active', 'delayed', 'completed', 'failed']),
        collector: new Set(['queue_jobs', 'worker_active_jobs']),
      };
      const s = await scrape(m);
      for (const sample of s) {
        for (const [label, value] of Object.entries(sample.labels)) {
          if (label === 'le') continue;
          expect(bounded[label], `label ${label} of ${sample.name}`).toBeDefined();
          expect(bounded[label]?.has(value), `${sample.name}{${label}="${value}"}`).toBe(true);
        }
      }
      expect(valueOf(s, 'bundle_promoter_verifications_total', { stage: 'target', result: 'failed', reason: 'other' })).toBe(50);
    });
  });

  describe('series that alerts take increase() of', () => {
    it('start at 0: verifications for every stage and reason, throttles and retries with a registry\'s first request', async () => {
      const m = new Metrics({ defaultMetrics: false });
      let s = await scrape(m);
      expect(find(s, 'bundle_promoter_verifications_total')).toHaveLength(2 * VERIFICATION_REASON_LABELS.length);
      expect(valueOf(s, 'bundle_promoter_verifications_total', { stage: 'target', result: 'failed', reason: 'digest_mismatch' })).toBe(0);
      expect(valueOf(s, 'bundle_promoter_verifications_total', { stage: 'source', result: 'passed', reason: 'none' })).toBe(0);
      expect(find(s, 'bundle_promoter_registry_retries_total')).toEqual([]);

      m.registryObserver().requestFinished({ registry: TARGET, method: 'HEAD', kind: 'HEAD blob', status: 200, durationMs: 1 });
      s = await scrape(m);
      expect(valueOf(s, 'bundle_promoter_registry_throttled_total', { registry: TARGET })).toBe(0);
      expect(find(s, 'bundle_promoter_registry_retries_total', { registry: TARGET }).map((x) => [x.labels['reason'], x.value])).toEqual([
        ['throttled', 0], ['server-error', 0], ['network', 0], ['timeout', 0], ['auth-refresh', 0],
      ]);
    });
  });

  describe('registries', () => {
    it('keeps each instance on its own registry, off the global one', async () => {
      const a = new Metrics();
      const b = new Metrics();
      a.reconciled('error', 1);
      expect(valueOf(await scrape(a), 'bundle_promoter_reconcile_total', { result: 'error' })).toBe(1);
      expect(valueOf(await scrape(b), 'bundle_promoter_reconcile_total', { result: 'error' })).toBe(0);
      expect(await globalRegistry.metrics()).not.toContain('bundle_promoter_');
    });

    it('adds Node default metrics under their standard names unless turned off', async () => {
      const withDefaults = (await new Metrics().render()).body;
      expect(withDefaults).toContain('\nprocess_cpu_user_seconds_total ');
      expect(withDefaults).toMatch(/^nodejs_heap_size_used_bytes /m);
      expect(withDefaults).not.toContain('bundle_promoter_process_');
      // Gauges named _total fail promtool's lint; the per-type gauges stay.
      expect(withDefaults).not.toContain('nodejs_active_handles_total');
      expect(withDefaults).toContain('# TYPE nodejs_active_handles gauge');
      expect((await new Metrics({ defaultMetrics: false }).render()).body).not.toContain('process_cpu');
    });
  });
});
