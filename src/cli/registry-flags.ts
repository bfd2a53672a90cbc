import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { PromoteError } from '../errors.js';
import {
  DockerConfigKeychain, RegistryClient, chainKeychains, defaultDockerConfigPath, registryKey, staticKeychain, type Keychain,
} from '../oci/index.js';
import { readAll, UsageError, type CliIo } from './io.js';

/** parseArgs options shared by every command that talks to registries. */
export const registryOptions = {
  'registry-insecure': { type: 'string', multiple: true },
  'registry-ca-cert-path': { type: 'string' },
  'registry-username': { type: 'string', multiple: true },
  'registry-password-stdin': { type: 'boolean' },
  'registry-connections': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

export const registryUsage = `Registry flags:
  --registry-username HOST=USER  user for HOST only (repeatable, one per host); its password comes from
                                 $BUNDLE_PROMOTER_REGISTRY_PASSWORD_<HOST> (HOST upper-cased, every character
                                 other than A-Z and 0-9 as _: ghcr.io → GHCR_IO, 127.0.0.1:5000 → 127_0_0_1_5000)
                                 or from --registry-password-stdin
  --registry-username USER       (legacy) user for every registry, password from --registry-password-stdin
                                 or $BUNDLE_PROMOTER_REGISTRY_PASSWORD; prefer HOST=USER
  --registry-password-stdin      read passwords from standard input: the whole input for a single
                                 --registry-username, else one HOST=PASSWORD line per scoped host
  --registry-ca-cert-path FILE   trust this CA (PEM) in addition to the system roots
  --registry-insecure HOST       speak plain HTTP to HOST (repeatable)
  --registry-connections N       connections per registry (default 8)
  Registries without explicit credentials use the Docker config ($DOCKER_CONFIG/config.json,
  ~/.docker/config.json), credential helpers included.`;

export interface RegistryFlagValues {
  'registry-insecure'?: string[];
  'registry-ca-cert-path'?: string;
  'registry-username'?: string[];
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
  const keychains = await explicitKeychains(values, io, log);
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

/** `ghcr.io` → `GHCR_IO`, `127.0.0.1:5000` → `127_0_0_1_5000`: the suffix of a host's password variable. */
export function passwordEnvSuffix(host: string): string {
  return registryKey(host).toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

const SCOPED = /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d+)?|\[[0-9a-f:]+\](?::\d+)?)=(.+)$/i;

/**
 * Decision (docs/copy.md#explicit-credentials): `--registry-username HOST=USER` scopes explicit credentials
 * to one host each, so that the target's password never reaches the source (or a redirect's) registry; the
 * bare `USER` form still means every registry, for old scripts, with a warning.
 */
async function explicitKeychains(values: RegistryFlagValues, io: CliIo, log: Logger): Promise<Keychain[]> {
  const flags = values['registry-username'] ?? [];
  const fromStdin = values['registry-password-stdin'] === true;
  if (flags.length === 0) {
    if (fromStdin) throw new UsageError('--registry-password-stdin needs --registry-username');
    return [];
  }
  const scoped = new Map<string, string>();
  const bare: string[] = [];
  for (const flag of flags) {
    const m = SCOPED.exec(flag);
    if (m === null) {
      bare.push(flag);
      continue;
    }
    const host = registryKey(m[1] ?? '');
    if (scoped.has(host)) throw new UsageError(`--registry-username names ${host} twice`);
    scoped.set(host, m[2] ?? '');
  }
  if (bare.length > 1) throw new UsageError('--registry-username USER (for every registry) may be given once; scope the others as HOST=USER');

  const stdin = fromStdin ? (await readAll(io.stdin, io.signal)).replace(/\r?\n$/, '') : undefined;
  const stdinPasswords = new Map<string, string>();
  if (stdin !== undefined && flags.length > 1) {
    for (const line of stdin.split(/\r?\n/)) {
      if (line.trim() === '') continue;
      const cut = line.indexOf('=');
      if (cut <= 0) throw new UsageError('--registry-password-stdin with several --registry-username flags reads one HOST=PASSWORD line per host');
      stdinPasswords.set(registryKey(line.slice(0, cut).trim()), line.slice(cut + 1));
    }
  }

  const keychains: Keychain[] = [];
  for (const [host, username] of scoped) {
    const single = flags.length === 1 ? stdin : undefined;
    const password = single ?? stdinPasswords.get(host) ?? io.env[`BUNDLE_PROMOTER_REGISTRY_PASSWORD_${passwordEnvSuffix(host)}`];
    if (password === undefined) {
      throw new UsageError(`--registry-username ${host}=${username} needs a password: $BUNDLE_PROMOTER_REGISTRY_PASSWORD_${passwordEnvSuffix(host)} or --registry-password-stdin`);
    }
    keychains.push(staticKeychain({ username, password }, { hosts: [host] }));
  }
  const username = bare[0];
  if (username !== undefined) {
    const password = (flags.length === 1 ? stdin : stdinPasswords.get('*')) ?? io.env['BUNDLE_PROMOTER_REGISTRY_PASSWORD'];
    if (password === undefined) throw new UsageError('--registry-username needs --registry-password-stdin or $BUNDLE_PROMOTER_REGISTRY_PASSWORD');
    log.warn({}, '--registry-username USER sends these credentials to every registry; scope them with --registry-username HOST=USER');
    keychains.push(staticKeychain({ username, password }));
  }
  return keychains;
}
