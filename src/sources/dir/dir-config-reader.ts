import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PromoteError } from '../../errors.js';
import type { ConfigReader } from '../ports.js';

/**
 * Secrets and ConfigMaps as files, laid out the way Kubernetes mounts them: `<dir>/<name>/<key>`, or
 * `<dir>/<namespace>/<name>/<key>` to tell namespaces apart. Without a directory every reference is
 * missing, and promotions fall back to the process's Docker config for credentials.
 */
export class DirConfigReader implements ConfigReader {
  readonly #dir: string | undefined;

  constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  async secret(namespace: string, name: string, key: string): Promise<Buffer> {
    return this.#read('Secret', namespace, name, key);
  }

  async configMap(namespace: string, name: string, key: string): Promise<string> {
    return (await this.#read('ConfigMap', namespace, name, key)).toString('utf8');
  }

  async #read(kind: string, namespace: string, name: string, key: string): Promise<Buffer> {
    if (this.#dir === undefined) throw new PromoteError('SECRET_NOT_FOUND', `${kind} ${namespace}/${name} is referenced but no --secrets-dir was given`);
    if ([name, key, namespace].some((part) => part.includes('/') || part === '..')) throw new PromoteError('SECRET_NOT_FOUND', `${kind} ${namespace}/${name} key ${key}: not a valid name`);
    for (const path of [join(this.#dir, namespace, name, key), join(this.#dir, name, key)]) {
      try {
        return await readFile(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw new PromoteError('SECRET_NOT_FOUND', `${kind} ${namespace}/${name} key ${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code})`, { cause: e });
      }
    }
    throw new PromoteError('SECRET_NOT_FOUND', `${kind} ${namespace}/${name} has no key ${JSON.stringify(key)} (looked for ${join(this.#dir, name, key)})`);
  }
}
