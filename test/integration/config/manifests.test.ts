import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CRD_FILE, validatePromotionDocument } from '../../../src/sources/crd-schema.js';
import { find, kustomize, type Manifest } from './render.js';

const NAMESPACE = 'bundle-promoter-system';
const IMAGE = 'ghcr.io/bundle-promoter/bundle-promoter:0.1.0';

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, string>> }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
    privileged?: boolean;
  };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  serviceAccountName?: string;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: { name: string; emptyDir?: object }[];
  hostNetwork?: boolean;
  hostPID?: boolean;
}

interface Deployment extends Manifest {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Binding extends Manifest {
  roleRef: { kind: string; name: string };
  subjects: { kind: string; name: string; namespace?: string }[];
}

const deployment = (ms: readonly Manifest[], name: string) => find(ms, 'Deployment', name) as Deployment;
const rulesOf = (m: Manifest) => (m as Manifest & { rules: Rule[] }).rules;

/** Every (apiGroup, resource, verb) a ServiceAccount gets from the rendered Roles and ClusterRoles, `ns` or `*` for cluster-wide. */
function grants(ms: readonly Manifest[], serviceAccount: string): string[] {
  const out: string[] = [];
  for (const b of ms.filter((m) => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding') as Binding[]) {
    if (!b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === serviceAccount && s.namespace === NAMESPACE)) continue;
    const role = find(ms, b.roleRef.kind, b.roleRef.name);
    const scope = b.kind === 'RoleBinding' ? (b.metadata.namespace ?? '?') : '*';
    for (const r of rulesOf(role)) {
      for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) out.push(`${scope} ${g === '' ? 'core' : g}/${res} ${v}`);
    }
  }
  return out.sort();
}

describe('config/default', () => {
  let ms: Manifest[];
  beforeAll(async () => {
    ms = await kustomize('config/default');
  });

  describe('when rendered', () => {
    it('puts every namespaced object into bundle-promoter-system', () => {
      const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);
      const stray = ms.filter((m) => !clusterScoped.has(m.kind) && m.metadata.namespace !== NAMESPACE).map((m) => `${m.kind}/${m.metadata.name}`);
      expect(stray).toEqual([]);
      expect(find(ms, 'Namespace', NAMESPACE)).toBeDefined();
    });

    it('carries the CRD of crds/ unchanged', async () => {
      const crd = find(ms, 'CustomResourceDefinition', 'bundlepromotions.bundlepromoter.dev');
      expect(crd).toEqual(parseYaml(await readFile(CRD_FILE, 'utf8')));
    });

    it('includes the metrics stack of config/prometheus and config/grafana', () => {
      const kinds = new Set(ms.map((m) => m.kind));
      expect(kinds).toContain('ServiceMonitor');
      expect(kinds).toContain('PrometheusRule');
      expect(ms.some((m) => m.kind === 'ConfigMap' && /grafana|dashboard/.test(m.metadata.name))).toBe(true);
    });
  });

  describe.each([
    ['bundle-promoter-controller', 'controller', ['controller', '--listen', ':8080']],
    ['bundle-promoter-worker', 'worker', ['worker', '--concurrency', '4', '--listen', ':8080']],
  ])('the %s Deployment', (name, component, args) => {
    it('runs two replicas of the image with its arguments, as its own ServiceAccount', () => {
      const d = deployment(ms, name);
      expect(d.spec.replicas).toBe(2);
      expect(d.spec.template.spec.serviceAccountName).toBe(name);
      const [c, ...more] = d.spec.template.spec.containers;
      expect(more).toEqual([]);
      expect(c?.image).toBe(IMAGE);
      expect(c?.args).toEqual(args);
    });

    it('selects and labels its pods app.kubernetes.io/name=bundle-promoter, component=' + component, () => {
      const d = deployment(ms, name);
      const labels = { 'app.kubernetes.io/name': 'bundle-promoter', 'app.kubernetes.io/component': component };
      expect(d.spec.selector.matchLabels).toEqual(labels);
      expect(d.spec.template.metadata.labels).toMatchObject(labels);
    });

    it('takes REDIS_URL from the bundle-promoter-redis Secret and its pod name and namespace from the downward API', () => {
      const env = deployment(ms, name).spec.template.spec.containers[0]?.env ?? [];
      expect(env).toContainEqual({ name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'bundle-promoter-redis', key: 'url' } } });
      expect(env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
      expect(env).toContainEqual({ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
      expect(env.filter((e) => e.value !== undefined && /password|token|secret/i.test(e.name))).toEqual([]);
    });

    it('is hardened: non-root, read-only root, no capabilities, no privilege escalation, RuntimeDefault seccomp', () => {
      const pod = deployment(ms, name).spec.template.spec;
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
      expect(pod.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.securityContext?.capabilities?.add).toBeUndefined();
        expect(c.securityContext?.privileged ?? false).toBe(false);
      }
    });

    it('has a writable emptyDir /tmp (the root filesystem is read-only)', () => {
      const pod = deployment(ms, name).spec.template.spec;
      const mount = pod.containers[0]?.volumeMounts?.find((v) => v.mountPath === '/tmp');
      expect(mount).toBeDefined();
      expect(pod.volumes?.find((v) => v.name === mount?.name)?.emptyDir).toBeDefined();
    });

    it('sets requests and limits, and probes /healthz and /readyz on the metrics port', () => {
      const c = deployment(ms, name).spec.template.spec.containers[0];
      expect(Object.keys(c?.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
      expect(Object.keys(c?.resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
      expect(c?.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
      expect(c?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      expect(c?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    });

    it('is reached by a Service with a port named metrics on 8080 that selects exactly its pods', () => {
      const svc = find(ms, 'Service', name) as Manifest & { spec: { selector: Record<string, string>; ports: { name: string; port: number }[] } };
      expect(svc.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'bundle-promoter', 'app.kubernetes.io/component': component });
      expect(svc.spec.selector).toEqual(deployment(ms, name).spec.selector.matchLabels);
      expect(svc.spec.ports).toContainEqual(expect.objectContaining({ name: 'metrics', port: 8080 }));
    });
  });

  describe('RBAC', () => {
    it('uses no wildcard verbs, resources or API groups and no non-resource URLs', () => {
      const roles = ms.filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole');
      expect(roles.length).toBeGreaterThan(0);
      for (const role of roles) {
        for (const r of rulesOf(role)) {
          expect([...r.verbs, ...(r.resources ?? []), ...(r.apiGroups ?? [])]).not.toContain('*');
          expect(r.nonResourceURLs).toBeUndefined();
        }
      }
    });

    it('grants the controller exactly what it uses: read promotions, write their status, Events, its Lease, get Secrets', () => {
      expect(grants(ms, 'bundle-promoter-controller')).toEqual(
        [
          '* bundlepromoter.dev/bundlepromotions get',
          '* bundlepromoter.dev/bundlepromotions list',
          '* bundlepromoter.dev/bundlepromotions watch',
          '* bundlepromoter.dev/bundlepromotions/status get',
          '* bundlepromoter.dev/bundlepromotions/status patch',
          '* bundlepromoter.dev/bundlepromotions/status update',
          '* core/events create',
          '* core/events patch',
          '* core/secrets get',
          '* events.k8s.io/events create',
          '* events.k8s.io/events patch',
          `${NAMESPACE} coordination.k8s.io/leases create`,
          `${NAMESPACE} coordination.k8s.io/leases get`,
          `${NAMESPACE} coordination.k8s.io/leases update`,
        ].sort(),
      );
    });

    it('gives the worker no write verb: get on Secrets and ConfigMaps only', () => {
      const worker = grants(ms, 'bundle-promoter-worker');
      expect(worker).toEqual(['* core/configmaps get', '* core/secrets get']);
      expect(worker.filter((g) => !/ (get|list|watch)$/.test(g))).toEqual([]);
    });

    it('binds roles only to the two ServiceAccounts it creates', () => {
      const accounts = ms.filter((m) => m.kind === 'ServiceAccount').map((m) => m.metadata.name).sort();
      expect(accounts).toEqual(['bundle-promoter-controller', 'bundle-promoter-worker']);
      for (const b of ms.filter((m) => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding') as Binding[]) {
        for (const s of b.subjects) {
          expect(s.kind).toBe('ServiceAccount');
          expect(accounts).toContain(s.name);
          expect(s.namespace).toBe(NAMESPACE);
        }
      }
    });
  });
});

describe('config/redis', () => {
  it('adds a Redis with an append-only file and the Secret pointing at it to config/default', async () => {
    const ms = await kustomize('config/redis');
    const secret = find(ms, 'Secret', 'bundle-promoter-redis') as Manifest & { stringData: Record<string, string> };
    expect(secret.metadata.namespace).toBe(NAMESPACE);
    expect(secret.stringData['url']).toBe('redis://redis.bundle-promoter-system.svc:6379');
    const redis = deployment(ms, 'redis');
    expect(redis.spec.replicas).toBe(1);
    expect(redis.spec.template.spec.containers[0]?.args?.join(' ')).toContain('--appendonly yes');
    expect(redis.spec.template.spec.containers[0]?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const svc = find(ms, 'Service', 'redis') as Manifest & { spec: { selector: Record<string, string> } };
    expect(svc.metadata.namespace).toBe(NAMESPACE);
    expect(svc.spec.selector).toEqual(redis.spec.selector.matchLabels);
    expect(find(ms, 'Deployment', 'bundle-promoter-controller')).toBeDefined();
  });
});

describe('config/samples', () => {
  let ms: Manifest[];
  beforeAll(async () => {
    ms = await kustomize('config/samples');
  });
  const promotions = () => ms.filter((m) => m.kind === 'BundlePromotion');

  it('holds the seed pipeline in namespace delivery', () => {
    expect(promotions().map((p) => p.metadata.name).sort()).toEqual(['useful-bundle-prod', 'useful-bundle-prod-mirror', 'useful-bundle-test']);
    expect(ms.filter((m) => m.kind !== 'Namespace').every((m) => m.metadata.namespace === 'delivery')).toBe(true);
  });

  it('validates every BundlePromotion against the CRD schema', () => {
    for (const [index, p] of promotions().entries()) {
      const result = validatePromotionDocument(p, { file: 'config/samples', index });
      expect(result.ok ? [] : result.errors).toEqual([]);
    }
  });

  it('chains test → prod with the e2e annotation, the signing key Secret and tlog ignore', () => {
    const result = validatePromotionDocument(find(ms, 'BundlePromotion', 'useful-bundle-prod'), { file: 'config/samples', index: 0 });
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.spec.source).toMatchObject({ fromPromotion: { name: 'useful-bundle-test' } });
    expect(result.spec.target.repository).toBe('registry.example.com/useful-bundle-prod-repo');
    expect(result.spec.verify?.annotations).toEqual({ 'e2e-tests-passed': 'True' });
    expect(result.spec.verify?.authorities).toEqual([{ name: 'ci', keys: [{ secretRef: { name: 'bundle-signing-key', key: 'cosign.pub' } }], tlog: 'ignore' }]);
    const test = validatePromotionDocument(find(ms, 'BundlePromotion', 'useful-bundle-test'), { file: 'config/samples', index: 0 });
    expect(test.ok && test.spec.source.bundle).toBe('registry.example.com/useful-bundle-dev-repo:1.0.0');
    expect(test.ok && test.spec.target.repository).toBe('registry.example.com/useful-bundle-test-repo');
  });

  it('references only credentials Secrets and upstream promotions it contains', () => {
    const names = (kind: string) => new Set(ms.filter((m) => m.kind === kind).map((m) => m.metadata.name));
    const secrets = names('Secret');
    const upstreams = names('BundlePromotion');
    for (const p of promotions()) {
      const spec = (p as Manifest & { spec: { source: { fromPromotion?: { name: string }; credentials?: { secretRef: { name: string } } }; target: { credentials?: { secretRef: { name: string } } } } }).spec;
      for (const c of [spec.source.credentials, spec.target.credentials]) if (c !== undefined) expect(secrets).toContain(c.secretRef.name);
      if (spec.source.fromPromotion !== undefined) expect(upstreams).toContain(spec.source.fromPromotion.name);
    }
    for (const s of ms.filter((m) => m.kind === 'Secret') as (Manifest & { type: string; stringData: Record<string, string> })[]) {
      expect(s.type).toBe('kubernetes.io/dockerconfigjson');
      expect(JSON.parse(s.stringData['.dockerconfigjson'] ?? '')).toHaveProperty('auths');
    }
  });
});
