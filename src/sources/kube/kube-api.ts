import * as k8s from '@kubernetes/client-node';
import { PromoteError } from '../../errors.js';

export { k8s };

/**
 * The kubeconfig the way kubectl finds it ($KUBECONFIG, ~/.kube/config), else the in-cluster service
 * account. client-node's own fallback is http://localhost:8080, which only ever fails (controller-library-notes pitfall 6).
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (env['KUBECONFIG'] === undefined && env['KUBERNETES_SERVICE_HOST'] !== undefined) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (kc.getCurrentCluster() === null) throw new PromoteError('INVALID_CONFIG', 'no Kubernetes cluster configured: set KUBECONFIG or run in a cluster');
  return kc;
}

/** The HTTP status of a client-node failure, or undefined for anything else. */
export function statusOf(e: unknown): number | undefined {
  return e instanceof k8s.ApiException ? e.code : undefined;
}

/** A merge patch: client-node sends JSON Patch by default (controller-library-notes pitfall 1). */
export const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
