import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { PromoteError, isPromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import { BlobTransfer } from './blob-transfer.js';
import { checkDigest, digestOf } from './digest.js';
import { anonymousKeychain, type Keychain } from './keychain.js';
import { parseManifest } from './manifest.js';
import { mergeReferrersIndex } from './wire-format.js';
import { MANIFEST_ACCEPT, MediaTypes, bareMediaType } from './media-types.js';
import { formatReference, formatRepository } from './reference.js';
import { describeErrorBody, distributionErrorCodes, errorForStatus, type RequestSubject } from './registry-errors.js';
import { RegistryTransport, header, pullScope, pushScope, type Call, type RegistryObserver, type Reply, type RequestEvent } from './registry-transport.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy.js';
import type { BlobCopyOutcome, BlobSource, Descriptor, RawManifest, Reference, Registry, Repository, RequestStats } from './types.js';

export type { RegistryObserver, RequestEvent, RequestFinishedEvent, RetryEvent, RetryReason } from './registry-transport.js';

/** Docker's and Podman's per-registry certificate directories. */
export const DEFAULT_CERTS_DIRS: readonly string[] = ['/etc/docker/certs.d', '/etc/containers/certs.d'];

/** Tags asked for per page of a tag listing. */
export const TAG_PAGE_SIZE = 1000;
/** Pages of a tag listing followed at most (a million tags at full pages). */
export const MAX_TAG_PAGES = 1000;
/** Pages of a referrers listing followed at most (each up to 4 MiB: a bound on memory, not a count anyone reaches). */
export const MAX_REFERRER_PAGES = 64;

/** How {@link RegistryClient.listTags} reads refusals. */
export interface ListTagsOptions {
  /** A 401/403 (from the registry or its token server) answers `undefined`, like a 404. @defaultValue false */
  absentIfDenied?: boolean;
}

/** Manifests larger than this are refused (DESIGN.md: bounded everything; the OCI spec suggests 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface RegistryClientOptions {
  /** Where credentials come from. @defaultValue anonymous for every registry */
  keychain?: Keychain;
  /**
   * Registries (`host:port` or `host`) spoken to over plain HTTP. Nothing else is, not even `localhost`.
   * @defaultValue []
   */
  insecure?: readonly string[];
  /** PEM file with extra CA certificates, trusted in addition to Node's defaults. @defaultValue none */
  caFile?: string;
  /**
   * Trust the operating system's CA store (Node's `tls.getCACertificates('system')`) besides Node's bundled
   * roots, so that a corporate CA installed on the host is trusted. @defaultValue true
   */
  systemTrust?: boolean;
  /**
   * Roots of per-registry certificate directories in Docker's layout: `<root>/<host:port>/*.crt` are trusted
   * CAs, `*.cert` + `*.key` a client certificate for mTLS.
   * @defaultValue `['/etc/docker/certs.d', '/etc/containers/certs.d']`
   */
  certsDirs?: readonly string[];
  /**
   * Sockets per registry and direction: reads and writes have separate pools, so that a blob streamed
   * from and to the same registry can never wait on itself. @defaultValue 8
   */
  connectionsPerRegistry?: number;
  /** @defaultValue {@link DEFAULT_RETRY_POLICY} */
  retry?: Partial<RetryPolicy>;
  /**
   * `bodyMs`: the longest gap between chunks; `commitMs`: how long a blob PUT or PATCH may take to answer after
   * its body is sent (the registry hashes and stores the blob first, which takes minutes for large blobs on
   * object storage).
   * @defaultValue `{ connectMs: 10_000, headersMs: 30_000, bodyMs: 60_000, commitMs: 600_000 }`
   */
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number; commitMs?: number };
  /** @defaultValue `bundle-promoter/<package version>` */
  userAgent?: string;
  /** Debug line per request: method, registry, path, status, ms — never headers. @defaultValue no logging */
  logger?: Logger;
  /**
   * Awaited before every request; the place for a request budget shared between workers.
   * @defaultValue none
   */
  onRequest?: (event: RequestEvent, signal?: AbortSignal) => void | Promise<void>;
  /**
   * Told about every request attempt (status, duration) and every retry (why); metrics implement it
   * (`Metrics.registryObserver()`), so that `oci/` depends on no metrics library. @defaultValue none
   */
  observer?: RegistryObserver;
  /** Chunk size for the PATCH fallback of uploads. @defaultValue 8 MiB */
  chunkSize?: number;
  /**
   * Proxies for every registry connection (both pools); `false` for none. `noProxy` is a `NO_PROXY` list
   * (host names, `.domain` suffixes, `host:port`, `*`).
   * @defaultValue from the environment: `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy`, `NO_PROXY`/`no_proxy`
   */
  proxy?: { httpProxy?: string; httpsProxy?: string; noProxy?: string } | false;
}

/** The proxy settings as options or the environment give them (empty strings: none). */
function resolveProxy(proxy: RegistryClientOptions['proxy'], env: NodeJS.ProcessEnv): { httpProxy: string; httpsProxy: string; noProxy: string } {
  if (proxy === false) return { httpProxy: '', httpsProxy: '', noProxy: '' };
  const httpProxy = proxy?.httpProxy ?? env['http_proxy'] ?? env['HTTP_PROXY'] ?? '';
  return {
    httpProxy,
    // As curl and undici: HTTPS_PROXY unset falls back to HTTP_PROXY.
    httpsProxy: proxy?.httpsProxy ?? env['https_proxy'] ?? env['HTTPS_PROXY'] ?? httpProxy,
    noProxy: proxy?.noProxy ?? env['no_proxy'] ?? env['NO_PROXY'] ?? '',
  };
}

/**
 * The registry API: manifests, tags and referrers here; blobs in {@link BlobTransfer}; every HTTP request
 * (auth, retries, limits, stats) through one {@link RegistryTransport}.
 */
export class RegistryClient implements Registry {
  readonly stats: RequestStats;
  readonly #transport: RegistryTransport;
  readonly #blobs: BlobTransfer;
  /** Registries that answered the referrers API with anything but an OCI index: go straight to the tag. */
  readonly #noReferrersApi = new Set<string>();
  /** Registries that answered the referrers API with an OCI index. */
  readonly #referrersApiSeen = new Set<string>();

  constructor(options: RegistryClientOptions = {}) {
    const retry: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#transport = new RegistryTransport({
      keychain: options.keychain ?? anonymousKeychain,
      insecure: options.insecure ?? [],
      caFile: options.caFile,
      certsDirs: options.certsDirs ?? DEFAULT_CERTS_DIRS,
      ...(options.systemTrust !== false && { systemCa: () => tls.getCACertificates('system') }),
      connectionsPerRegistry: options.connectionsPerRegistry ?? 8,
      retry,
      timeouts: { connectMs: 10_000, headersMs: 30_000, bodyMs: 60_000, commitMs: 600_000, ...options.timeouts },
      userAgent: options.userAgent ?? defaultUserAgent(),
      logger: options.logger,
      onRequest: options.onRequest,
      observer: options.observer,
      proxy: resolveProxy(options.proxy, process.env),
    });
    this.#blobs = new BlobTransfer({ transport: this.#transport, retry, chunkSize: options.chunkSize ?? 8 * 1024 * 1024, log: options.logger });
    this.stats = this.#transport.stats;
  }

  // ---------------------------------------------------------------- manifests

  async headManifest(ref: Reference, signal?: AbortSignal): Promise<Descriptor | undefined> {
    const reply = await this.#transport.request(manifestRead('HEAD', ref, [200, 404]), signal);
    if (reply.status === 404) return undefined;
    const digest = header(reply.headers, 'docker-content-digest') ?? ref.digest;
    const mediaType = bareMediaType(header(reply.headers, 'content-type'));
    const size = Number(header(reply.headers, 'content-length'));
    if (digest === undefined || !MANIFEST_ACCEPT.includes(mediaType) || !Number.isSafeInteger(size)) {
      // Registries that omit these on HEAD still serve the manifest; one GET gives all three.
      const raw = await this.getManifest(ref, signal);
      return { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
    }
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new PromoteError('DIGEST_MISMATCH', `HEAD manifest ${formatReference(ref)}: registry reports digest ${digest}`);
    }
    return { mediaType, digest, size };
  }

  async getManifest(ref: Reference, signal?: AbortSignal): Promise<RawManifest> {
    const raw = await this.#fetchManifest(ref, [200], signal);
    if (raw === undefined) throw new PromoteError('MANIFEST_NOT_FOUND', `manifest ${formatReference(ref)} not found`);
    return raw;
  }

  async findManifest(ref: Reference, options: { absentIfDenied?: boolean } = {}, signal?: AbortSignal): Promise<RawManifest | undefined> {
    const denied = options.absentIfDenied === true;
    try {
      return await this.#fetchManifest(ref, denied ? [200, 404, 401, 403] : [200, 404], signal);
    } catch (e) {
      // A token server refusing the scope is the same answer as the registry refusing it (imgpkg treats it as absent).
      if (denied && (isPromoteError(e, 'REGISTRY_UNAUTHORIZED') || isPromoteError(e, 'REGISTRY_DENIED'))) return undefined;
      throw e;
    }
  }

  async putManifest(ref: Reference, manifest: { mediaType: string; bytes: Buffer }, signal?: AbortSignal): Promise<string> {
    const digest = digestOf(manifest.bytes);
    if (manifest.bytes.length > MAX_MANIFEST_BYTES) {
      throw new PromoteError('MANIFEST_TOO_LARGE', `manifest ${formatReference(ref)} is ${manifest.bytes.length} bytes, more than ${MAX_MANIFEST_BYTES}`);
    }
    if (ref.digest !== undefined && ref.digest !== digest) {
      throw new PromoteError('DIGEST_MISMATCH', `manifest for ${formatReference(ref)} hashes to ${digest}`);
    }
    const reply = await this.#transport.request(
      {
        kind: 'PUT manifest',
        method: 'PUT',
        registry: ref.registry,
        url: `/v2/${ref.repository}/manifests/${ref.tag ?? digest}`,
        headers: { 'content-type': manifest.mediaType },
        body: manifest.bytes,
        scopes: [pushScope(ref)],
        accept: ref.tag !== undefined ? [200, 201, 202, 400, 409] : [200, 201, 202],
        retry: true, // the same bytes to the same name: idempotent
        maxBytes: 64 * 1024,
        subject: manifestSubject('PUT', ref),
      },
      signal,
    );
    this.stats.bytesUploaded += manifest.bytes.length;
    if (reply.status === 400 || reply.status === 409) {
      const text = reply.body.toString('utf8');
      // Decision (docs/copy.md#immutable-tags): ECR refuses any PUT to an immutable tag, even one naming the
      // digest it already holds (400 TAG_INVALID; others answer 409). Same digest: the tag is as wanted.
      if (ref.tag !== undefined && (reply.status === 409 || distributionErrorCodes(text).includes('TAG_INVALID'))) {
        const held = await this.headManifest({ registry: ref.registry, repository: ref.repository, tag: ref.tag }, signal);
        if (held?.digest === digest) return digest;
        throw new PromoteError('TAG_IMMUTABLE', `tag ${formatReference(ref)} is immutable and names ${held?.digest ?? 'another manifest'}, not ${digest}: ${describeErrorBody(text)}`);
      }
      throw errorForStatus(reply.status, text, manifestSubject('PUT', ref));
    }
    return header(reply.headers, 'docker-content-digest') ?? digest;
  }

  async #fetchManifest(ref: Reference, accept: readonly number[], signal?: AbortSignal): Promise<RawManifest | undefined> {
    const reply = await this.#transport.request(
      {
        ...manifestRead('GET', ref, accept),
        maxBytes: MAX_MANIFEST_BYTES,
        tooLarge: (n) => new PromoteError('MANIFEST_TOO_LARGE', `manifest ${formatReference(ref)} is larger than ${MAX_MANIFEST_BYTES} bytes (${n} seen)`),
      },
      signal,
    );
    if (reply.status !== 200) return undefined;
    const digest = digestOf(reply.body);
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new PromoteError('DIGEST_MISMATCH', `manifest ${formatReference(ref)}: registry served bytes hashing to ${digest}`);
    }
    let mediaType = bareMediaType(header(reply.headers, 'content-type'));
    if (!MANIFEST_ACCEPT.includes(mediaType)) {
      // Some registries serve `application/json`; the body's own mediaType is then the best we have.
      try {
        const declared = (JSON.parse(reply.body.toString('utf8')) as { mediaType?: unknown }).mediaType;
        if (typeof declared === 'string') mediaType = declared;
      } catch {
        // parseManifest reports unreadable bodies where the manifest is used
      }
    }
    return { mediaType, digest, bytes: reply.body };
  }

  // ---------------------------------------------------------------- blobs

  readBlob(repo: Repository, digest: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    return this.#blobs.read(repo, digest, maxBytes, signal);
  }

  openBlob(repo: Repository, descriptor: Descriptor, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    return this.#blobs.open(repo, descriptor, signal);
  }

  pushBlob(repo: Repository, bytes: Buffer, _mediaType?: string, signal?: AbortSignal): Promise<{ digest: string; outcome: BlobCopyOutcome }> {
    return this.#blobs.push(repo, bytes, signal);
  }

  /** Mount, or POST + GET → PUT; see {@link BlobTransfer.copy} (docs/copy.md#blob-existence). */
  copyBlob(source: BlobSource, target: Repository, signal?: AbortSignal): Promise<BlobCopyOutcome> {
    return this.#blobs.copy(source, target, signal);
  }

  // ---------------------------------------------------------------- tags and referrers

  /**
   * All tags, `n=1000` per page (plain pages where the registry refuses that size, as Quay does with
   * `TOO_MANY_TAGS_REQUESTED`), following `Link` until it ends or repeats, at most {@link MAX_TAG_PAGES} pages.
   * `absentIfDenied`: a 401/403 means "no such repository" (registries that hide missing repositories behind
   * an auth failure; meant for a promotion's target).
   */
  async listTags(repo: Repository, options: ListTagsOptions = {}, signal?: AbortSignal): Promise<string[] | undefined> {
    const denied = options.absentIfDenied === true;
    const what = `tags of ${formatRepository(repo)}`;
    const base = `/v2/${repo.repository}/tags/list`;
    try {
      let tags: string[] = [];
      let sized = true;
      const fetched = new Set<string>();
      let url: string | URL | undefined = `${base}?n=${TAG_PAGE_SIZE}`;
      for (let page = 0; url !== undefined; page++) {
        if (page >= MAX_TAG_PAGES) throw new PromoteError('REGISTRY_PROTOCOL', `${what}: more than ${MAX_TAG_PAGES} pages`);
        const reply: Reply = await this.#transport.request(
          {
            kind: 'GET tags',
            method: 'GET',
            registry: repo.registry,
            url,
            scopes: [pullScope(repo)],
            accept: page === 0 ? [200, 404, ...(sized ? [400] : []), ...(denied ? [401, 403] : [])] : [200],
            maxBytes: 16 * 1024 * 1024,
            subject: { method: 'GET', registry: repo.registry, repository: repo.repository, what },
          },
          signal,
        );
        if (reply.status === 400) {
          // The page size was refused (Quay: 400 TOO_MANY_TAGS_REQUESTED above 100): list with the registry's own.
          sized = false;
          tags = [];
          url = base;
          page = -1;
          continue;
        }
        if (reply.status !== 200) return undefined;
        const body = parseJson(reply.body, what) as { tags?: unknown };
        if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
        url = nextUnread(reply, fetched);
      }
      return [...new Set(tags)];
    } catch (e) {
      if (denied && (isPromoteError(e, 'REGISTRY_UNAUTHORIZED') || isPromoteError(e, 'REGISTRY_DENIED'))) return undefined;
      throw e;
    }
  }

  async listReferrers(repo: Repository, digest: string, signal?: AbortSignal): Promise<Descriptor[]> {
    checkDigest(digest, `referrers in ${formatRepository(repo)}`);
    if (!this.#noReferrersApi.has(repo.registry)) {
      const found = await this.#referrersApi(repo, digest, signal);
      if (found !== undefined) {
        this.#referrersApiSeen.add(repo.registry);
        return found;
      }
      // OCI 1.1: a registry with the API answers 200 and an index even when empty; anything else means
      // no API (distribution 2.8: plain-text 404). Remember it, so later calls go straight to the tag.
      this.#noReferrersApi.add(repo.registry);
    }
    const tag = `sha256-${digest.slice('sha256:'.length)}`;
    const raw = await this.findManifest({ registry: repo.registry, repository: repo.repository, tag }, {}, signal);
    if (raw === undefined) return [];
    const manifest = parseManifest(raw);
    return manifest.kind === 'index' ? [...manifest.manifests] : [];
  }

  async indexReferrers(repo: Repository, subject: string, referrers: readonly Descriptor[], options: { template?: RawManifest } = {}, signal?: AbortSignal): Promise<boolean> {
    const listed = new Set((await this.listReferrers(repo, subject, signal)).map((d) => d.digest));
    if (this.referrersApi(repo.registry) === 'supported' || referrers.every((d) => listed.has(d.digest))) return false;
    const tag = `sha256-${subject.slice('sha256:'.length)}`;
    const existing = await this.findManifest({ ...repo, tag }, {}, signal);
    const { template } = options;
    if (existing === undefined && template !== undefined) {
      const wanted = new Set(referrers.map((d) => d.digest));
      const parsed = parseManifest(template);
      if (parsed.kind === 'index' && parsed.manifests.length === wanted.size && parsed.manifests.every((d) => wanted.has(d.digest))) {
        await this.putManifest({ ...repo, tag }, { mediaType: template.mediaType, bytes: template.bytes }, signal);
        return true;
      }
    }
    const bytes = mergeReferrersIndex(existing?.bytes, referrers, `${formatRepository(repo)}:${tag}`);
    if (bytes === undefined) return false;
    await this.putManifest({ ...repo, tag }, { mediaType: MediaTypes.ociIndex, bytes }, signal);
    return true;
  }

  referrersApi(registry: string): 'supported' | 'unsupported' | 'unknown' {
    if (this.#noReferrersApi.has(registry)) return 'unsupported';
    return this.#referrersApiSeen.has(registry) ? 'supported' : 'unknown';
  }

  async #referrersApi(repo: Repository, digest: string, signal?: AbortSignal): Promise<Descriptor[] | undefined> {
    const out: Descriptor[] = [];
    const what = `referrers of ${digest} in ${formatRepository(repo)}`;
    const fetched = new Set<string>();
    let url: string | URL | undefined = `/v2/${repo.repository}/referrers/${digest}`;
    for (let page = 0; url !== undefined; page++) {
      if (page >= MAX_REFERRER_PAGES) throw new PromoteError('REGISTRY_PROTOCOL', `${what}: more than ${MAX_REFERRER_PAGES} pages`);
      const reply: Reply = await this.#transport.request(
        {
          kind: 'GET referrers',
          method: 'GET',
          registry: repo.registry,
          url,
          headers: { accept: MediaTypes.ociIndex },
          scopes: [pullScope(repo)],
          accept: page === 0 ? [200, 400, 404, 405, 406] : [200],
          maxBytes: MAX_MANIFEST_BYTES,
          tooLarge: (n) => new PromoteError('MANIFEST_TOO_LARGE', `${what} exceed ${MAX_MANIFEST_BYTES} bytes (${n} seen)`),
          subject: { method: 'GET', registry: repo.registry, repository: repo.repository, what },
        },
        signal,
      );
      if (reply.status !== 200 || bareMediaType(header(reply.headers, 'content-type')) !== MediaTypes.ociIndex) {
        if (page === 0) return undefined;
        throw new PromoteError('REGISTRY_PROTOCOL', `${what}: a later page is not an OCI index`);
      }
      const index = parseManifest({ mediaType: MediaTypes.ociIndex, digest: digestOf(reply.body), bytes: reply.body });
      if (index.kind === 'index') out.push(...index.manifests);
      url = nextUnread(reply, fetched);
    }
    return out;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Closes every connection; idempotent. Requests after close fail. */
  close(): Promise<void> {
    return this.#transport.close();
  }
}

// ---------------------------------------------------------------- helpers

function manifestPath(ref: Reference): string {
  const id = ref.digest ?? ref.tag;
  if (id === undefined) throw new PromoteError('INVALID_REFERENCE', `reference ${formatReference(ref)} has neither tag nor digest`);
  return `/v2/${ref.repository}/manifests/${id}`;
}

/** A manifest HEAD or GET: always the full Accept list (distribution 2.8 hides OCI content without it). */
function manifestRead(method: 'HEAD' | 'GET', ref: Reference, accept: readonly number[]): Call {
  return {
    kind: `${method} manifest`, method, registry: ref.registry, url: manifestPath(ref),
    headers: { accept: MANIFEST_ACCEPT.join(', ') }, scopes: [pullScope(ref)], accept, follow: true,
    subject: manifestSubject(method, ref),
  };
}

function manifestSubject(method: string, ref: Reference): RequestSubject {
  return { method, registry: ref.registry, repository: ref.repository, what: `manifest ${formatReference(ref)}`, notFound: 'MANIFEST_NOT_FOUND' };
}

/** `Link: </v2/app/tags/list?n=100&last=x>; rel="next"` → the next URL, resolved against the request. */
function nextLink(reply: Reply): URL | undefined {
  const link = header(reply.headers, 'link');
  const match = link === undefined ? null : /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
  return match?.[1] === undefined ? undefined : new URL(match[1], reply.url);
}

/**
 * The next page of a listing, unless it was read already: a registry that repeats a `Link` would be
 * followed forever, so what it listed so far is all there is. Records `reply`'s own page in `fetched`.
 */
function nextUnread(reply: Reply, fetched: Set<string>): URL | undefined {
  fetched.add(reply.url.href);
  const next = nextLink(reply);
  return next !== undefined && !fetched.has(next.href) ? next : undefined;
}

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  try {
    const json: unknown = JSON.parse(body.toString('utf8'));
    if (typeof json === 'object' && json !== null) return json as Record<string, unknown>;
  } catch (e) {
    throw new PromoteError('REGISTRY_PROTOCOL', `${what}: the registry answered invalid JSON`, { cause: e });
  }
  throw new PromoteError('REGISTRY_PROTOCOL', `${what}: the registry answered JSON that is not an object`);
}

let userAgent: string | undefined;
function defaultUserAgent(): string {
  if (userAgent === undefined) {
    let version = 'unknown';
    try {
      // src/oci and dist/oci are both two levels below the package root.
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
      if (typeof pkg.version === 'string') version = pkg.version;
    } catch {
      // a bundled build without package.json keeps "unknown"
    }
    userAgent = `bundle-promoter/${version}`;
  }
  return userAgent;
}
