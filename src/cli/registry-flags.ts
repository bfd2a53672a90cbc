import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { PromoteError } from '../errors.js';
import {
  DockerConfigKeychain, RegistryClient, chainKeychains, defaultDockerConfigPath, staticKeychain, type Keychain,
} from '../oci/index.js';
import { readAll, UsageError, type CliIo } from './io.js';

/** parseArgs options shared by every command that talks to registries. */
export const registryOptions = {
  'registry-insecure': { type: 'string', multiple: true },
  'registry-ca-cert-path': { type: 'string' },
  'registry-username': { type: 'string' },
  'registry-password-stdin': { type: 'boolean' },
  'registry-connections': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

export const registryUsage = `Registry flags:
  --registry-username U          user for every registry (with --registry-password-stdin or $BUNDLE_PROMOTER_REGISTRY_PASSWORD)
  --registry-password-stdin      read the password from standard input
  --registry-ca-cert-path FILE   trust this CA (PEM) in addition to the system roots
  --registry-insecure HOST       speak plain HTTP to HOST (repeatable)
  --registry-connections N       connections per registry (default 8)
  Other credentials come from the Docker config ($DOCKER_CONFIG/config.json, ~/.docker/config.json), credential helpers included.`;

export interface RegistryFlagValues {
  'registry-insecure'?: string[];
  'registry-ca-cert-path'?: string;
  'registry-username'?: string;
  'registry-password-stdin'?: boolean;
  'registry-connections'?: string;
}

export function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive whole number, got '${value}'`);
  return n;
}

/** Builds the registry client from flags, the Docker config and the environment. The caller closes it. */
export async function createRegistry(values: RegistryFlagValues, io: CliIo, log: Logger): Promise<RegistryClient> {
  const keychains: Keychain[] = [];
  const username = values['registry-username'];
  if (username !== undefined) {
    let password = io.env['BUNDLE_PROMOTER_REGISTRY_PASSWORD'];
    if (values['registry-password-stdin']) password = (await readAll(io.stdin, io.signal)).replace(/\r?\n$/, '');
    if (password === undefined) throw new UsageError('--registry-username needs --registry-password-stdin or $BUNDLE_PROMOTER_REGISTRY_PASSWORD');
    keychains.push(staticKeychain({ username, password }));
  } else if (values['registry-password-stdin']) {
    throw new UsageError('--registry-password-stdin needs --registry-username');
  }
  keychains.push(new DockerConfigKeychain({ path: defaultDockerConfigPath(io.env), env: io.env }));
  const caFile = values['registry-ca-cert-path'];
  if (caFile !== undefined) {
    try {
      await readFile(caFile);
    } catch (err) {
      throw new PromoteError('TLS_CONFIG', `--registry-ca-cert-path ${caFile} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  }
  return new RegistryClient({
    keychain: chainKeychains(...keychains),
    insecure: values['registry-insecure'] ?? [],
    ...(caFile !== undefined ? { caFile } : {}),
    connectionsPerRegistry: positiveInt(values['registry-connections'], '--registry-connections', 8),
    logger: log,
  });
}
