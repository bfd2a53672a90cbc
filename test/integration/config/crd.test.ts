import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRD_FILE, validatePromotionDocument } from '../../../src/sources/crd-schema.js';
import { kubeTestsSkipped, startKubeApiServer, type KubectlResult, type KubeTestEnv } from '../../support/kube-apiserver.js';
import { kustomize, needsPrometheusOperator, REPO_ROOT, toList } from './render.js';

const CRD_NAME = 'bundlepromotions.bundlepromoter.dev';
const NAMESPACE = 'bundle-promoter-system';
const DIGEST = `sha256:${'c0'.repeat(32)}`;

function expectOk(r: KubectlResult): KubectlResult {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r;
}

/** The apiserver (1.20) names a field without list indices: `spec.verify.authorities.tlog`. */
function serverPath(path: string): string {
  return path.replace(/\[\d+\]/g, '');
}

function promotion(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'bundlepromoter.dev/v1alpha1', kind: 'BundlePromotion', metadata: { name, namespace: 'default' }, spec };
}

const valid = () => ({
  source: { bundle: 'registry.example.com/useful-bundle-dev-repo:1.0.0' },
  target: { repository: 'registry.example.com/useful-bundle-test-repo' },
  verify: { authorities: [{ keys: [{ secretRef: { name: 'bundle-signing-key', key: 'cosign.pub' } }] }] },
});

// The apiserver's own schema validation, not kubectl's client-side check, must refuse these; each names the field,
// and validatePromotionDocument (the `run --promotions DIR` check) names the same field.
const INVALID: readonly [string, Record<string, unknown>, string][] = [
  [
    'a tlog mode outside the enum',
    { ...valid(), verify: { authorities: [{ keys: [{ pem: 'x' }], tlog: 'optional' }] } },
    'spec.verify.authorities[0].tlog',
  ],
  ['no target.repository', { ...valid(), target: { tags: ['v1'] } }, 'spec.target.repository'],
  ['both bundle and fromPromotion', { ...valid(), source: { bundle: 'registry.example.com/a:1', fromPromotion: { name: 'up' } } }, 'spec.source'],
  ['neither bundle nor fromPromotion', { ...valid(), source: {} }, 'spec.source'],
  ['concurrency 0', { ...valid(), copy: { concurrency: 0 } }, 'spec.copy.concurrency'],
  ['concurrency 65', { ...valid(), copy: { concurrency: 65 } }, 'spec.copy.concurrency'],
  ['a bundle without tag or digest', { ...valid(), source: { bundle: 'registry.example.com/useful-bundle-dev-repo' } }, 'spec.source.bundle'],
  ['a bundle with a short digest', { ...valid(), source: { bundle: 'registry.example.com/a@sha256:abc' } }, 'spec.source.bundle'],
  ['a target repository with a tag', { ...valid(), target: { repository: 'registry.example.com/a:1' } }, 'spec.target.repository'],
  ['a key with both secretRef and pem', { ...valid(), verify: { authorities: [{ keys: [{ pem: 'x', secretRef: { name: 'k', key: 'cosign.pub' } }] }] } }, 'spec.verify.authorities[0].keys[0]'],
  ['an interval that is no Go duration', { ...valid(), interval: '5 minutes' }, 'spec.interval'],
  ['historyLimit 101', { ...valid(), historyLimit: 101 }, 'spec.historyLimit'],
  ['threshold 0', { ...valid(), verify: { ...valid().verify, threshold: 0 } }, 'spec.verify.threshold'],
  ['an unknown copy.include kind', { ...valid(), copy: { include: ['sig'] } }, 'spec.copy.include[0]'],
  ['a boolean annotation value', { ...valid(), verify: { ...valid().verify, annotations: { 'e2e-tests-passed': true } } }, 'spec.verify.annotations.e2e-tests-passed'],
];

describe.skipIf(kubeTestsSkipped())('the BundlePromotion CRD on a real kube-apiserver (v1.20)', () => {
  let kube: KubeTestEnv;

  beforeAll(async () => {
    kube = await startKubeApiServer();
    expectOk(await kube.kubectl(['apply', '-f', CRD_FILE]));
    expectOk(await kube.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${CRD_NAME}`]));
  }, 180_000);

  afterAll(async () => {
    await kube?.stop();
  });

  describe('when the CRD is applied', () => {
    it('is Established with a structural schema (no NonStructuralSchema condition)', async () => {
      const crd = JSON.parse(expectOk(await kube.kubectl(['get', 'crd', CRD_NAME, '-o', 'json'])).stdout) as {
        status: { conditions: { type: string; status: string }[] };
      };
      const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
      expect(conditions).toMatchObject({ Established: 'True', NamesAccepted: 'True' });
      expect(conditions['NonStructuralSchema']).toBeUndefined();
    });
  });

  describe('when the samples are applied', () => {
    it('accepts them, and the server fills the same defaults as validatePromotionDocument', async () => {
      expectOk(await kube.kubectl(['apply', '-k', `${REPO_ROOT}config/samples`]));
      const samples = (await kustomize('config/samples')).filter((m) => m.kind === 'BundlePromotion');
      const stored = JSON.parse(expectOk(await kube.kubectl(['get', 'bundlepromotions', '-n', 'delivery', '-o', 'json'])).stdout) as {
        items: { metadata: { name: string }; spec: unknown }[];
      };
      expect(stored.items.map((i) => i.metadata.name).sort()).toEqual(samples.map((s) => s.metadata.name).sort());
      for (const [index, sample] of samples.entries()) {
        const local = validatePromotionDocument(sample, { file: 'config/samples', index });
        if (!local.ok) throw new Error(local.errors.join('\n'));
        expect(stored.items.find((i) => i.metadata.name === sample.metadata.name)?.spec).toEqual(local.spec);
      }
    });

    it('lists them by short name and category with the printer columns', async () => {
      const table = expectOk(await kube.kubectl(['get', 'bpromo', '-n', 'delivery'])).stdout;
      expect(table.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'SOURCE', 'UPSTREAM', 'TARGET', 'READY', 'PHASE', 'AGE']);
      expect(table).toMatch(/\nuseful-bundle-prod\s+useful-bundle-test\s+registry\.example\.com\/useful-bundle-prod-repo\s/);
      expect(table).toMatch(/\nuseful-bundle-test\s+registry\.example\.com\/useful-bundle-dev-repo:1\.0\.0\s+registry\.example\.com\/useful-bundle-test-repo\s/);
      const wide = expectOk(await kube.kubectl(['get', 'promotions', '-n', 'delivery', '-o', 'wide'])).stdout;
      expect(wide.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'SOURCE', 'UPSTREAM', 'TARGET', 'READY', 'REASON', 'DIGEST', 'PHASE', 'AGE']);
    });
  });

  describe.each(INVALID)('when a promotion has %s', (what, spec, field) => {
    it(`is rejected by the apiserver naming ${field}, and by validatePromotionDocument at the same field`, async () => {
      const name = `invalid-${what.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`.slice(0, 60).replace(/-$/, '');
      const doc = promotion(name, spec);
      // --validate=false: the server's schema validation is under test, not kubectl's client-side check.
      const r = await kube.kubectl(['create', '--validate=false', '-f', '-'], JSON.stringify(doc));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('is invalid');
      expect(r.stderr).toContain(serverPath(field));
      const local = validatePromotionDocument(doc, { file: 'test.yaml', index: 0 });
      expect(local.ok ? [] : local.errors.map((e) => e.split(': ')[1])).toContain(field);
    });
  });

  describe('when a field is unknown', () => {
    it('is pruned by the apiserver (which is why promotion files treat it as an error)', async () => {
      const doc = promotion('unknown-field', { ...valid(), verfy: { authorities: [] } });
      expectOk(await kube.kubectl(['create', '--validate=false', '-f', '-'], JSON.stringify(doc)));
      const stored = JSON.parse(expectOk(await kube.kubectl(['get', 'bpromo', 'unknown-field', '-o', 'json'])).stdout) as { spec: Record<string, unknown> };
      expect(stored.spec['verfy']).toBeUndefined();
      expect(validatePromotionDocument(doc, { file: 'f.yaml', index: 0 }).ok).toBe(false);
    });

    it("is caught by kubectl's client-side validation (from the published OpenAPI), when it is on", async () => {
      const doc = promotion('unknown-field-validated', { ...valid(), verfy: { authorities: [] } });
      const r = await kube.kubectl(['create', '-f', '-'], JSON.stringify(doc));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('unknown field "verfy"');
    });
  });

  describe('when status is written through the status subresource', () => {
    const status = {
      observedGeneration: 1,
      phase: 'Succeeded',
      sourceDigest: DIGEST,
      promotedDigest: DIGEST,
      promotedTags: ['1.0.0'],
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Promoted', message: 'promoted', lastTransitionTime: '2026-12-02T01:00:00Z', observedGeneration: 1 },
        { type: 'Copied', status: 'True', reason: 'Copied', message: 'copied 7 artifacts', lastTransitionTime: '2026-12-02T01:00:00Z', observedGeneration: 1 },
      ],
      lastPromotion: {
        digest: DIGEST,
        source: `registry.example.com/useful-bundle-dev-repo@${DIGEST}`,
        target: 'registry.example.com/useful-bundle-test-repo',
        tags: ['1.0.0'],
        generation: 1,
        jobId: 'j1',
        result: 'Succeeded',
        startedAt: '2026-12-02T00:59:00Z',
        finishedAt: '2026-12-02T01:00:00Z',
        counts: { images: 3, artifacts: 7, blobsUploaded: 10, blobsMounted: 0, blobsPresent: 2, bytes: 1234, registryRequests: 40 },
      },
    };

    it('accepts a status of PromotionStatus shape and shows it in the printer columns', async () => {
      expectOk(await kube.kubectl(['apply', '-k', `${REPO_ROOT}config/samples`]));
      const patch = JSON.stringify({ status });
      expectOk(await kube.kubectl(['patch', 'bpromo', 'useful-bundle-test', '-n', 'delivery', '--subresource=status', '--type=merge', '-p', patch]));
      const wide = expectOk(await kube.kubectl(['get', 'bpromo', 'useful-bundle-test', '-n', 'delivery', '-o', 'wide'])).stdout;
      expect(wide).toMatch(new RegExp(`\\nuseful-bundle-test\\s+\\S+\\s+\\S+\\s+True\\s+Promoted\\s+${DIGEST}\\s+Succeeded\\s`));
    });

    it.each([
      ['an unknown phase', { phase: 'Done' }, 'status.phase'],
      ['a condition without lastTransitionTime', { conditions: [{ type: 'Ready', status: 'True', reason: 'Promoted', message: 'promoted' }] }, 'status.conditions[0].lastTransitionTime'],
      ['a condition reason that is no CamelCase word', { conditions: [{ ...status.conditions[0], reason: 'not promoted' }] }, 'status.conditions[0].reason'],
    ])('rejects %s', async (_, bad, field) => {
      const r = await kube.kubectl(['patch', 'bpromo', 'useful-bundle-test', '-n', 'delivery', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: bad })]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(serverPath(field));
    });
  });

  describe('when config/default is applied', () => {
    it('passes a server-side dry run, except the prometheus-operator kinds this server lacks', async () => {
      const all = await kustomize('config/default');
      const manifests = all.filter((m) => !needsPrometheusOperator(m));
      expect(all.length - manifests.length).toBeGreaterThan(0); // ServiceMonitor and PrometheusRule were filtered out
      // A dry run creates nothing, so the namespace the rest lives in must exist for real.
      expectOk(await kube.kubectl(['apply', '-f', '-'], toList(manifests.filter((m) => m.kind === 'Namespace'))));
      const r = expectOk(await kube.kubectl(['apply', '--dry-run=server', '-f', '-'], toList(manifests)));
      expect(r.stdout.trim().split('\n')).toHaveLength(manifests.length);
      expect(r.stdout).toContain('deployment.apps/bundle-promoter-controller created (server dry run)');
    });

    it('lets config/redis pass the same dry run', async () => {
      const manifests = (await kustomize('config/redis')).filter((m) => !needsPrometheusOperator(m));
      expectOk(await kube.kubectl(['apply', '-f', '-'], toList(manifests.filter((m) => m.kind === 'Namespace'))));
      const r = expectOk(await kube.kubectl(['apply', '--dry-run=server', '-f', '-'], toList(manifests)));
      expect(r.stdout).toContain('deployment.apps/redis created (server dry run)');
    });
  });

  describe('when the controller and worker act under their RBAC', () => {
    let controller: string;
    let worker: string;
    beforeAll(async () => {
      const manifests = (await kustomize('config/default')).filter((m) => !needsPrometheusOperator(m));
      expectOk(await kube.kubectl(['apply', '-f', '-'], toList(manifests)));
      expectOk(await kube.kubectl(['apply', '-k', `${REPO_ROOT}config/samples`]));
      controller = await kube.serviceAccountKubeconfig(NAMESPACE, 'bundle-promoter-controller');
      worker = await kube.serviceAccountKubeconfig(NAMESPACE, 'bundle-promoter-worker');
    });

    const can = async (kubeconfig: string, args: readonly string[]): Promise<string> =>
      (await kube.kubectl(['--kubeconfig', kubeconfig, 'auth', 'can-i', ...args])).stdout.trim();

    it('the controller reads promotions everywhere and writes only their status', async () => {
      expect(await can(controller, ['list', 'bundlepromotions.bundlepromoter.dev', '--all-namespaces'])).toBe('yes');
      expect(await can(controller, ['watch', 'bundlepromotions.bundlepromoter.dev', '--all-namespaces'])).toBe('yes');
      expectOk(
        await kube.kubectl(['--kubeconfig', controller, 'patch', 'bpromo', 'useful-bundle-test', '-n', 'delivery', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Queued"}}']),
      );
      const specPatch = await kube.kubectl(['--kubeconfig', controller, 'patch', 'bpromo', 'useful-bundle-test', '-n', 'delivery', '--type=merge', '-p', '{"spec":{"suspend":true}}']);
      expect(specPatch.code).not.toBe(0);
      expect(specPatch.stderr).toContain('forbidden');
      expect(await can(controller, ['delete', 'bundlepromotions.bundlepromoter.dev', '-n', 'delivery'])).toBe('no');
    });

    it('the controller records Events, gets (never lists) Secrets, and holds a Lease only in its namespace', async () => {
      expect(await can(controller, ['create', 'events', '-n', 'delivery'])).toBe('yes');
      expect(await can(controller, ['patch', 'events.events.k8s.io', '-n', 'delivery'])).toBe('yes');
      expect(await can(controller, ['get', 'secrets', '-n', 'delivery'])).toBe('yes');
      expect(await can(controller, ['list', 'secrets', '-n', 'delivery'])).toBe('no');
      expect(await can(controller, ['create', 'leases.coordination.k8s.io', '-n', NAMESPACE])).toBe('yes');
      expect(await can(controller, ['update', 'leases.coordination.k8s.io', '-n', NAMESPACE])).toBe('yes');
      expect(await can(controller, ['create', 'leases.coordination.k8s.io', '-n', 'delivery'])).toBe('no');
      expect(await can(controller, ['create', 'pods', '-n', NAMESPACE])).toBe('no');
    });

    it('the worker reads the Secrets and ConfigMaps it is pointed at and writes nothing', async () => {
      expect(await can(worker, ['get', 'secrets', '-n', 'delivery'])).toBe('yes');
      expect(await can(worker, ['get', 'configmaps', '-n', 'delivery'])).toBe('yes');
      expect(await can(worker, ['list', 'secrets', '-n', 'delivery'])).toBe('no');
      expect(await can(worker, ['get', 'bundlepromotions.bundlepromoter.dev', '-n', 'delivery'])).toBe('no');
      expect(await can(worker, ['patch', 'bundlepromotions.bundlepromoter.dev', '--subresource=status', '-n', 'delivery'])).toBe('no');
      expect(await can(worker, ['create', 'events', '-n', 'delivery'])).toBe('no');
      const r = await kube.kubectl(['--kubeconfig', worker, 'get', 'bpromo', '-n', 'delivery']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('forbidden');
    });
  });
});
