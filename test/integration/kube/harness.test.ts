import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeTestsSkipped, startKubeApiServer, type KubeTestEnv, type KubectlResult } from '../../support/kube-apiserver.js';

const CONFIG_MAP = `apiVersion: v1
kind: ConfigMap
metadata: { name: harness-probe, namespace: default }
data: { greeting: hello }
`;

const SECRET_READER = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: secret-reader, namespace: rbac-test }
rules:
- { apiGroups: [""], resources: [secrets], verbs: [list] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: reader-reads-secrets, namespace: rbac-test }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader }
subjects:
- { kind: ServiceAccount, name: reader, namespace: rbac-test }
`;

describe('startKubeApiServer', () => {
  describe('when the assets directory lacks kube-apiserver and etcd', () => {
    it('rejects with a message naming the script that builds them and the skip switch', async () => {
      const empty = await mkdtemp(join(tmpdir(), 'bp-no-assets-'));
      try {
        const started = startKubeApiServer({ assetsDir: empty });
        await expect(started).rejects.toThrow(/No executable kube-apiserver and etcd in .*test\/kube\/kube-test-assets\.sh.*BP_SKIP_KUBE=1/s);
      } finally {
        await rm(empty, { recursive: true, force: true });
      }
    });
  });

  describe.skipIf(kubeTestsSkipped())('when kube-apiserver exits during startup', () => {
    it('rejects with the tail of its log', async () => {
      const started = startKubeApiServer({ apiServerArgs: ['--no-such-flag'] });
      await expect(started).rejects.toThrow(/kube-apiserver exited during startup[\s\S]*unknown flag: --no-such-flag/);
    });
  });

  // Missing assets fail here (in beforeAll); only BP_SKIP_KUBE=1 skips (see the module's doc comment).
  describe.skipIf(kubeTestsSkipped())('when started', () => {
    let kube: KubeTestEnv | undefined;
    const env = (): KubeTestEnv => {
      if (kube === undefined) throw new Error('the kube test environment did not start');
      return kube;
    };

    beforeAll(async () => {
      kube = await startKubeApiServer();
    }, 150_000); // etcd and kube-apiserver each get 60 s: a loaded 2-core machine needs ~25 s in all

    afterAll(async () => {
      await kube?.stop();
    });

    it('serves loopback HTTPS and kubectl applies and reads back a ConfigMap with the admin kubeconfig', async () => {
      expect(env().server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const applied = await env().kubectl(['apply', '-f', '-'], CONFIG_MAP);
      expect(applied, applied.stderr).toMatchObject({ code: 0 });
      expect(applied.stdout).toContain('configmap/harness-probe created');
      expect(await greeting(env())).toBe('hello');
    });

    it('refuses a ServiceAccount to list secrets until a Role and RoleBinding grant it, and only in that namespace', async () => {
      const sa = await env().serviceAccountKubeconfig('rbac-test', 'reader');
      const denied = await env().kubectl(['--kubeconfig', sa, 'get', 'secrets', '-n', 'rbac-test']);
      expect(denied.code).not.toBe(0);
      // Names the ServiceAccount: the token authenticated it (an unknown token would be 401, anonymous another user).
      expect(denied.stderr).toContain('Forbidden');
      expect(denied.stderr).toContain('User "system:serviceaccount:rbac-test:reader" cannot list resource "secrets"');

      const granted = await env().kubectl(['apply', '-f', '-'], SECRET_READER);
      expect(granted, granted.stderr).toMatchObject({ code: 0 });
      // The RBAC authorizer learns of the binding through its informer: await that, with a deadline.
      const allowed = await until(() => env().kubectl(['--kubeconfig', sa, 'get', 'secrets', '-n', 'rbac-test']), (r) => r.code === 0, 20_000);
      expect(allowed.code, allowed.stderr).toBe(0);

      const elsewhere = await env().kubectl(['--kubeconfig', sa, 'get', 'secrets', '-n', 'default']);
      expect(elsewhere.code).not.toBe(0);
      expect(elsewhere.stderr).toContain('cannot list resource "secrets" in API group "" in the namespace "default"');
    });

    it('when restarted, runs a new kube-apiserver on the same port over the same etcd, and the ConfigMap is still there', async () => {
      const { server, apiServerPid } = env();
      await env().restart();
      expect(env().server).toBe(server);
      expect(env().apiServerPid).not.toBe(apiServerPid);
      expect(await greeting(env())).toBe('hello');
    }, 90_000);

    it('when stopped, closes both ports, removes its directory, and a second stop() is a no-op', async () => {
      const apiPort = Number(new URL(env().server).port);
      const etcdPort = Number(new URL(env().etcdUrl).port);
      expect(await connectOutcome(apiPort)).toBe('connected');
      expect(await connectOutcome(etcdPort)).toBe('connected');

      await env().stop();
      expect(await connectOutcome(apiPort)).toBe('ECONNREFUSED');
      expect(await connectOutcome(etcdPort)).toBe('ECONNREFUSED');
      expect(existsSync(env().dir)).toBe(false);
      await expect(env().stop()).resolves.toBeUndefined();
    });
  });
});

async function greeting(kube: KubeTestEnv): Promise<string> {
  const got = await kube.kubectl(['get', 'configmap', 'harness-probe', '-n', 'default', '-o', 'jsonpath={.data.greeting}']);
  expect(got, got.stderr).toMatchObject({ code: 0 });
  return got.stdout;
}

/** Runs `attempt` until `done` holds for its result or `timeoutMs` passes; returns the last result. */
async function until(attempt: () => Promise<KubectlResult>, done: (r: KubectlResult) => boolean, timeoutMs: number): Promise<KubectlResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await attempt();
    if (done(result) || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Opens a TCP connection to 127.0.0.1:port and reports 'connected' or the error code. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}
