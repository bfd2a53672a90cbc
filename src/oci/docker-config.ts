import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PromoteError } from '../errors.js';
import { registryKey, type Credential, type Keychain } from './keychain.js';

/** The parts of a Docker `config.json` that hold credentials. */
export interface DockerConfig {
  readonly auths: Readonly<Record<string, DockerAuthEntry>>;
  readonly credHelpers: Readonly<Record<string, string>>;
  readonly credsStore?: string;
}

export interface DockerAuthEntry {
  readonly auth?: string;
  readonly username?: string;
  readonly password?: string;
  readonly identitytoken?: string;
  readonly registrytoken?: string;
}

export interface DockerConfigKeychainOptions {
  /** The config file. @defaultValue `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` */
  path?: string;
  /** Environment for the credential helpers (and `DOCKER_CONFIG`). @defaultValue `process.env` */
  env?: NodeJS.ProcessEnv;
  /** How long a credential helper may take. @defaultValue 30_000 */
  helperTimeoutMs?: number;
  /** An already parsed config (from a Secret); `path` is then only its name in messages. */
  config?: DockerConfig;
}

const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';

export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
}

/** Reads a Docker config file; a missing file is `undefined`, a malformed one INVALID_CONFIG naming it. */
export async function readDockerConfig(path: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PromoteError('INVALID_CONFIG', `cannot read docker config ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseDockerConfig(text, path);
}

/** Parses the text of a Docker config (a file, or a `kubernetes.io/dockerconfigjson` Secret); `source` names it in errors. */
export function parseDockerConfig(text: string, source: string): DockerConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PromoteError('INVALID_CONFIG', `docker config ${source} is not valid JSON`, { cause: e });
  }
  if (typeof json !== 'object' || json === null) throw new PromoteError('INVALID_CONFIG', `docker config ${source} is not a JSON object`);
  const o = json as Record<string, unknown>;
  const auths = isRecord(o['auths']) ? (o['auths'] as Record<string, DockerAuthEntry>) : {};
  const credHelpers = isRecord(o['credHelpers']) ? (o['credHelpers'] as Record<string, string>) : {};
  for (const [key, helper] of Object.entries(credHelpers)) {
    if (typeof helper !== 'string') throw new PromoteError('INVALID_CONFIG', `docker config ${source}: credHelpers["${key}"] must be a string`);
  }
  const credsStore = typeof o['credsStore'] === 'string' && o['credsStore'] !== '' ? o['credsStore'] : undefined;
  return { auths, credHelpers, ...(credsStore !== undefined && { credsStore }) };
}

/**
 * Credentials the way `docker login` left them: `credHelpers` for the host, else `credsStore`, else the
 * inline `auths` entry. Keys match with or without `https://` and path, and Docker Hub's aliases.
 */
export class DockerConfigKeychain implements Keychain {
  readonly #path: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #timeoutMs: number;
  #config: Promise<DockerConfig | undefined> | undefined;
  readonly #fixed: boolean;

  constructor(options: DockerConfigKeychainOptions = {}) {
    this.#env = options.env ?? process.env;
    this.#path = options.path ?? defaultDockerConfigPath(this.#env);
    this.#timeoutMs = options.helperTimeoutMs ?? 30_000;
    if (options.config !== undefined) this.#config = Promise.resolve(options.config);
    this.#fixed = options.config !== undefined;
  }

  /** The config file is read again on the next `resolve` (`docker login` may have rewritten it). */
  forget(_registry: string): void {
    if (!this.#fixed) this.#config = undefined;
  }

  async resolve(registry: string): Promise<Credential | undefined> {
    this.#config ??= readDockerConfig(this.#path);
    const config = await this.#config;
    if (config === undefined) return undefined;
    const key = registryKey(registry);

    const helper = findKey(config.credHelpers, key);
    const serverUrl = key === 'index.docker.io' ? DOCKER_HUB_SERVER : (findKey(config.auths, key)?.[0] ?? key);
    if (helper !== undefined) return runCredentialHelper(helper[1], serverUrl, this.#env, this.#timeoutMs);
    if (config.credsStore !== undefined) {
      const stored = await runCredentialHelper(config.credsStore, serverUrl, this.#env, this.#timeoutMs);
      if (stored !== undefined) return stored;
    }
    const entry = findKey(config.auths, key)?.[1];
    return entry === undefined ? undefined : fromAuthEntry(entry, this.#path, key);
  }
}

function isRecord(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function findKey<T>(map: Readonly<Record<string, T>>, key: string): [string, T] | undefined {
  for (const [k, v] of Object.entries(map)) if (registryKey(k) === key) return [k, v];
  return undefined;
}

function fromAuthEntry(entry: DockerAuthEntry, path: string, key: string): Credential | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (entry.registrytoken) return { registryToken: entry.registrytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // The message names the file and the entry, never the decoded value.
    if (colon < 0) throw new PromoteError('INVALID_CONFIG', `docker config ${path}: auths entry for ${key} has an "auth" value that is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

/**
 * Runs `docker-credential-<name> get` with the server URL on stdin (the docker-credential-helpers
 * protocol). "credentials not found" is `undefined`; other failures CREDENTIAL_HELPER_FAILED naming the
 * helper. The helper's output is parsed, never echoed: it holds the secret.
 */
export async function runCredentialHelper(
  name: string,
  serverUrl: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const fail = (why: string, cause?: unknown): PromoteError =>
    new PromoteError('CREDENTIAL_HELPER_FAILED', `credential helper ${program} failed for ${serverUrl}: ${why}`, cause === undefined ? undefined : { cause });

  const { code, stdout, stderr, error } = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }>((resolve) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // a helper that exits without reading stdin must not crash us (EPIPE)
    child.on('error', (e) => resolve({ code: null, stdout: '', stderr: '', error: e }));
    child.on('close', (c) => resolve({ code: c, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(serverUrl);
  });

  if (error !== undefined) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw fail(`${program} was not found on PATH`, error);
    throw fail(error.message, error);
  }
  if (code !== 0) {
    if (/credentials not found/i.test(stdout + stderr)) return undefined;
    // Helpers report errors as one line; a short first line is enough and keeps any output bounded.
    const line = (stderr.trim() || stdout.trim()).split('\n')[0]?.slice(0, 200) ?? '';
    throw fail(code === null ? `timed out or was killed` : `exit code ${code}${line ? `: ${line}` : ''}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw fail('its output is not JSON'); // no cause: the parse error would quote the output
  }
  const { Username: username, Secret: secret } = parsed as { Username?: unknown; Secret?: unknown };
  if (typeof secret !== 'string' || typeof username !== 'string') throw fail('its output lacks Username/Secret');
  // `<token>` is the helpers' convention for an identity (refresh) token.
  return username === '<token>' ? { identityToken: secret } : { username, password: secret };
}
