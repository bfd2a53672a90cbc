import { PromoteError } from '../../errors.js';
import type { ConfigReader } from '../ports.js';
import { k8s, statusOf } from './kube-api.js';

/** Secret and ConfigMap entries read with the process's service account (RBAC: get only). */
export class KubeConfigReader implements ConfigReader {
  readonly #core: k8s.CoreV1Api;

  constructor(kc: k8s.KubeConfig) {
    this.#core = kc.makeApiClient(k8s.CoreV1Api);
  }

  async secret(namespace: string, name: string, key: string): Promise<Buffer> {
    const secret = await this.#read(() => this.#core.readNamespacedSecret({ namespace, name }), 'Secret', namespace, name);
    const value = secret.data?.[key];
    if (value === undefined) throw new PromoteError('SECRET_NOT_FOUND', `Secret ${namespace}/${name} has no key ${JSON.stringify(key)}`);
    return Buffer.from(value, 'base64');
  }

  async configMap(namespace: string, name: string, key: string): Promise<string> {
    const map = await this.#read(() => this.#core.readNamespacedConfigMap({ namespace, name }), 'ConfigMap', namespace, name);
    const value = map.data?.[key];
    if (value === undefined) throw new PromoteError('SECRET_NOT_FOUND', `ConfigMap ${namespace}/${name} has no key ${JSON.stringify(key)}`);
    return value;
  }

  async #read<T>(call: () => Promise<T>, kind: string, namespace: string, name: string): Promise<T> {
    try {
      return await call();
    } catch (e) {
      const status = statusOf(e);
      if (status === 404) throw new PromoteError('SECRET_NOT_FOUND', `${kind} ${namespace}/${name} does not exist`, { cause: e });
      if (status === 403) throw new PromoteError('REGISTRY_DENIED', `not allowed to read ${kind} ${namespace}/${name} (RBAC)`, { cause: e });
      throw new PromoteError('REGISTRY_UNAVAILABLE', `cannot read ${kind} ${namespace}/${name}: ${(e as Error).message}`, { cause: e });
    }
  }
}
