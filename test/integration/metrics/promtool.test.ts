import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { silentLogger } from '../../../src/log.js';
import { Metrics, startHttpServer, type HttpServer } from '../../../src/metrics/index.js';
import { ALL_METRICS, exerciseEverything } from '../../unit/metrics/exercise.js';
import { parseExposition } from '../../unit/metrics/exposition.js';
import { dashboardQueries, familyOf, metricNames, ruleExpressions } from '../../unit/metrics/queries.js';
import { requireProgram, run } from './tools.js';

const CONFIG = fileURLToPath(new URL('../../../config/', import.meta.url));
/** Series the rules read that Prometheus itself makes, not bundle-promoter. */
const PROMETHEUS_SERIES = new Set(['up']);

let server: HttpServer;
let scrape: string;

beforeAll(async () => {
  const metrics = new Metrics();
  exerciseEverything(metrics);
  server = await startHttpServer({ listen: '127.0.0.1:0', metrics, ready: async () => ({ ready: true, checks: {} }), log: silentLogger() });
  const res = await fetch(`${server.url}/metrics`);
  expect(res.status).toBe(200);
  scrape = await res.text();
});

afterAll(async () => {
  await server?.stop();
});

describe('promtool', () => {
  const promtool = (): string => requireProgram('promtool', 'prometheus');

  describe('check metrics, on a real scrape of /metrics after one of everything was recorded', () => {
    it('finds no problem', async () => {
      expect(parseExposition(scrape).some((s) => s.name === 'bundle_promoter_promotions_total')).toBe(true);
      const r = await run(promtool(), ['check', 'metrics'], { input: scrape });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.code).toBe(0);
    });

    it('does report a lint problem when there is one, so the check above means something', async () => {
      const bad = '# HELP foo_total x\n# TYPE foo_total gauge\nfoo_total 1\n';
      const r = await run(promtool(), ['check', 'metrics'], { input: bad });
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain('non-counter metrics should not have "_total" suffix');
    });
  });

  describe('check rules config/prometheus/rules.yaml', () => {
    it('accepts all 9 rules', async () => {
      const r = await run(promtool(), ['check', 'rules', 'rules.yaml'], { cwd: `${CONFIG}prometheus` });
      expect(r.stdout).toContain('SUCCESS: 9 rules found');
      expect(r.code).toBe(0);
    });
  });

  describe('test rules config/prometheus/rules.test.yaml', () => {
    it('passes: every alert fires on its failing series and stays silent on the healthy ones', async () => {
      const r = await run(promtool(), ['test', 'rules', 'rules.test.yaml'], { cwd: `${CONFIG}prometheus`, timeoutMs: 60_000 });
      expect(r.stdout + r.stderr).toContain('SUCCESS');
      expect(r.code).toBe(0);
    });
  });
});

describe('metric names in the alert rules and the dashboard', () => {
  it('all exist in the scraped output', () => {
    const samples = parseExposition(scrape);
    const scraped = new Set(samples.flatMap((s) => [s.name, familyOf(s.name)]));
    const rules = parseYaml(readFileSync(`${CONFIG}prometheus/rules.yaml`, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    const dashboard = JSON.parse(readFileSync(`${CONFIG}grafana/dashboard.json`, 'utf8')) as unknown;
    const used = metricNames([...ruleExpressions(rules), ...dashboardQueries(dashboard)]);
    expect(used.length).toBeGreaterThan(10);
    const missing = used.filter((n) => !PROMETHEUS_SERIES.has(n) && !scraped.has(familyOf(n)));
    expect(missing).toEqual([]);
    // And the other way round: every metric bundle-promoter defines is scraped.
    for (const name of ALL_METRICS) expect(scraped, name).toContain(name);
  });
});

describe('kubectl kustomize', () => {
  const kubectl = (): string => requireProgram('kubectl', 'kubectl');

  it('config/grafana builds the ConfigMap bundle-promoter-dashboard, labelled grafana_dashboard: "1", holding dashboard.json', async () => {
    const r = await run(kubectl(), ['kustomize', `${CONFIG}grafana`]);
    expect(r.stderr).toBe('');
    const cm = parseYaml(r.stdout) as { kind: string; metadata: { name: string; labels: Record<string, string> }; data: Record<string, string> };
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata.name).toBe('bundle-promoter-dashboard');
    expect(cm.metadata.labels['grafana_dashboard']).toBe('1');
    expect(JSON.parse(cm.data['bundle-promoter.json'] ?? '')).toEqual(JSON.parse(readFileSync(`${CONFIG}grafana/dashboard.json`, 'utf8')));
  });

  it('config/prometheus builds the PrometheusRule and the ServiceMonitor', async () => {
    const r = await run(kubectl(), ['kustomize', `${CONFIG}prometheus`]);
    expect(r.stderr).toBe('');
    const kinds = parseAllDocuments(r.stdout).map((d) => (d.toJS() as { kind: string; metadata: { name: string } }));
    expect(kinds.map((k) => `${k.kind}/${k.metadata.name}`).sort()).toEqual(['PrometheusRule/bundle-promoter', 'ServiceMonitor/bundle-promoter']);
  });
});
