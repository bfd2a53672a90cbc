import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { dashboardQueries, metricNames, ruleExpressions } from './queries.js';

const CONFIG = fileURLToPath(new URL('../../../config/', import.meta.url));
const read = (path: string): string => readFileSync(`${CONFIG}${path}`, 'utf8');
// The models validate untyped input; their constructors' types describe valid input.
const ruleModel = (data: unknown): PrometheusRule => new PrometheusRule(data as ConstructorParameters<typeof PrometheusRule>[0]);
const monitorModel = (data: unknown): ServiceMonitor => new ServiceMonitor(data as ConstructorParameters<typeof ServiceMonitor>[0]);

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

const HEADER = `# GENERATED from rules.yaml by test/unit/metrics/manifests.test.ts; edit rules.yaml and run
#   BUNDLE_PROMOTER_UPDATE_RULES=1 npx vitest run test/unit/metrics/manifests.test.ts
# The PrometheusRule the prometheus-operator loads (alerts documented in docs/metrics.md).
`;

/** The PrometheusRule that wraps rules.yaml's groups: the one thing prometheus-rule.yaml may contain. */
function prometheusRuleFrom(rules: RuleFile): object {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'bundle-promoter', labels: { 'app.kubernetes.io/name': 'bundle-promoter' } },
    spec: { groups: rules.groups },
  };
}

const rules = parseYaml(read('prometheus/rules.yaml')) as RuleFile;
if (process.env['BUNDLE_PROMOTER_UPDATE_RULES'] === '1') {
  writeFileSync(`${CONFIG}prometheus/prometheus-rule.yaml`, HEADER + stringifyYaml(prometheusRuleFrom(rules), { lineWidth: 0 }));
}
const alerts = rules.groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => r.alert !== undefined);

describe('config/prometheus', () => {
  describe('prometheus-rule.yaml', () => {
    it('is rules.yaml wrapped in a PrometheusRule, nothing more or less', () => {
      expect(parseYaml(read('prometheus/prometheus-rule.yaml')), 'run with BUNDLE_PROMOTER_UPDATE_RULES=1 to regenerate').toEqual(prometheusRuleFrom(rules));
    });

    it('passes the prometheus-operator PrometheusRule schema', () => {
      expect(() => ruleModel(parseYaml(read('prometheus/prometheus-rule.yaml'))).validate()).not.toThrow();
    });

    it('fails that schema when a rule is malformed, so the check above means something', () => {
      const broken = structuredClone(prometheusRuleFrom(rules)) as { spec: { groups: { rules: unknown[] }[] } };
      broken.spec.groups[0]?.rules.push({ alert: 'NoExpr', for: 5 });
      expect(() => ruleModel(broken).validate()).toThrow();
    });
  });

  describe('rules.yaml', () => {
    it('defines exactly the documented alerts', () => {
      expect(alerts.map((a) => a.alert)).toEqual([
        'BundlePromotionFailing',
        'BundlePromotionStuck',
        'BundlePromoterTargetVerificationFailures',
        'BundlePromoterRegistryThrottled',
        'BundlePromoterRegistryAuthErrors',
        'BundlePromoterQueueBacklogGrowing',
        'BundlePromoterFailedJobsGrowing',
        'BundlePromoterNoLeader',
        'BundlePromoterNoWorkers',
      ]);
    });

    it('gives every alert a severity, a summary, a description and a runbook link to its README anchor', () => {
      for (const a of alerts) {
        expect(['warning', 'critical'], a.alert).toContain(a.labels?.['severity']);
        expect(a.annotations?.['summary'], a.alert).toMatch(/\S/);
        expect(a.annotations?.['description'], a.alert).toMatch(/\S/);
        expect(a.annotations?.['runbook_url']).toBe(`https://github.com/bundle-promoter/bundle-promoter/blob/main/README.md#runbook-${a.alert.toLowerCase()}`);
      }
    });

    it('has a firing and a silent promtool test for every alert', () => {
      const tests = parseYaml(read('prometheus/rules.test.yaml')) as {
        tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
      };
      const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
      for (const a of alerts) {
        expect(cases.some((c) => c.alertname === a.alert && c.exp_alerts.length > 0), `${a.alert} fires`).toBe(true);
        expect(cases.some((c) => c.alertname === a.alert && c.exp_alerts.length === 0), `${a.alert} stays silent`).toBe(true);
      }
    });

    it('is documented in docs/metrics.md, alert by alert', () => {
      const doc = readFileSync(fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url)), 'utf8');
      for (const a of alerts) expect(doc, a.alert).toContain(`### ${a.alert}`);
    });
  });

  describe('service-monitor.yaml', () => {
    it('passes the prometheus-operator ServiceMonitor schema', () => {
      expect(() => monitorModel(parseYaml(read('prometheus/service-monitor.yaml'))).validate()).not.toThrow();
    });

    it('scrapes /metrics on the port named metrics of services labelled app.kubernetes.io/name: bundle-promoter', () => {
      const sm = parseYaml(read('prometheus/service-monitor.yaml')) as {
        spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string; honorLabels?: boolean }[]; targetLabels: string[] };
      };
      expect(sm.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'bundle-promoter' });
      expect(sm.spec.endpoints).toMatchObject([{ port: 'metrics', path: '/metrics', honorLabels: true }]);
      expect(sm.spec.targetLabels).toContain('app.kubernetes.io/component');
    });
  });

  describe('kustomization.yaml', () => {
    it('lists the PrometheusRule and the ServiceMonitor', () => {
      expect((parseYaml(read('prometheus/kustomization.yaml')) as { resources: string[] }).resources).toEqual(['prometheus-rule.yaml', 'service-monitor.yaml']);
    });
  });
});

describe('config/grafana', () => {
  const dashboard = JSON.parse(read('grafana/dashboard.json')) as {
    uid: string;
    panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { expr: string; refId: string; datasource: { uid: string } }[] }[];
    templating: { list: { name: string }[] };
  };

  it('has unique panel ids, a query in every non-row panel, and reads the selected data source', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.expr, p.title).toMatch(/bundle_promoter_/);
        expect(t.datasource.uid, p.title).toBe('${datasource}');
      }
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'registry']);
  });

  it('shows promotions by state, durations, bytes and requests per registry, queue depth and verification failures', () => {
    const names = new Set(metricNames(dashboardQueries(dashboard)));
    for (const n of [
      'bundle_promoter_promotion_ready',
      'bundle_promoter_promotion_duration_seconds_bucket',
      'bundle_promoter_bytes_copied_total',
      'bundle_promoter_registry_requests_total',
      'bundle_promoter_queue_jobs',
      'bundle_promoter_verifications_total',
    ]) expect(names, n).toContain(n);
  });

  it('is generated into the ConfigMap bundle-promoter-dashboard labelled grafana_dashboard: "1", without a name hash', () => {
    const k = parseYaml(read('grafana/kustomization.yaml')) as {
      configMapGenerator: { name: string; files: string[]; options: { disableNameSuffixHash: boolean; labels: Record<string, string> } }[];
    };
    expect(k.configMapGenerator).toMatchObject([
      { name: 'bundle-promoter-dashboard', files: ['bundle-promoter.json=dashboard.json'], options: { disableNameSuffixHash: true, labels: { grafana_dashboard: '1' } } },
    ]);
  });
});

describe('query parsing (metricNames)', () => {
  it('finds metric names and skips functions, keywords, labels, strings, durations and Grafana variables', () => {
    expect(metricNames([
      'sum by (registry, le) (rate(foo_bucket{registry=~"$registry", code!="x y"}[$__rate_interval])) / on (registry) group_left bar_total offset 5m > 0.1',
      'absent(baz) or max without (pod) (qux) == bool 1 unless on () time() - up',
      'label_values(quux_total, registry)',
    ])).toEqual(['foo_bucket', 'bar_total', 'baz', 'qux', 'up', 'quux_total']);
  });

  it('finds the expressions of every alert', () => {
    expect(ruleExpressions(rules)).toHaveLength(alerts.length);
  });
});
