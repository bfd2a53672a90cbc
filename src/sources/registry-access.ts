import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import { DockerConfigKeychain, RegistryClient, chainKeychains, parseDockerConfig, type Keychain, type RegistryClientOptions } from '../oci/index.js';
import type { ConfigReader } from './ports.js';
import type { KeySource, PromotionSpec } from './promotion.js';

/** What a registry client for one promotion is built from: Secret names, never their values. */
export interface RegistryAccess {
  readonly namespace: string;
  readonly sourceCredentials?: string | undefined;
  readonly targetCredentials?: string | undefined;
  readonly registry?: PromotionSpec['registry'] | undefined;
}

export const DOCKER_CONFIG_KEY = '.dockerconfigjson';

/** Reads a PEM (or JSON) value from wherever a {@link KeySource} points. */
export async function readKeySource(reader: ConfigReader, namespace: string, source: KeySource, signal?: AbortSignal): Promise<string> {
  if ('pem' in source) return source.pem;
  if ('secretRef' in source) return (await reader.secret(namespace, source.secretRef.name, source.secretRef.key, signal)).toString('utf8');
  return reader.configMap(namespace, source.configMapRef.name, source.configMapRef.key, signal);
}

async function keychainOf(reader: ConfigReader, namespace: string, secret: string, signal?: AbortSignal): Promise<Keychain> {
  const text = (await reader.secret(namespace, secret, DOCKER_CONFIG_KEY, signal)).toString('utf8');
  const source = `Secret ${namespace}/${secret}`;
  return new DockerConfigKeychain({ config: parseDockerConfig(text, source), path: source });
}

/**
 * A registry client with the promotion's credentials: target first (it needs push, and pull for mounts),
 * then source, then the process's own Docker config. The caller closes it with {@link RegistryHandle.close}.
 */
export async function openRegistry(
  access: RegistryAccess,
  deps: { reader: ConfigReader; log: Logger; env?: NodeJS.ProcessEnv; options?: Partial<RegistryClientOptions> },
  signal?: AbortSignal,
): Promise<RegistryHandle> {
  const keychains: Keychain[] = [];
  if (access.targetCredentials) keychains.push(await keychainOf(deps.reader, access.namespace, access.targetCredentials, signal));
  if (access.sourceCredentials) keychains.push(await keychainOf(deps.reader, access.namespace, access.sourceCredentials, signal));
  keychains.push(new DockerConfigKeychain({ env: deps.env ?? process.env }));

  let caDir: string | undefined;
  let caFile: string | undefined;
  if (access.registry?.ca) {
    const pem = await readKeySource(deps.reader, access.namespace, access.registry.ca, signal);
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new PromoteError('TLS_CONFIG', 'spec.registry.ca holds no PEM certificate');
    caDir = await mkdtemp(join(tmpdir(), 'bp-ca-'));
    caFile = join(caDir, 'ca.pem');
    await writeFile(caFile, pem, { mode: 0o600 });
  }
  const client = new RegistryClient({
    ...deps.options,
    keychain: chainKeychains(...keychains),
    insecure: [...(deps.options?.insecure ?? []), ...(access.registry?.insecure ?? [])],
    ...(caFile !== undefined ? { caFile } : {}),
    logger: deps.log,
  });
  return {
    client,
    async close() {
      await client.close();
      if (caDir !== undefined) await rm(caDir, { recursive: true, force: true });
    },
  };
}

export interface RegistryHandle {
  readonly client: RegistryClient;
  close(): Promise<void>;
}
