import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startCommand, type RunningCommand } from '../../support/cli-process.js';
import { eventually } from '../../support/eventually.js';
import { Fixtures, generateSigningKey, randomLayer } from '../../support/fixtures.js';
import { RawClient } from '../../support/raw-client.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { find, parseExposition, valueOf } from '../../unit/metrics/exposition.js';
import { freePort, requireProgram, run as runProgram } from '../metrics/tools.js';

/** Every metric the README documents, with the value a promotion that passed and one that failed verification must leave. */
describe('bundle-promoter run serves real metrics after promotions', () => {
  let reg: TestRegistry;
  let dst: TestRegistry;
  let dir: string;
  let bp: RunningCommand;
  let url: string;
  let text: string;
  let prometheus: ChildProcess | undefined;

  beforeAll(async () => {
    [reg, dst] = await Promise.all([startRegistry(), startRegistry()]);
    const fx = new Fixtures(RawClient.for(reg));
    const image = await fx.pushImage('dev/app', { layers: [await randomLayer(4096, 'metrics')] });
    const bundle = await fx.pushBundle('dev/app', { images: [image.ref], tag: 'v1' });
    const key = generateSigningKey();
    await fx.signLegacy('dev/app', bundle.digest, key);
    dir = await mkdtemp(join(tmpdir(), 'bp-metrics-'));
    const doc = (name: string, annotations: Record<string, string>) => stringify({
      apiVersion: 'bundlepromoter.dev/v1alpha1', kind: 'BundlePromotion', metadata: { name, namespace: 'team-a' },
      spec: {
        source: { bundle: `${reg.host}/dev/app:v1` }, target: { repository: `${dst.host}/prod/${name}` },
        verify: { annotations, authorities: [{ name: 'ci', tlog: 'ignore', keys: [{ pem: key.publicKeyPem }] }] },
      },
    });
    await writeFile(join(dir, 'promotions.yaml'), `${doc('signed', {})}---\n${doc('needs-e2e', { 'e2e-tests-passed': 'True' })}`);
    bp = startCommand(['run', '--promotions', dir, '--listen', '127.0.0.1:0', '--registry-insecure', reg.host, '--registry-insecure', dst.host]);
    url = (await bp.waitForLog('the HTTP server', (l) => typeof l['url'] === 'string'))['url'] as string;
    await eventually('both promotions to finish', async () => {
      const status = (await (await fetch(`${url}/status`)).json()) as { promotions: { status: { phase?: string } }[] };
      return status.promotions.length === 2 && status.promotions.every((p) => p.status.phase === 'Succeeded' || p.status.phase === 'Failed');
    }, { timeoutMs: 60_000 });
    text = await (await fetch(`${url}/metrics`)).text();
  }, 90_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    if (bp) expect(await bp.stop()).toBe(0);
    await Promise.all([reg?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts promotions, readiness, copy, verification, registry, reconcile, queue and role metrics with real values', () => {
    const s = parseExposition(text);
    const signed = { namespace: 'team-a', name: 'signed' };
    const blocked = { namespace: 'team-a', name: 'needs-e2e' };
    expect(valueOf(s, 'bundle_promoter_promotions_total', { ...signed, result: 'succeeded' })).toBe(1);
    expect(valueOf(s, 'bundle_promoter_promotions_total', { ...blocked, result: 'failed' })).toBe(1);
    expect(valueOf(s, 'bundle_promoter_promotion_duration_seconds_count', { result: 'succeeded' })).toBe(1);
    expect(valueOf(s, 'bundle_promoter_promotion_ready', signed)).toBe(1);
    expect(valueOf(s, 'bundle_promoter_promotion_ready', blocked)).toBe(0);
    expect(valueOf(s, 'bundle_promoter_promotion_last_success_timestamp_seconds', signed)).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(valueOf(s, 'bundle_promoter_blobs_total', { action: 'uploaded' })).toBeGreaterThan(0);
    expect(valueOf(s, 'bundle_promoter_bytes_copied_total', { registry: dst.host })).toBeGreaterThan(4096);
    expect(valueOf(s, 'bundle_promoter_manifests_total', { action: 'copied' })).toBeGreaterThan(0);
    expect(valueOf(s, 'bundle_promoter_verifications_total', { stage: 'source', result: 'passed', reason: 'none' })).toBe(1);
    expect(valueOf(s, 'bundle_promoter_verifications_total', { stage: 'target', result: 'passed', reason: 'none' })).toBe(1);
    expect(find(s, 'bundle_promoter_verifications_total', { stage: 'source', result: 'failed' }).reduce((n, x) => n + x.value, 0)).toBe(1);
    expect(find(s, 'bundle_promoter_registry_requests_total', { registry: reg.host, method: 'GET' }).reduce((n, x) => n + x.value, 0)).toBeGreaterThan(0);
    expect(find(s, 'bundle_promoter_registry_request_duration_seconds_count', { registry: reg.host }).length).toBeGreaterThan(0);
    expect(valueOf(s, 'bundle_promoter_registry_throttled_total', { registry: dst.host })).toBe(0);
    expect(find(s, 'bundle_promoter_registry_retries_total', { registry: reg.host }).length).toBeGreaterThan(0);
    expect(valueOf(s, 'bundle_promoter_reconcile_total', { result: 'success' }) + valueOf(s, 'bundle_promoter_reconcile_total', { result: 'requeue' })).toBeGreaterThan(2);
    expect(valueOf(s, 'bundle_promoter_reconcile_duration_seconds_count')).toBeGreaterThan(2);
    expect(valueOf(s, 'bundle_promoter_queue_jobs', { state: 'completed' })).toBe(1);
    expect(valueOf(s, 'bundle_promoter_queue_jobs', { state: 'failed' })).toBe(1);
    expect(valueOf(s, 'bundle_promoter_leader')).toBe(1);
    expect(valueOf(s, 'bundle_promoter_worker_active_jobs')).toBe(0);
    expect(find(s, 'process_cpu_seconds_total').length).toBe(1);
    for (const sample of s.filter((x) => x.name.startsWith('bundle_promoter_'))) {
      expect(Object.values(sample.labels).join(' ')).not.toMatch(/sha256:|v1\b/);
    }
  });

  it('passes promtool check metrics', async () => {
    const promtool = requireProgram('promtool', 'prometheus');
    const r = await runProgram(promtool, ['check', 'metrics'], { input: text });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('is scraped by a real Prometheus, whose API returns the promotion counts', async () => {
    const binary = requireProgram('prometheus', 'prometheus');
    await writeFile(join(dir, 'prometheus.yml'), stringify({
      global: { scrape_interval: '1s' },
      scrape_configs: [{ job_name: 'bundle-promoter', honor_labels: true, static_configs: [{ targets: [new URL(url).host] }] }],
    }));
    const port = await freePort();
    prometheus = spawn(binary, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    const value = await eventually('Prometheus to have scraped the promotions counter', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('sum by (result) (bundle_promoter_promotions_total)')}`);
      const body = (await res.json()) as { data?: { result: { metric: { result: string }; value: [number, string] }[] } };
      const results = body.data?.result ?? [];
      return results.length === 2 ? Object.fromEntries(results.map((r) => [r.metric.result, r.value[1]])) : undefined;
    }, { timeoutMs: 45_000, intervalMs: 250 });
    expect(value).toEqual({ succeeded: '1', failed: '1' });
  }, 60_000);
});
