import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import { silentLogger } from '../../../src/log.js';
import { Metrics, startHttpServer, type HttpServer } from '../../../src/metrics/index.js';
import { FINISHED_AT, REF, exerciseEverything } from '../../unit/metrics/exercise.js';
import { dashboardQueries } from '../../unit/metrics/queries.js';
import { freePort, requireProgram, waitFor } from './tools.js';

const CONFIG = fileURLToPath(new URL('../../../config/', import.meta.url));
const OTHER = { namespace: 'team-b', name: 'three-times' };

interface QueryResult {
  status: string;
  error?: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

let metrics: Metrics;
let server: HttpServer;
let prometheus: ChildProcess | undefined;
let prometheusLog = '';
let api = '';
let dir = '';

async function query(expr: string): Promise<QueryResult> {
  const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as QueryResult;
}

beforeAll(async () => {
  const binary = requireProgram('prometheus', 'prometheus');
  metrics = new Metrics();
  exerciseEverything(metrics);
  for (let i = 0; i < 3; i++) metrics.promotionFinished(OTHER, 'succeeded', 90, FINISHED_AT);
  server = await startHttpServer({ listen: '127.0.0.1:0', metrics, ready: async () => ({ ready: true, checks: {} }), log: silentLogger() });

  dir = mkdtempSync(join(tmpdir(), 'bundle-promoter-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [`${CONFIG}prometheus/rules.yaml`],
    scrape_configs: [
      // As the ServiceMonitor does: honour the promotion's own `namespace` label.
      { job_name: 'bundle-promoter', honor_labels: true, scrape_interval: '1s', static_configs: [{ targets: [new URL(server.url).host] }] },
    ],
  };
  writeFileSync(join(dir, 'prometheus.yml'), stringifyYaml(config));
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  prometheus = spawn(binary, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  prometheus.stderr?.setEncoding('utf8').on('data', (c: string) => (prometheusLog = (prometheusLog + c).slice(-8_000)));
  const exited = once(prometheus, 'exit').then(([code]) => {
    throw new Error(`prometheus exited with ${String(code)}:\n${prometheusLog}`);
  });
  exited.catch(() => {}); // raced below; after a clean start its rejection is expected at stop
  await Promise.race([
    exited,
    waitFor('prometheus to be ready', 30_000, async () => ((await fetch(`${api}/-/ready`)).ok ? true : undefined)),
  ]);
}, 60_000);

afterAll(async () => {
  if (prometheus !== undefined && prometheus.exitCode === null && prometheus.signalCode === null) {
    const exit = once(prometheus, 'exit');
    prometheus.kill('SIGTERM');
    await exit;
  }
  await server?.stop();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('a real Prometheus scraping startHttpServer every second', () => {
  it('answers /api/v1/query?query=bundle_promoter_promotions_total with the recorded values', async () => {
    const result = await waitFor('bundle_promoter_promotions_total in Prometheus', 30_000, async () => {
      const r = await query('bundle_promoter_promotions_total');
      return r.status === 'success' && r.data.result.length >= 3 ? r.data.result : undefined;
    });
    const values = Object.fromEntries(result.map((s) => [`${s.metric['namespace']}/${s.metric['name']}/${s.metric['result']}`, s.value[1]]));
    expect(values).toEqual({
      [`${REF.namespace}/${REF.name}/succeeded`]: '1',
      [`${REF.namespace}/${REF.name}/failed`]: '1',
      [`${OTHER.namespace}/${OTHER.name}/succeeded`]: '3',
    });
    expect(result.every((s) => s.metric['job'] === 'bundle-promoter')).toBe(true);
  });

  it('sees a value recorded after it started scraping', async () => {
    metrics.promotionFinished(OTHER, 'succeeded', 90, FINISHED_AT);
    await waitFor('the fourth promotion of team-b/three-times', 30_000, async () => {
      const r = await query(`bundle_promoter_promotions_total{namespace="team-b",name="three-times",result="succeeded"}`);
      return r.data.result[0]?.value[1] === '4' ? true : undefined;
    });
  });

  it('loads the alert rules and evaluates every one of them without error', async () => {
    const rules = await waitFor('every rule evaluated', 30_000, async () => {
      const res = (await (await fetch(`${api}/api/v1/rules`)).json()) as {
        data: { groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[] };
      };
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined;
    });
    expect(rules).toHaveLength(9);
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError ?? r.health}`)).toEqual([]);
  });

  it('runs every dashboard query without error', async () => {
    const exprs = dashboardQueries(JSON.parse(readFileSync(`${CONFIG}grafana/dashboard.json`, 'utf8')) as unknown)
      .filter((e) => !e.startsWith('label_values('))
      .map((e) => e.replaceAll('$__rate_interval', '1m').replaceAll('$registry', '.*'));
    expect(exprs.length).toBeGreaterThan(15);
    for (const expr of exprs) {
      const r = await query(expr);
      expect(r.error, expr).toBeUndefined();
      expect(r.status, expr).toBe('success');
    }
  });
});
