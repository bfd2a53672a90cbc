import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { trustCertificate, type TestRegistry } from './registry.js';

/** Every manifest type we ever store; Distribution 404s OCI content unless `Accept` lists the OCI types. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
] as const;

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

export interface RawClientOptions {
  /** `http://127.0.0.1:<port>` (a {@link TestRegistry.url}); no trailing slash needed. */
  readonly baseUrl: string;
  /** Used for Basic challenges and as Basic credentials at a Bearer realm. Anonymous when omitted. */
  readonly username?: string;
  readonly password?: string;
  /**
   * PEM CA to trust for an HTTPS registry. Global `fetch` takes no per-request CA, so it is added to this
   * process's default trust store (see {@link trustCertificate}).
   */
  readonly caFile?: string;
}

/** A manifest as served: `bytes` exactly as stored. */
export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  /** sha256 of `bytes`. */
  readonly digest: string;
}

/** What a manifest HEAD tells. */
export interface ManifestHead {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/** A registry answer the raw client did not expect. */
export class RawClientError extends Error {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** Response body text (error JSON for Distribution). */
  readonly body: string;
  /** The `Www-Authenticate` header of the answer, if any (e.g. with `error="insufficient_scope"`). */
  readonly challenge: string | undefined;

  constructor(method: string, url: string, status: number, body: string, challenge: string | undefined) {
    super(`${method} ${url} answered ${status}: ${body.slice(0, 300)}`);
    this.name = 'RawClientError';
    this.method = method;
    this.url = url;
    this.status = status;
    this.body = body;
    this.challenge = challenge;
  }
}

/** sha256 digest string (`sha256:<hex>`) of bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * A deliberately small registry client built on global `fetch`, independent of `src/oci`, for fixtures and for
 * assertions about what a registry holds. Handles anonymous access, Basic and the Bearer token flow (challenge →
 * realm → retry); the last working `Authorization` per repository is reused.
 *
 * @example
 * const client = RawClient.for(registry);
 * const digest = await client.pushBlob('app', Buffer.from('hello'));
 */
export class RawClient {
  readonly #base: string;
  readonly #basic: string | undefined;
  readonly #auth = new Map<string, string>();

  constructor(options: RawClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#basic =
      options.username === undefined
        ? undefined
        : `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
    if (options.caFile !== undefined) trustCertificate(readFileSync(options.caFile, 'utf8'));
  }

  /** A client with the registry's URL, credentials and CA. */
  static for(registry: TestRegistry): RawClient {
    return new RawClient({
      baseUrl: registry.url,
      ...(registry.username === undefined ? {} : { username: registry.username }),
      ...(registry.password === undefined ? {} : { password: registry.password }),
      ...(registry.caFile === undefined ? {} : { caFile: registry.caFile }),
    });
  }

  /** `host:port` of the registry, as used in image references. */
  get host(): string {
    return new URL(this.#base).host;
  }

  /** Monolithic upload (POST, then PUT `?digest=`); returns the digest. Uploads even if the blob exists. */
  async pushBlob(repo: string, bytes: Uint8Array): Promise<string> {
    const digest = sha256Digest(bytes);
    const started = await this.#expect('POST', `/v2/${repo}/blobs/uploads/`, repo, [202]);
    const location = started.headers.get('location');
    if (location === null) throw new Error(`POST upload in ${repo} answered without Location`);
    const url = new URL(location, this.#base);
    url.searchParams.set('digest', digest);
    await this.#expect('PUT', url.href, repo, [201], {
      body: bytes,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    return digest;
  }

  /** PUT manifest bytes by tag or digest with `Content-Type: mediaType`; returns the digest the registry reports. */
  async pushManifest(repo: string, ref: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const res = await this.#expect('PUT', `/v2/${repo}/manifests/${ref}`, repo, [201], {
      body: bytes,
      headers: { 'Content-Type': mediaType },
    });
    return res.headers.get('docker-content-digest') ?? sha256Digest(bytes);
  }

  /** GET a manifest with the full Accept list; throws {@link RawClientError} (404 included) on failure. */
  async getManifest(repo: string, ref: string): Promise<FetchedManifest> {
    const found = await this.findManifest(repo, ref);
    if (found === undefined) throw new RawClientError('GET', `${this.#base}/v2/${repo}/manifests/${ref}`, 404, '', undefined);
    return found;
  }

  /** Like {@link getManifest} but `undefined` on 404. Checks the digest when `ref` is one. */
  async findManifest(repo: string, ref: string): Promise<FetchedManifest | undefined> {
    const res = await this.#expect('GET', `/v2/${repo}/manifests/${ref}`, repo, [200, 404], { headers: { Accept: ACCEPT } });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status === 404) return undefined;
    const digest = sha256Digest(bytes);
    if (ref.startsWith('sha256:') && ref !== digest) throw new Error(`manifest ${repo}@${ref} has digest ${digest}`);
    return { bytes, mediaType: contentType(res), digest };
  }

  /** HEAD a manifest; `undefined` on 404. */
  async headManifest(repo: string, ref: string): Promise<ManifestHead | undefined> {
    const res = await this.#expect('HEAD', `/v2/${repo}/manifests/${ref}`, repo, [200, 404], { headers: { Accept: ACCEPT } });
    if (res.status === 404) return undefined;
    return {
      mediaType: contentType(res),
      digest: res.headers.get('docker-content-digest') ?? '',
      size: Number(res.headers.get('content-length') ?? '0'),
    };
  }

  async manifestExists(repo: string, ref: string): Promise<boolean> {
    return (await this.headManifest(repo, ref)) !== undefined;
  }

  /** GET a whole blob; the digest is checked. */
  async getBlob(repo: string, digest: string): Promise<Buffer> {
    const res = await this.#expect('GET', `/v2/${repo}/blobs/${digest}`, repo, [200]);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (sha256Digest(bytes) !== digest) throw new Error(`blob ${repo}@${digest} has digest ${sha256Digest(bytes)}`);
    return bytes;
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    return (await this.#expect('HEAD', `/v2/${repo}/blobs/${digest}`, repo, [200, 404])).status === 200;
  }

  /** Tags of a repository, sorted; `[]` when the repository does not exist. */
  async listTags(repo: string): Promise<string[]> {
    const res = await this.#expect('GET', `/v2/${repo}/tags/list`, repo, [200, 404]);
    if (res.status === 404) {
      await res.body?.cancel();
      return [];
    }
    const body = (await res.json()) as { tags?: string[] | null };
    return [...(body.tags ?? [])].sort();
  }

  /** DELETE a manifest by digest (Distribution refuses deletes by tag). */
  async deleteManifest(repo: string, digest: string): Promise<void> {
    await this.#expect('DELETE', `/v2/${repo}/manifests/${digest}`, repo, [202]);
  }

  /**
   * An authenticated request without status checks, for assertions on raw answers. `pathOrUrl` is `/v2/…` or an
   * absolute URL; `repo` selects the cached credentials.
   */
  async request(method: string, pathOrUrl: string, repo: string, init: RequestBody = {}): Promise<Response> {
    const url = pathOrUrl.startsWith('/') ? `${this.#base}${pathOrUrl}` : pathOrUrl;
    const cached = this.#auth.get(repo);
    const res = await this.#send(method, url, cached, init);
    if (res.status !== 401) return res;
    const challenge = res.headers.get('www-authenticate');
    const authorization = challenge === null ? undefined : await this.#authorize(challenge);
    if (authorization === undefined || (authorization === cached && !authorization.startsWith('Bearer '))) return res;
    await res.body?.cancel();
    this.#auth.set(repo, authorization);
    return this.#send(method, url, authorization, init);
  }

  async #expect(method: string, pathOrUrl: string, repo: string, ok: number[], init: RequestBody = {}): Promise<Response> {
    const res = await this.request(method, pathOrUrl, repo, init);
    if (ok.includes(res.status)) return res;
    const body = await res.text();
    throw new RawClientError(method, res.url || pathOrUrl, res.status, body, res.headers.get('www-authenticate') ?? undefined);
  }

  #send(method: string, url: string, authorization: string | undefined, init: RequestBody): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (authorization !== undefined) headers['Authorization'] = authorization;
    return fetch(url, {
      method,
      headers,
      ...(init.body === undefined ? {} : { body: init.body as Uint8Array<ArrayBuffer> }),
    });
  }

  /** Answers a challenge: Basic with our credentials, or a token from the Bearer realm for the challenged scopes. */
  async #authorize(challenge: string): Promise<string | undefined> {
    const scheme = challenge.slice(0, challenge.indexOf(' ')).toLowerCase();
    if (scheme === 'basic') return this.#basic;
    if (scheme !== 'bearer') return undefined;
    const params = parseChallenge(challenge);
    const realm = params['realm'];
    if (realm === undefined) throw new Error(`Bearer challenge without realm: ${challenge}`);
    const url = new URL(realm);
    if (params['service'] !== undefined) url.searchParams.set('service', params['service']);
    for (const scope of (params['scope'] ?? '').split(' ').filter((s) => s !== '')) url.searchParams.append('scope', scope);
    const res = await fetch(url, { headers: this.#basic === undefined ? {} : { Authorization: this.#basic } });
    if (res.status !== 200) throw new RawClientError('GET', url.href, res.status, await res.text(), undefined);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (token === undefined) throw new Error(`token realm ${realm} answered without a token`);
    return `Bearer ${token}`;
  }
}

/** Optional body and headers of a {@link RawClient.request}. */
export interface RequestBody {
  readonly body?: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
}

/** `Bearer realm="…",service="…",scope="a b"` → `{ realm, service, scope }`. */
export function parseChallenge(header: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const match of header.matchAll(/(\w+)="([^"]*)"/g)) params[(match[1] ?? '').toLowerCase()] = match[2] ?? '';
  return params;
}

function contentType(res: Response): string {
  return (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
}
