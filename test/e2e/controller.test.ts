import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand as cli, spawnCommand, type SpawnedCommand } from '../support/cli-process.js';
import { eventually } from '../support/eventually.js';
import { Fixtures, randomLayer } from '../support/fixtures.js';
import { startKubeApiServer, type KubeTestEnv } from '../support/kube-apiserver.js';
import { RawClient } from '../support/raw-client.js';
import { startRedisServer, type TestRedisServer } from '../support/redis-server.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const NS = 'delivery';
const SYSTEM = 'bundle-promoter-system';
const GROUP = { group: 'bundlepromoter.dev', version: 'v1alpha1', plural: 'bundlepromotions' };
const PASSWORD = 'e2e-cosign-password';
const REGISTRY_SECRET_PASSWORD = 'never-in-redis-4f1c2b';

interface Condition { type: string; status: string; reason: string; message: string }
interface Status {
  phase?: string; observedGeneration?: number; promotedDigest?: string; jobId?: string; conditions?: Condition[];
  lastPromotion?: { digest: string; generation: number; result: string; counts?: Record<string, number> }; history?: unknown[];
}

function promotionYaml(name: string, spec: string, annotations = ''): string {
  return `apiVersion: bundlepromoter.dev/v1alpha1\nkind: BundlePromotion\nmetadata:\n  name: ${name}\n  namespace: ${NS}\n${annotations}spec:\n${spec}`;
}

describe('controller and workers on a real kube-apiserver, Redis and registry', () => {
  let kube: KubeTestEnv;
  let redis: TestRedisServer;
  let reg: TestRegistry;
  let dir: string;
  let api: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let controllerKubeconfig: string;
  let workerKubeconfig: string;
  const controllers: SpawnedCommand[] = [];
  let worker: SpawnedCommand;
  let bundleDigest: string;
  const insecure = () => ['--registry-insecure', reg.host];

  const startController = (name: string) => {
    const c = spawnCommand(['controller', '--listen', '127.0.0.1:0', ...insecure(), '--leader-election-namespace', SYSTEM, '--lease-duration', '4'], {
      KUBECONFIG: controllerKubeconfig, REDIS_URL: redis.url, POD_NAME: name,
    });
    controllers.push(c);
    return c;
  };
  const startWorker = () => spawnCommand(['worker', '--concurrency', '2', '--listen', '127.0.0.1:0', ...insecure()], { KUBECONFIG: workerKubeconfig, REDIS_URL: redis.url });
  const apply = async (yaml: string) => {
    const r = await kube.kubectl(['apply', '-f', '-'], yaml);
    expect(r.code, r.stderr).toBe(0);
  };
  const statusOf = async (name: string): Promise<Status> => ((await api.getNamespacedCustomObject({ ...GROUP, namespace: NS, name })) as { status?: Status }).status ?? {};
  const ready = (s: Status) => s.conditions?.find((c) => c.type === 'Ready');
  const waitFor = (name: string, what: string, test: (s: Status) => boolean, timeoutMs = 60_000) =>
    eventually(`${name}: ${what}`, async () => {
      const s = await statusOf(name);
      return test(s) ? s : undefined;
    }, { timeoutMs, intervalMs: 100 });
  const eventsOf = async (name: string) => (await core.listNamespacedEvent({ namespace: NS })).items.filter((e) => e.involvedObject.name === name);

  beforeAll(async () => {
    [kube, redis, reg] = await Promise.all([startKubeApiServer(), startRedisServer(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'bp-e2e-'));
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    api = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);

    const crd = await kube.kubectl(['apply', '-f', 'crds/bundlepromoter.dev_bundlepromotions.yaml']);
    expect(crd.code, crd.stderr).toBe(0);
    expect((await kube.kubectl(['wait', '--for=condition=Established', 'crd/bundlepromotions.bundlepromoter.dev', '--timeout=60s'])).code).toBe(0);
    for (const ns of [SYSTEM, NS]) await kube.kubectl(['create', 'namespace', ns]);
    const rbac = await kube.kubectl(['apply', '-n', SYSTEM, '-k', 'config/rbac']);
    expect(rbac.code, rbac.stderr).toBe(0);
    controllerKubeconfig = await kube.serviceAccountKubeconfig(SYSTEM, 'bundle-promoter-controller');
    workerKubeconfig = await kube.serviceAccountKubeconfig(SYSTEM, 'bundle-promoter-worker');

    // The seed: a signed useful-bundle (without the e2e annotation yet) referencing useful-server-image.
    expect((await cli(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], { COSIGN_PASSWORD: PASSWORD })).code).toBe(0);
    const fx = new Fixtures(RawClient.for(reg));
    const image = await fx.pushImage('useful-server-image', { layers: [await randomLayer(64 * 1024, 'e2e-server')] });
    bundleDigest = (await fx.pushBundle('useful-bundle-dev-repo', { images: [image.ref], tag: '1.0.0' })).digest;
    expect((await cli(['sign', '--key', join(dir, 'cosign.key'), ...insecure(), `${reg.host}/useful-bundle-dev-repo:1.0.0`], { COSIGN_PASSWORD: PASSWORD })).code).toBe(0);
    const pub = await readFile(join(dir, 'cosign.pub'), 'utf8');
    await apply(`apiVersion: v1\nkind: Secret\nmetadata: {name: bundle-signing-key, namespace: ${NS}}\nstringData:\n  cosign.pub: |\n${pub.trim().split('\n').map((l) => `    ${l}`).join('\n')}\n`);
    const dockerConfig = JSON.stringify({ auths: { 'registry.unused.example': { auth: Buffer.from(`ci:${REGISTRY_SECRET_PASSWORD}`).toString('base64') } } });
    await apply(`apiVersion: v1\nkind: Secret\nmetadata: {name: registry-credentials, namespace: ${NS}}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '${dockerConfig}'\n`);

    startController('controller-a');
    await controllers[0]!.waitForLog('controller-a to lead', (l) => l['msg'] === 'became leader');
    worker = startWorker();
    await worker.waitForLog('the worker to start', (l) => l['msg'] === 'worker started');
  }, 180_000);

  afterAll(async () => {
    // The processes' own logs, for whoever reads a failure.
    const { writeFile } = await import('node:fs/promises');
    await Promise.all([...controllers.map((c, i) => [`controller-${i}`, c] as const), ['worker', worker] as const].map(([name, c]) =>
      c ? writeFile(join(tmpdir(), `bp-e2e-${name}.log`), c.logs.map((l) => JSON.stringify(l)).join('\n')) : undefined));
    await Promise.all([...controllers, ...(worker ? [worker] : [])].map((c) => c.stop()));
    await Promise.all([kube?.stop(), redis?.stop(), reg?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('when the seed pipeline is applied, test promotes at once and prod waits for e2e-tests-passed, then promotes after signing and a requestedAt bump', async () => {
    const credentials = '    credentials: {secretRef: {name: registry-credentials}}\n';
    const applied = Date.now();
    await apply([
      promotionYaml('useful-bundle-test', `  source:\n    bundle: ${reg.host}/useful-bundle-dev-repo:1.0.0\n${credentials}  target:\n    repository: ${reg.host}/useful-bundle-test-repo\n${credentials}`),
      promotionYaml('useful-bundle-prod', [
        '  source:', '    fromPromotion: {name: useful-bundle-test}', credentials.trimEnd(),
        '  target:', `    repository: ${reg.host}/useful-bundle-prod-repo`, credentials.trimEnd(),
        '  interval: 1h',
        '  verify:', '    annotations: {e2e-tests-passed: "True"}',
        '    authorities: [{name: ci, tlog: ignore, keys: [{secretRef: {name: bundle-signing-key, key: cosign.pub}}]}]', '',
      ].join('\n')),
    ].join('---\n'));
    await controllers[0]!.waitForLog('the test job', (l) => l['msg'] === 'job enqueued' && l['promotion'] === `${NS}/useful-bundle-test`);
    const enqueuedMs = Date.now() - applied;

    const test = await waitFor('useful-bundle-test', 'Ready=True', (s) => ready(s)?.status === 'True');
    const readyMs = Date.now() - applied;
    expect(test).toMatchObject({ phase: 'Succeeded', observedGeneration: 1, promotedDigest: bundleDigest });
    expect(test.lastPromotion).toMatchObject({ digest: bundleDigest, result: 'Succeeded', generation: 1 });
    expect(test.lastPromotion?.counts?.['artifacts']).toBeGreaterThan(0);
    expect(test.conditions?.map((c) => `${c.type}=${c.status}`).sort()).toEqual(['Copied=True', 'Ready=True', 'SourceResolved=True', 'SourceVerified=True', 'TargetVerified=True']);
    expect((await RawClient.for(reg).headManifest('useful-bundle-test-repo', '1.0.0'))?.digest).toBe(bundleDigest);
    console.log(`e2e timing: kubectl apply → job enqueued ${enqueuedMs} ms, → Ready=True ${readyMs} ms`);

    const prod = await waitFor('useful-bundle-prod', 'VerificationFailed', (s) => ready(s)?.reason === 'VerificationFailed');
    expect(ready(prod)).toMatchObject({ status: 'False' });
    expect(ready(prod)?.message).toMatch(/missing or incorrect annotation/);
    expect(await RawClient.for(reg).listTags('useful-bundle-prod-repo')).not.toContain('1.0.0');
    await eventually('a VerificationFailed event on prod', async () => (await eventsOf('useful-bundle-prod')).some((e) => e.reason === 'VerificationFailed' && e.type === 'Warning'));

    // The e2e tests pass: sign the test copy with the annotation, then ask for a re-run.
    expect((await cli(['sign', '--key', join(dir, 'cosign.key'), '-a', 'e2e-tests-passed=True', ...insecure(), `${reg.host}/useful-bundle-test-repo:1.0.0`], { COSIGN_PASSWORD: PASSWORD })).code).toBe(0);
    const annotate = await kube.kubectl(['annotate', '-n', NS, 'bundlepromotion/useful-bundle-prod', 'bundlepromoter.dev/requestedAt=after-e2e', '--overwrite']);
    expect(annotate.code, annotate.stderr).toBe(0);
    const promoted = await waitFor('useful-bundle-prod', 'Ready=True', (s) => ready(s)?.status === 'True');
    expect(promoted.promotedDigest).toBe(bundleDigest);
    expect((await RawClient.for(reg).headManifest('useful-bundle-prod-repo', '1.0.0'))?.digest).toBe(bundleDigest);
    expect(promoted.history?.length).toBe(2);
    const verify = await cli(['verify', '--key', join(dir, 'cosign.pub'), '-a', 'e2e-tests-passed=True', '--tlog', 'ignore', ...insecure(), `${reg.host}/useful-bundle-prod-repo:1.0.0`]);
    expect(verify.code, verify.stderr).toBe(0);
    // test was not touched by any of this.
    expect((await statusOf('useful-bundle-test')).history?.length).toBe(1);
    const events = (await eventsOf('useful-bundle-test')).map((e) => e.reason);
    expect(events).toEqual(expect.arrayContaining(['PromotionQueued', 'PromotionSucceeded']));

    const table = await kube.kubectl(['get', 'bpromo', '-n', NS]);
    expect(table.stdout).toMatch(/useful-bundle-prod\s+.*True/);
  }, 120_000);

  it('when a promotion names a missing Secret or a source that is not a bundle, it is Ready=False with a named reason and an Event, and nothing is tagged', async () => {
    const fx = new Fixtures(RawClient.for(reg));
    await fx.pushImage('plain-image', { layers: [await randomLayer(1024, 'not-a-bundle')], tag: 'v1' });
    await apply([
      promotionYaml('missing-secret', `  source:\n    bundle: ${reg.host}/useful-bundle-dev-repo:1.0.0\n    credentials: {secretRef: {name: nope}}\n  target:\n    repository: ${reg.host}/missing-secret\n`),
      promotionYaml('not-a-bundle', `  source:\n    bundle: ${reg.host}/plain-image:v1\n  target:\n    repository: ${reg.host}/not-a-bundle\n`),
    ].join('---\n'));
    const missing = await waitFor('missing-secret', 'SecretNotFound', (s) => ready(s)?.reason === 'SecretNotFound');
    expect(ready(missing)?.message).toMatch(/Secret delivery\/nope/);
    const notBundle = await waitFor('not-a-bundle', 'NotABundle', (s) => ready(s)?.reason === 'NotABundle');
    expect(notBundle.phase).toBe('Failed');
    await eventually('Warning events for both', async () =>
      (await eventsOf('missing-secret')).some((e) => e.reason === 'SecretNotFound') && (await eventsOf('not-a-bundle')).some((e) => e.reason === 'NotABundle'));
    expect(await RawClient.for(reg).listTags('missing-secret')).toEqual([]);
    expect(await RawClient.for(reg).listTags('not-a-bundle')).not.toContain('v1');
    // Both processes are still running: no crash loop.
    expect(controllers[0]!.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
  }, 90_000);

  it('when a spec has an unknown field or a bad enum, the API server (or kubectl) refuses it', async () => {
    const bad = await kube.kubectl(['apply', '-f', '-'], promotionYaml('bad-tlog', `  source:\n    bundle: ${reg.host}/a:1\n  target:\n    repository: ${reg.host}/b\n  verify:\n    authorities: [{keys: [{pem: x}], tlog: sometimes}]\n`));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/tlog/);
    const unknown = await kube.kubectl(['apply', '-f', '-'], promotionYaml('bad-key', `  source:\n    bundle: ${reg.host}/a:1\n  target:\n    repository: ${reg.host}/b\n  verify:\n    authorities: [{keys: [{pem: x}]}]\n    anotations: {e2e-tests-passed: "True"}\n`));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/anotations/);
  });

  it('when a promotion is deleted while its job waits, the job is dropped and nothing is written', async () => {
    await worker.stop();
    await apply(promotionYaml('deleted-early', `  source:\n    bundle: ${reg.host}/useful-bundle-dev-repo:1.0.0\n  target:\n    repository: ${reg.host}/deleted-early\n`));
    const queued = await waitFor('deleted-early', 'Queued', (s) => s.phase === 'Queued' && s.jobId !== undefined);
    expect((await kube.kubectl(['delete', '-n', NS, 'bundlepromotion/deleted-early'])).code).toBe(0);
    const client = new Redis(redis.url);
    try {
      await eventually('the job to leave Redis', async () => (await client.keys(`*${queued.jobId!}*`)).length === 0);
    } finally {
      client.disconnect();
    }
    worker = startWorker();
    await worker.waitForLog('the worker to start again', (l) => l['msg'] === 'worker started');
    // A promotion applied after it is served, so the worker has looked at the queue: the deleted one never ran.
    await apply(promotionYaml('after-delete', `  source:\n    bundle: ${reg.host}/useful-bundle-dev-repo:1.0.0\n  target:\n    repository: ${reg.host}/after-delete\n`));
    await waitFor('after-delete', 'Ready=True', (s) => ready(s)?.status === 'True');
    expect(await RawClient.for(reg).listTags('deleted-early')).toEqual([]);
  }, 90_000);

  it('when the API server restarts, the watches resume and new promotions are reconciled', async () => {
    await kube.restart();
    await apply(promotionYaml('after-restart', `  source:\n    bundle: ${reg.host}/useful-bundle-dev-repo:1.0.0\n  target:\n    repository: ${reg.host}/after-restart\n`));
    await waitFor('after-restart', 'Ready=True', (s) => ready(s)?.status === 'True', 90_000);
  }, 120_000);

  it('when two controllers run, one leads; when it is killed, the other takes over and reconciles', async () => {
    const b = startController('controller-b');
    await b.waitForLog('controller-b to start', (l) => l['msg'] === 'controller started');
    const coordination = (() => {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kube.kubeconfigPath);
      return kc.makeApiClient(k8s.CoordinationV1Api);
    })();
    const holder = async () => (await coordination.readNamespacedLease({ namespace: SYSTEM, name: 'bundle-promoter-controller' })).spec?.holderIdentity;
    expect(await holder()).toBe('controller-a');
    expect(b.logs.some((l) => l['msg'] === 'became leader')).toBe(false);
    const killedAt = Date.now();
    await controllers[0]!.kill('SIGKILL');
    await b.waitForLog('controller-b to lead', (l) => l['msg'] === 'became leader', 30_000);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(await holder()).toBe('controller-b');
    await apply(promotionYaml('after-failover', `  source:\n    bundle: ${reg.host}/useful-bundle-dev-repo:1.0.0\n  target:\n    repository: ${reg.host}/after-failover\n`));
    await waitFor('after-failover', 'Ready=True', (s) => ready(s)?.status === 'True');
  }, 90_000);

  it('after all of it, Redis holds Secret names but no credential or key material', async () => {
    const dump = await redis.dump();
    expect(dump).toContain('registry-credentials');
    expect(dump).not.toContain(REGISTRY_SECRET_PASSWORD);
    expect(dump).not.toContain(Buffer.from(`ci:${REGISTRY_SECRET_PASSWORD}`).toString('base64'));
    expect(dump).not.toMatch(/BEGIN (PUBLIC|PRIVATE|ENCRYPTED)/);
  });
});
