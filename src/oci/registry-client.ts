import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import * as tls from 'node:tls';
import { Agent, interceptors, type Dispatcher } from 'undici';
import { PromoteError, asAbort, isPromoteError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { parseAuthChallenge, repositoryScope } from './auth-challenge.js';
import { Authenticator } from './authenticator.js';
import { DigestVerifier, checkDigest, digestOf } from './digest.js';
import { anonymousKeychain, registryKey, type Keychain } from './keychain.js';
import { parseManifest } from './manifest.js';
import { mergeReferrersIndex } from './wire-format.js';
import { MANIFEST_ACCEPT, MediaTypes, bareMediaType } from './media-types.js';
import { formatReference, formatRepository } from './reference.js';
import { errorForNetwork, errorForStatus, distributionErrorCodes, isRetryableStatus, type RequestSubject } from './registry-errors.js';
import { DEFAULT_RETRY_POLICY, backoffDelay, parseRetryAfter, sleep, type RetryPolicy } from './retry-policy.js';
import type { BlobCopyOutcome, BlobSource, Descriptor, RawManifest, Reference, Registry, Repository, RequestStats } from './types.js';

/** Manifests larger than this are refused (DESIGN.md: bounded everything; the OCI spec suggests 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Passed to `onRequest` before every HTTP request (retries and token requests included). */
export interface RequestEvent {
  /** `GET manifest`, `POST upload`, `GET token`, … */
  readonly kind: string;
  readonly method: string;
  readonly registry: string;
  /** Path without the query string. */
  readonly path: string;
}

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
   * Sockets per registry and direction: reads and writes have separate pools, so that a blob streamed
   * from and to the same registry can never wait on itself. @defaultValue 8
   */
  connectionsPerRegistry?: number;
  /** @defaultValue {@link DEFAULT_RETRY_POLICY} */
  retry?: Partial<RetryPolicy>;
  /** @defaultValue `{ connectMs: 10_000, headersMs: 30_000, bodyMs: 60_000 }` (body: the longest gap between chunks) */
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number };
  /** @defaultValue `bundle-promoter/<package version>` */
  userAgent?: string;
  /** Debug line per request: method, registry, path, status, ms — never headers. @defaultValue no logging */
  logger?: Logger;
  /**
   * Awaited before every request; the place for a request budget shared between workers.
   * @defaultValue none
   */
  onRequest?: (event: RequestEvent, signal?: AbortSignal) => void | Promise<void>;
  /** Chunk size for the PATCH fallback of uploads. @defaultValue 8 MiB */
  chunkSize?: number;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Call {
  readonly kind: string;
  readonly method: Method;
  readonly registry: string;
  /** Absolute-path (`/v2/…`) or absolute URL (upload locations, token realms). */
  readonly url: string | URL;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | string | Readable;
  /** Token scopes; `undefined` sends no registry auth (token server requests carry their own). */
  readonly scopes?: readonly string[];
  /** Statuses handed back to the caller; any other is an error. */
  readonly accept: readonly number[];
  /** Retry transient failures. @defaultValue GET/HEAD only */
  readonly retry?: boolean;
  /** Hand back the body of a 2xx unread (blob streams). */
  readonly stream?: boolean;
  readonly follow?: boolean;
  readonly maxBytes?: number;
  readonly tooLarge?: (bytes: number) => PromoteError;
  readonly subject: RequestSubject;
}

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly url: URL;
  readonly body: Buffer;
  readonly stream?: Readable;
}

interface Dispatchers {
  readonly read: Dispatcher;
  readonly write: Dispatcher;
  /** `read` plus redirects (blob GETs go to object storage; cross-origin hops lose `Authorization`). */
  readonly follow: Dispatcher;
  readonly agents: readonly Agent[];
}

/** The registry API over undici: auth, retries, limits, digests, and the blob copy request budget. */
export class RegistryClient implements Registry {
  readonly stats: RequestStats = { requests: 0, byKind: {}, bytesUploaded: 0, bytesDownloaded: 0 };
  readonly #retry: RetryPolicy;
  readonly #insecure: Set<string>;
  readonly #caFile: string | undefined;
  readonly #connections: number;
  readonly #timeouts: { connectMs: number; headersMs: number; bodyMs: number };
  readonly #userAgent: string;
  readonly #log: Logger | undefined;
  readonly #onRequest: RegistryClientOptions['onRequest'];
  readonly #chunkSize: number;
  readonly #auth: Authenticator;
  readonly #dispatchers = new Map<string, Promise<Dispatchers>>();
  #ca: Promise<string[] | undefined> | undefined;
  /** Registries that answered the referrers API with anything but an OCI index: go straight to the tag. */
  readonly #noReferrersApi = new Set<string>();
  /** Registries that answered the referrers API with an OCI index. */
  readonly #referrersApiSeen = new Set<string>();
  /** `registry from` pairs (source repositories) whose mount the registry or token server refused. */
  readonly #mountRefused = new Set<string>();
  #closed = false;

  constructor(options: RegistryClientOptions = {}) {
    this.#retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#insecure = new Set((options.insecure ?? []).map(registryKey));
    this.#caFile = options.caFile;
    this.#connections = options.connectionsPerRegistry ?? 8;
    this.#timeouts = { connectMs: 10_000, headersMs: 30_000, bodyMs: 60_000, ...options.timeouts };
    this.#userAgent = options.userAgent ?? defaultUserAgent();
    this.#log = options.logger;
    this.#onRequest = options.onRequest;
    this.#chunkSize = options.chunkSize ?? 8 * 1024 * 1024;
    this.#auth = new Authenticator({
      keychain: options.keychain ?? anonymousKeychain,
      fetch: async (req, signal) => {
        const reply = await this.#request(
          {
            kind: `${req.method} token`,
            method: req.method,
            registry: req.registry,
            url: req.url,
            headers: req.headers,
            ...(req.body !== undefined && { body: req.body }),
            accept: [200, 400, 401, 403, 404, 405],
            retry: true,
            maxBytes: 1024 * 1024,
            subject: { method: req.method, registry: req.registry, what: `token from ${new URL(req.url).origin}` },
          },
          signal,
        );
        return { status: reply.status, body: reply.body };
      },
    });
  }

  // ---------------------------------------------------------------- manifests

  async headManifest(ref: Reference, signal?: AbortSignal): Promise<Descriptor | undefined> {
    const reply = await this.#request(
      {
        kind: 'HEAD manifest',
        method: 'HEAD',
        registry: ref.registry,
        url: manifestPath(ref),
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
        scopes: [pull(ref)],
        accept: [200, 404],
        follow: true,
        subject: manifestSubject('HEAD', ref),
      },
      signal,
    );
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
    const reply = await this.#request(
      {
        kind: 'PUT manifest',
        method: 'PUT',
        registry: ref.registry,
        url: `/v2/${ref.repository}/manifests/${ref.tag ?? digest}`,
        headers: { 'content-type': manifest.mediaType },
        body: manifest.bytes,
        scopes: [push(ref)],
        accept: [200, 201, 202],
        retry: true, // the same bytes to the same name: idempotent
        subject: manifestSubject('PUT', ref),
      },
      signal,
    );
    this.stats.bytesUploaded += manifest.bytes.length;
    return header(reply.headers, 'docker-content-digest') ?? digest;
  }

  async #fetchManifest(ref: Reference, accept: readonly number[], signal?: AbortSignal): Promise<RawManifest | undefined> {
    const reply = await this.#request(
      {
        kind: 'GET manifest',
        method: 'GET',
        registry: ref.registry,
        url: manifestPath(ref),
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
        scopes: [pull(ref)],
        accept,
        follow: true,
        maxBytes: MAX_MANIFEST_BYTES,
        tooLarge: (n) => new PromoteError('MANIFEST_TOO_LARGE', `manifest ${formatReference(ref)} is larger than ${MAX_MANIFEST_BYTES} bytes (${n} seen)`),
        subject: manifestSubject('GET', ref),
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

  async readBlob(repo: Repository, digest: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    checkDigest(digest, `blob in ${formatRepository(repo)}`);
    const reply = await this.#request(
      {
        kind: 'GET blob',
        method: 'GET',
        registry: repo.registry,
        url: `/v2/${repo.repository}/blobs/${digest}`,
        scopes: [pull(repo)],
        accept: [200],
        follow: true,
        maxBytes,
        tooLarge: (n) => new PromoteError('BLOB_TOO_LARGE', `blob ${digest} in ${formatRepository(repo)} is larger than ${maxBytes} bytes (${n} seen)`),
        subject: blobSubject('GET', repo, digest),
      },
      signal,
    );
    const actual = digestOf(reply.body);
    if (actual !== digest) throw new PromoteError('DIGEST_MISMATCH', `blob ${digest} from ${formatRepository(repo)}: content hashes to ${actual}`);
    return reply.body;
  }

  async openBlob(repo: Repository, descriptor: Descriptor, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    const source = await this.#openBlobStream(repo, descriptor, signal);
    const verifier = new DigestVerifier(descriptor, formatRepository(repo));
    // The verifier only ever holds back one chunk; errors on either side destroy both.
    pipeline(source, verifier, () => {});
    verifier.once('close', () => (this.stats.bytesDownloaded += verifier.bytes));
    return verifier;
  }

  async #openBlobStream(repo: Repository, descriptor: Descriptor, signal?: AbortSignal): Promise<Readable> {
    checkDigest(descriptor.digest, `blob in ${formatRepository(repo)}`);
    const reply = await this.#request(
      {
        kind: 'GET blob',
        method: 'GET',
        registry: repo.registry,
        url: `/v2/${repo.repository}/blobs/${descriptor.digest}`,
        scopes: [pull(repo)],
        accept: [200],
        follow: true,
        stream: true,
        subject: blobSubject('GET', repo, descriptor.digest),
      },
      signal,
    );
    if (reply.stream === undefined) throw new Error('unreachable: stream requested');
    return reply.stream;
  }

  async pushBlob(repo: Repository, bytes: Buffer, _mediaType?: string, signal?: AbortSignal): Promise<{ digest: string; outcome: BlobCopyOutcome }> {
    const digest = digestOf(bytes);
    const descriptor = { mediaType: MediaTypes.ociLayer, digest, size: bytes.length };
    const outcome = await this.copyBlob({ repo, descriptor, bytes }, repo, signal);
    return { digest, outcome };
  }

  /**
   * Same registry: one cross-repo mount POST (201 'mounted'). Different registries: the POST mounts from the
   * target repository itself, so that 201 means 'present' and 202 starts the upload; then GET → PUT.
   *
   * Decision (docs/copy.md#blob-existence): the existence check is folded into the upload start instead of a
   * HEAD per blob: a new blob costs POST + GET + PUT, a present one just the POST. The OCI distribution spec
   * says a registry that cannot mount answers 202 with an upload location, so nothing is lost where mounts
   * are unsupported. (pushBlob and a copy within one repository use the same form.)
   */
  async copyBlob(source: BlobSource, target: Repository, signal?: AbortSignal): Promise<BlobCopyOutcome> {
    const { descriptor } = source;
    checkDigest(descriptor.digest, `blob for ${formatRepository(target)}`);
    if (source.bytes !== undefined) {
      const actual = digestOf(source.bytes);
      if (actual !== descriptor.digest || source.bytes.length !== descriptor.size) {
        throw new PromoteError('DIGEST_MISMATCH', `blob ${descriptor.digest} for ${formatRepository(target)}: the given ${source.bytes.length} bytes hash to ${actual}`);
      }
    }
    const from = source.repo.registry === target.registry ? source.repo.repository : target.repository;

    return this.#withCopyRetries(descriptor.digest, target, signal, async (streaming) => {
      const location = await this.#startUpload(target, descriptor.digest, from, signal);
      if (location === undefined) return from === target.repository ? 'present' : 'mounted';
      streaming();
      await this.#upload(location, source, target, signal);
      return 'uploaded';
    });
  }

  /** POST with `mount`/`from`: `undefined` when the blob is there now (201), else the upload location. */
  async #startUpload(target: Repository, digest: string, from: string, signal?: AbortSignal): Promise<URL | undefined> {
    // Keyed by source: whether we may pull it for a mount does not depend on the target.
    const refusedKey = `${target.registry} ${from}`;
    const crossRepo = from !== target.repository;
    const post = (mount: boolean): Promise<Reply> =>
      this.#request(
        {
          kind: 'POST upload',
          method: 'POST',
          registry: target.registry,
          url: `/v2/${target.repository}/blobs/uploads/${mount ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : ''}`,
          headers: { 'content-length': '0' },
          // A cross-repo mount needs pull on the source in the same token as pull,push on the target.
          scopes: mount && crossRepo ? [push(target), repositoryScope(from, ['pull'])] : [push(target)],
          accept: [201, 202],
          retry: true, // an upload session nobody uses is harmless; registries expire them
          subject: blobSubject('POST', target, digest),
        },
        signal,
      );

    let reply: Reply;
    if (crossRepo && this.#mountRefused.has(refusedKey)) {
      reply = await post(false);
    } else {
      try {
        reply = await post(true);
      } catch (e) {
        const refused = ['REGISTRY_UNAUTHORIZED', 'REGISTRY_DENIED', 'REGISTRY_REJECTED'] as const;
        if (!crossRepo || !refused.some((code) => isPromoteError(e, code))) throw e;
        // No pull on the source (the token server refused the scope, or the registry the token): upload instead.
        this.#log?.debug({ registry: target.registry, repository: target.repository, from }, 'cross-repo mount refused; uploading');
        this.#mountRefused.add(refusedKey);
        reply = await post(false);
      }
    }
    if (reply.status === 201) return undefined;
    return this.#location(reply, target, digest);
  }

  /** PUT `<location>?digest=` with the whole blob; PATCH fallback; a 307 re-opens the source once. */
  async #upload(location: URL, source: BlobSource, target: Repository, signal?: AbortSignal): Promise<void> {
    const { digest } = source.descriptor;
    let url = withQuery(location, 'digest', digest);
    for (let hop = 0; ; hop++) {
      const reply = await this.#sendBlob({ kind: 'PUT upload', method: 'PUT', url, accept: [201, 202, 307, 400, 416] }, source, target, signal);
      if (reply.status === 201) return;
      if (reply.status === 307 && hop === 0) {
        // Decision (docs/copy.md#redirects): a streamed PUT can't replay its body, so it never follows a 307;
        // we re-open the source and PUT to the new location ourselves, once. A 307 repeats the request
        // elsewhere, so the Location should carry the digest already; add it if not.
        url = this.#location(reply, target, digest);
        if (!url.searchParams.has('digest')) url = withQuery(url, 'digest', digest);
        continue;
      }
      const invalidUpload = reply.status === 400 && distributionErrorCodes(reply.body.toString('utf8')).includes('BLOB_UPLOAD_INVALID');
      if (reply.status === 202 || reply.status === 416 || invalidUpload) {
        // The registry did not take the blob in one PUT: fall back to PATCH chunks and a closing PUT.
        await this.#uploadChunked(source, target, signal);
        return;
      }
      throw errorForStatus(reply.status, reply.body.toString('utf8'), blobSubject('PUT', target, digest));
    }
  }

  async #uploadChunked(source: BlobSource, target: Repository, signal?: AbortSignal): Promise<void> {
    const { digest, size } = source.descriptor;
    // A fresh session: after a refused monolithic PUT, the old one's state is unknown.
    let location = await this.#startUpload(target, digest, target.repository, signal);
    if (location === undefined) return; // it arrived meanwhile
    // A stream is sent as one PATCH; bytes in memory in chunkSize pieces.
    const step = source.bytes !== undefined ? this.#chunkSize : Math.max(size, 1);
    for (let start = 0; start < size; start += step) {
      const end = Math.min(size, start + step);
      const chunk: BlobSource = source.bytes !== undefined ? { ...source, bytes: source.bytes.subarray(start, end) } : source;
      const reply = await this.#sendBlob(
        { kind: 'PATCH upload', method: 'PATCH', url: location, accept: [202], range: `${start}-${end - 1}`, length: end - start },
        chunk,
        target,
        signal,
      );
      location = this.#location(reply, target, digest);
    }
    await this.#request(
      {
        kind: 'PUT upload',
        method: 'PUT',
        registry: target.registry,
        url: withQuery(location, 'digest', digest),
        headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
        scopes: [push(target)],
        accept: [201],
        retry: false,
        subject: blobSubject('PUT', target, digest),
      },
      signal,
    );
  }

  /**
   * Sends blob bytes (PUT or PATCH). From memory as a Buffer; otherwise GET the source and stream it
   * through a DigestVerifier, which withholds the last chunk until size and digest are right: on a
   * mismatch the request is destroyed before its end, so the registry never commits the blob.
   */
  async #sendBlob(
    req: { kind: string; method: 'PUT' | 'PATCH'; url: URL; accept: readonly number[]; range?: string; length?: number },
    source: BlobSource,
    target: Repository,
    signal?: AbortSignal,
  ): Promise<Reply> {
    const { digest, size } = source.descriptor;
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(req.length ?? size),
      ...(req.range !== undefined && { 'content-range': req.range }),
    };
    const call = (body: Buffer | Readable): Call => ({
      kind: req.kind,
      method: req.method,
      registry: target.registry,
      url: req.url,
      headers,
      body,
      scopes: [push(target)],
      accept: req.accept,
      retry: false, // not idempotent; the whole copy restarts from the POST instead
      subject: blobSubject(req.method, target, digest),
    });

    if (source.bytes !== undefined) {
      const reply = await this.#request(call(source.bytes), signal);
      this.stats.bytesUploaded += source.bytes.length;
      return reply;
    }

    const input = await this.#openBlobStream(source.repo, source.descriptor, signal);
    const verifier = new DigestVerifier(source.descriptor, formatRepository(source.repo));
    pipeline(input, verifier, () => {});
    try {
      return await this.#request(call(verifier), signal);
    } catch (e) {
      if (verifier.failure) {
        throw new PromoteError('DIGEST_MISMATCH', `${verifier.failure.message}; upload to ${formatRepository(target)} aborted`, { cause: verifier.failure });
      }
      throw e;
    } finally {
      this.stats.bytesDownloaded += verifier.bytes;
      this.stats.bytesUploaded += verifier.bytes;
      // An early answer (error, 307) leaves the source half-read: release its connection.
      if (!input.readableEnded) discard(input);
      if (!verifier.readableEnded) discard(verifier);
    }
  }

  async #withCopyRetries<T>(digest: string, target: Repository, signal: AbortSignal | undefined, run: (streaming: () => void) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let streaming = false;
      try {
        return await run(() => (streaming = true));
      } catch (e) {
        // Only failures while bytes flowed restart the copy: the POST and GET already retried on their own,
        // and a digest mismatch would only repeat.
        const again = streaming && isPromoteError(e) && e.retryable && attempt < this.#retry.maxAttempts;
        if (!again) throw e;
        const wait = e.retryAfterMs ?? backoffDelay(this.#retry, attempt);
        this.#log?.debug({ registry: target.registry, repository: target.repository, digest, attempt, code: e.code }, 'blob copy restarts');
        await sleep(Math.min(wait, this.#retry.maxRetryAfterMs), signal);
      }
    }
  }

  #location(reply: Reply, target: Repository, digest: string): URL {
    const location = header(reply.headers, 'location');
    if (location === undefined) {
      throw new PromoteError('REGISTRY_PROTOCOL', `${blobSubject('POST', target, digest).what}: registry ${target.registry} answered ${reply.status} without a Location`);
    }
    return new URL(location, reply.url);
  }

  // ---------------------------------------------------------------- tags and referrers

  async listTags(repo: Repository, signal?: AbortSignal): Promise<string[] | undefined> {
    const tags: string[] = [];
    let url: string | URL | undefined = `/v2/${repo.repository}/tags/list`;
    for (let page = 0; url !== undefined; page++) {
      const reply: Reply = await this.#request(
        {
          kind: 'GET tags',
          method: 'GET',
          registry: repo.registry,
          url,
          scopes: [pull(repo)],
          accept: page === 0 ? [200, 404] : [200],
          maxBytes: 16 * 1024 * 1024,
          subject: { method: 'GET', registry: repo.registry, repository: repo.repository, what: `tags of ${formatRepository(repo)}` },
        },
        signal,
      );
      if (reply.status === 404) return undefined;
      const body = parseJson(reply.body, `tags of ${formatRepository(repo)}`) as { tags?: unknown };
      if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
      url = nextLink(reply);
    }
    return tags;
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
    let url: string | URL | undefined = `/v2/${repo.repository}/referrers/${digest}`;
    for (let page = 0; url !== undefined; page++) {
      const reply: Reply = await this.#request(
        {
          kind: 'GET referrers',
          method: 'GET',
          registry: repo.registry,
          url,
          headers: { accept: MediaTypes.ociIndex },
          scopes: [pull(repo)],
          accept: page === 0 ? [200, 400, 404, 405, 406] : [200],
          maxBytes: MAX_MANIFEST_BYTES,
          tooLarge: (n) => new PromoteError('MANIFEST_TOO_LARGE', `referrers of ${digest} in ${formatRepository(repo)} exceed ${MAX_MANIFEST_BYTES} bytes (${n} seen)`),
          subject: { method: 'GET', registry: repo.registry, repository: repo.repository, what: `referrers of ${digest} in ${formatRepository(repo)}` },
        },
        signal,
      );
      if (reply.status !== 200 || bareMediaType(header(reply.headers, 'content-type')) !== MediaTypes.ociIndex) {
        if (page === 0) return undefined;
        throw new PromoteError('REGISTRY_PROTOCOL', `referrers of ${digest} in ${formatRepository(repo)}: a later page is not an OCI index`);
      }
      const index = parseManifest({ mediaType: MediaTypes.ociIndex, digest: digestOf(reply.body), bytes: reply.body });
      if (index.kind === 'index') out.push(...index.manifests);
      url = nextLink(reply);
    }
    return out;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Closes every connection; idempotent. Requests after close fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = await Promise.allSettled(this.#dispatchers.values());
    this.#dispatchers.clear();
    await Promise.all(all.flatMap((r) => (r.status === 'fulfilled' ? r.value.agents.map((a) => a.close()) : [])));
  }

  // ---------------------------------------------------------------- the one request path

  /**
   * Every HTTP request goes through here: connection caps (per-registry agents), auth (token flow, one
   * re-challenge on 401), retries of transient failures with backoff and Retry-After, body limits,
   * error classification, and stats. Every response body is read, dumped or handed over as a stream.
   */
  async #request(call: Call, signal?: AbortSignal): Promise<Reply> {
    const base = this.#baseUrl(call.registry);
    const url = typeof call.url === 'string' && call.url.startsWith('/') ? new URL(call.url, base) : new URL(call.url);
    const replayable = !(call.body instanceof Readable);
    const retry = (call.retry ?? (call.method === 'GET' || call.method === 'HEAD')) && replayable;
    // Registry credentials go to the registry's own origin only (not to storage or a foreign upload host).
    const sendAuth = call.scopes !== undefined && url.origin === base.origin;
    let scopes = call.scopes ?? [];
    let reauthed = false;
    const dispatchers = await this.#dispatchersFor(call.registry);
    const dispatcher = call.follow ? dispatchers.follow : call.method === 'GET' || call.method === 'HEAD' ? dispatchers.read : dispatchers.write;

    for (let attempt = 1; ; attempt++) {
      const aborted = asAbort(signal);
      if (aborted) throw aborted;
      const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...call.headers };
      const authorization = sendAuth ? await this.#auth.authorization(call.registry, scopes, signal) : undefined;
      if (authorization !== undefined) headers['authorization'] = authorization;
      await this.#onRequest?.({ kind: call.kind, method: call.method, registry: call.registry, path: url.pathname }, signal);
      this.stats.requests++;
      this.stats.byKind[call.kind] = (this.stats.byKind[call.kind] ?? 0) + 1;
      const started = performance.now();

      let response: Dispatcher.ResponseData;
      try {
        response = await dispatcher.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: call.method,
          headers,
          body: call.body ?? null,
          signal: signal ?? null,
        });
      } catch (e) {
        const { error, transient } = errorForNetwork(e, call.subject, signal);
        this.#logRequest(call, url, undefined, started, error.code);
        if (retry && transient && attempt < this.#retry.maxAttempts) {
          await sleep(backoffDelay(this.#retry, attempt), signal);
          continue;
        }
        throw error;
      }
      const status = response.statusCode;
      this.#logRequest(call, url, status, started);

      if (status === 401 && sendAuth && replayable && !reauthed) {
        await dump(response.body);
        const challenge = parseAuthChallenge(response.headers['www-authenticate']);
        if (challenge !== undefined) {
          // Learn (or re-learn) the challenge, drop a refused token, and try once more with a fresh one;
          // an insufficient_scope answer names the scopes it wants.
          this.#auth.learn(call.registry, challenge);
          if (authorization !== undefined) this.#auth.invalidate(call.registry, authorization);
          if (challenge.scheme === 'bearer') scopes = [...scopes, ...challenge.scopes];
          reauthed = true;
          const next = await this.#auth.authorization(call.registry, scopes, signal);
          if (next !== undefined && next !== authorization) {
            attempt--; // an auth round trip is not a failed attempt
            continue;
          }
        }
        if (call.accept.includes(401)) return { status, headers: response.headers, url, body: Buffer.alloc(0) };
        throw errorForStatus(401, '', call.subject);
      }

      if (call.accept.includes(status)) {
        if (call.stream && status >= 200 && status < 300) return { status, headers: response.headers, url, body: Buffer.alloc(0), stream: response.body };
        try {
          const body = await readBody(response, call.maxBytes, call.tooLarge);
          this.stats.bytesDownloaded += body.length;
          return { status, headers: response.headers, url, body };
        } catch (e) {
          const { error, transient } = errorForNetwork(e, call.subject, signal);
          if (retry && transient && attempt < this.#retry.maxAttempts) {
            await sleep(backoffDelay(this.#retry, attempt), signal);
            continue;
          }
          throw error;
        }
      }

      const text = await readErrorText(response);
      const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
      if (retry && isRetryableStatus(status) && attempt < this.#retry.maxAttempts) {
        if (retryAfterMs === undefined || retryAfterMs <= this.#retry.maxRetryAfterMs) {
          await sleep(retryAfterMs ?? backoffDelay(this.#retry, attempt), signal);
          continue;
        }
      }
      throw errorForStatus(status, text, call.subject, retryAfterMs);
    }
  }

  #logRequest(call: Call, url: URL, status: number | undefined, started: number, error?: ErrorCode): void {
    this.#log?.debug(
      { method: call.method, registry: call.registry, path: url.pathname, status, ms: Math.round(performance.now() - started), ...(error && { error }) },
      'registry request',
    );
  }

  #baseUrl(registry: string): URL {
    const host = registry.replace(/:\d+$/, '');
    const insecure = this.#insecure.has(registryKey(registry)) || this.#insecure.has(host);
    return new URL(`${insecure ? 'http' : 'https'}://${registry}`);
  }

  #dispatchersFor(registry: string): Promise<Dispatchers> {
    if (this.#closed) return Promise.reject(new PromoteError('ABORTED', `registry client is closed (request to ${registry})`));
    let dispatchers = this.#dispatchers.get(registry);
    if (dispatchers === undefined) {
      dispatchers = this.#createDispatchers();
      this.#dispatchers.set(registry, dispatchers);
    }
    return dispatchers;
  }

  async #createDispatchers(): Promise<Dispatchers> {
    this.#ca ??= this.#loadCa();
    const ca = await this.#ca;
    const options: Agent.Options = {
      connections: this.#connections,
      // HTTP/2 multiplexes; `connections` would then cap sockets, not concurrent requests.
      allowH2: false,
      headersTimeout: this.#timeouts.headersMs,
      bodyTimeout: this.#timeouts.bodyMs,
      connect: { timeout: this.#timeouts.connectMs, ...(ca !== undefined && { ca }) },
    };
    // Decision (docs/copy.md#connections): two agents per registry, reads and writes. A blob streamed from
    // and to the same registry (a refused mount) holds a read socket until its PUT gets a write socket; with
    // one capped pool, `connections` such copies could each hold a GET and wait forever for a PUT.
    const read = new Agent(options);
    const write = new Agent(options);
    // Cross-origin hops drop Authorization (pre-signed storage URLs must not see our token).
    const follow = read.compose(interceptors.redirect({ maxRedirections: 5, throwOnMaxRedirect: true }));
    return { read, write, follow, agents: [read, write] };
  }

  async #loadCa(): Promise<string[] | undefined> {
    if (this.#caFile === undefined) return undefined;
    let pem: string;
    try {
      pem = await readFile(this.#caFile, 'utf8');
    } catch (e) {
      throw new PromoteError('TLS_CONFIG', `cannot read CA file ${this.#caFile}: ${(e as Error).message}`, { cause: e });
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new PromoteError('TLS_CONFIG', `CA file ${this.#caFile} holds no PEM certificate`);
    // `ca` replaces Node's trust store; keep the defaults so that redirects to public storage still verify.
    return [...tls.getCACertificates('default'), pem];
  }
}

// ---------------------------------------------------------------- helpers

function pull(repo: Repository): string {
  return repositoryScope(repo.repository, ['pull']);
}

function push(repo: Repository): string {
  return repositoryScope(repo.repository, ['pull', 'push']);
}

function manifestPath(ref: Reference): string {
  const id = ref.digest ?? ref.tag;
  if (id === undefined) throw new PromoteError('INVALID_REFERENCE', `reference ${formatReference(ref)} has neither tag nor digest`);
  return `/v2/${ref.repository}/manifests/${id}`;
}

function manifestSubject(method: string, ref: Reference): RequestSubject {
  return { method, registry: ref.registry, repository: ref.repository, what: `manifest ${formatReference(ref)}`, notFound: 'MANIFEST_NOT_FOUND' };
}

function blobSubject(method: string, repo: Repository, digest: string): RequestSubject {
  return { method, registry: repo.registry, repository: repo.repository, what: `blob ${digest} in ${formatRepository(repo)}`, notFound: 'BLOB_NOT_FOUND' };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function withQuery(url: URL, key: string, value: string): URL {
  const out = new URL(url);
  out.searchParams.append(key, value);
  return out;
}

/** `Link: </v2/app/tags/list?n=100&last=x>; rel="next"` → the next URL, resolved against the request. */
function nextLink(reply: Reply): URL | undefined {
  const link = header(reply.headers, 'link');
  const match = link === undefined ? null : /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
  return match?.[1] === undefined ? undefined : new URL(match[1], reply.url);
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

async function readBody(response: Dispatcher.ResponseData, maxBytes: number | undefined, tooLarge: ((n: number) => PromoteError) | undefined): Promise<Buffer> {
  const limit = maxBytes ?? Number.POSITIVE_INFINITY;
  const declared = Number(header(response.headers, 'content-length'));
  const refuse = (n: number): PromoteError => tooLarge?.(n) ?? new PromoteError('REGISTRY_PROTOCOL', `response body larger than ${limit} bytes`);
  if (Number.isFinite(declared) && declared > limit) {
    discard(response.body); // reading megabytes only to throw them away costs more than a new connection
    throw refuse(declared);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      discard(response.body);
      throw refuse(total);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The start of an error body (for the message); the rest is dropped with the connection's blessing. */
async function readErrorText(response: Dispatcher.ResponseData): Promise<string> {
  try {
    return (await readBody(response, 64 * 1024, () => new PromoteError('REGISTRY_PROTOCOL', 'error body too large'))).toString('utf8');
  } catch {
    discard(response.body);
    return '';
  }
}

/** Drops a body and its connection; undici reports a destroy as an 'error' that nobody needs to see. */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

async function dump(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump();
  } catch {
    // the connection is gone; nothing left to release
  }
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
