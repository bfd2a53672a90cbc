import { Readable, pipeline } from 'node:stream';
import { PromoteError, isPromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import { repositoryScope } from './auth-challenge.js';
import { DigestVerifier, checkDigest, digestOf } from './digest.js';
import { MediaTypes } from './media-types.js';
import { formatRepository } from './reference.js';
import { errorForStatus, distributionErrorCodes, type RequestSubject } from './registry-errors.js';
import { discard, header, pullScope, pushScope, type Call, type RegistryTransport, type Reply } from './registry-transport.js';
import { backoffDelay, sleep, throttleDelay, type RetryPolicy } from './retry-policy.js';
import type { BlobCopyOutcome, BlobSource, Descriptor, Repository } from './types.js';

export interface BlobTransferDeps {
  readonly transport: RegistryTransport;
  /** Also paces restarts of a whole copy. */
  readonly retry: RetryPolicy;
  /** Chunk size for the PATCH fallback of uploads. */
  readonly chunkSize: number;
  readonly log: Logger | undefined;
}

/**
 * Blob traffic: reads (whole or streamed, digest verified) and copies into a repository: upload start
 * with folded existence check and cross-repo mount, monolithic PUT with streaming digest check, PATCH
 * fallback, 307 handling, and restarts of a whole copy.
 */
export class BlobTransfer {
  readonly #transport: RegistryTransport;
  readonly #retry: RetryPolicy;
  readonly #chunkSize: number;
  readonly #log: Logger | undefined;
  /** `registry from` pairs (source repositories) whose mount the registry or token server refused. */
  readonly #mountRefused = new Set<string>();
  /** Registries where a mount (a self-mount included) once answered 201: their 202 means "absent". */
  readonly #mountWorks = new Set<string>();

  constructor(deps: BlobTransferDeps) {
    this.#transport = deps.transport;
    this.#retry = deps.retry;
    this.#chunkSize = deps.chunkSize;
    this.#log = deps.log;
  }

  /** GET a whole blob into memory, refusing more than `maxBytes`, digest verified. */
  async read(repo: Repository, digest: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    checkDigest(digest, `blob in ${formatRepository(repo)}`);
    const reply = await this.#transport.request(
      {
        kind: 'GET blob',
        method: 'GET',
        registry: repo.registry,
        url: `/v2/${repo.repository}/blobs/${digest}`,
        scopes: [pullScope(repo)],
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

  /** Stream a blob; the caller must consume or destroy the stream. The digest is verified as it flows. */
  async open(repo: Repository, descriptor: Descriptor, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    const source = await this.#openStream(repo, descriptor, signal);
    const verifier = new DigestVerifier(descriptor, formatRepository(repo));
    // The verifier only ever holds back one chunk; errors on either side destroy both.
    pipeline(source, verifier, () => {});
    verifier.once('close', () => (this.#transport.stats.bytesDownloaded += verifier.bytes));
    return verifier;
  }

  /** Upload bytes as a blob unless present (POST + PUT; a present blob costs one request). */
  async push(repo: Repository, bytes: Buffer, signal?: AbortSignal): Promise<{ digest: string; outcome: BlobCopyOutcome }> {
    const digest = digestOf(bytes);
    const descriptor = { mediaType: MediaTypes.ociLayer, digest, size: bytes.length };
    const outcome = await this.copy({ repo, descriptor, bytes }, repo, signal);
    return { digest, outcome };
  }

  /**
   * Same registry: one cross-repo mount POST (201 'mounted'). Different registries: the POST mounts from the
   * target repository itself, so that 201 means 'present' and 202 starts the upload; then GET → PUT.
   *
   * Decision (docs/copy.md#blob-existence): the existence check is folded into the upload start instead of a
   * HEAD per blob: a new blob costs POST + GET + PUT, a present one just the POST. The OCI distribution spec
   * says a registry that cannot mount answers 202 with an upload location, so nothing is lost where mounts
   * are unsupported. (push and a copy within one repository use the same form.)
   */
  async copy(source: BlobSource, target: Repository, signal?: AbortSignal): Promise<BlobCopyOutcome> {
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
      // Decision (docs/copy.md#blob-existence): ECR and Artifactory answer 202 to every mount, so their 202
      // says nothing about presence. Until a registry has answered a mount with 201, HEAD before uploading.
      if (!this.#mountWorks.has(target.registry) && source.targetIsNew !== true && (await this.#exists(target, descriptor.digest, signal))) return 'present';
      streaming();
      return this.#upload(location, source, target, signal);
    });
  }

  /** HEAD the blob in `repo`: whether it is there. Failures count as "don't know" (false). */
  async #exists(repo: Repository, digest: string, signal?: AbortSignal): Promise<boolean> {
    try {
      const reply = await this.#transport.request(
        {
          kind: 'HEAD blob',
          method: 'HEAD',
          registry: repo.registry,
          url: `/v2/${repo.repository}/blobs/${digest}`,
          scopes: [pullScope(repo)],
          // A redirect to storage means "there"; following it would HEAD a URL presigned for GET (S3: 403).
          accept: [200, 302, 307, 404],
          subject: blobSubject('HEAD', repo, digest),
        },
        signal,
      );
      return reply.status !== 404;
    } catch (e) {
      if (isPromoteError(e, 'ABORTED')) throw e;
      return false;
    }
  }

  async #openStream(repo: Repository, descriptor: Descriptor, signal?: AbortSignal): Promise<Readable> {
    checkDigest(descriptor.digest, `blob in ${formatRepository(repo)}`);
    const reply = await this.#transport.request(
      {
        kind: 'GET blob',
        method: 'GET',
        registry: repo.registry,
        url: `/v2/${repo.repository}/blobs/${descriptor.digest}`,
        scopes: [pullScope(repo)],
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

  /** POST with `mount`/`from`: `undefined` when the blob is there now (201), else the upload location. */
  async #startUpload(target: Repository, digest: string, from: string, signal?: AbortSignal): Promise<URL | undefined> {
    // Keyed by source: whether we may pull it for a mount does not depend on the target.
    const refusedKey = `${target.registry} ${from}`;
    const crossRepo = from !== target.repository;
    const post = (mount: boolean): Promise<Reply> =>
      this.#transport.request(
        {
          kind: 'POST upload',
          method: 'POST',
          registry: target.registry,
          url: `/v2/${target.repository}/blobs/uploads/${mount ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : ''}`,
          headers: { 'content-length': '0' },
          // A cross-repo mount needs pull on the source in the same token as pull,push on the target.
          scopes: mount && crossRepo ? [pushScope(target), repositoryScope(from, ['pull'])] : [pushScope(target)],
          accept: [201, 202],
          retry: true, // an upload session nobody uses is harmless; registries expire them
          subject: blobSubject('POST', target, digest),
        },
        signal,
      );

    let reply: Reply;
    try {
      reply = await this.#post(post, crossRepo, refusedKey, target, from);
    } catch (e) {
      // ECR does not create repositories on push: 404 NAME_UNKNOWN is a missing repository, not a missing blob.
      if (!isPromoteError(e, 'BLOB_NOT_FOUND')) throw e;
      throw new PromoteError('REPOSITORY_NOT_FOUND', `repository ${formatRepository(target)} does not exist and was not created by the upload (${e.message}); create it first (AWS ECR does not create repositories on push)`, { cause: e });
    }
    if (reply.status === 201) {
      this.#mountWorks.add(target.registry);
      return undefined;
    }
    return locationOf(reply, target, digest);
  }

  async #post(post: (mount: boolean) => Promise<Reply>, crossRepo: boolean, refusedKey: string, target: Repository, from: string): Promise<Reply> {
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
    return reply;
  }

  /** PUT `<location>?digest=` with the whole blob; PATCH fallback; a 307 re-opens the source once. */
  async #upload(location: URL, source: BlobSource, target: Repository, signal?: AbortSignal): Promise<'uploaded' | 'present'> {
    const { digest } = source.descriptor;
    let url = withQuery(location, 'digest', digest);
    for (let hop = 0; ; hop++) {
      const reply = await this.#sendBlob({ kind: 'PUT upload', method: 'PUT', url, accept: [201, 202, 307, 400, 413, 416] }, source, target, signal);
      if (reply.status === 201) return 'uploaded';
      if (reply.status === 307 && hop === 0) {
        // Decision (docs/copy.md#redirects): a streamed PUT can't replay its body, so it never follows a 307;
        // we re-open the source and PUT to the new location ourselves, once. A 307 repeats the request
        // elsewhere, so the Location should carry the digest already; add it if not.
        url = locationOf(reply, target, digest);
        if (!url.searchParams.has('digest')) url = withQuery(url, 'digest', digest);
        continue;
      }
      const text = reply.body.toString('utf8');
      if (reply.status === 400 && CANNOT_UPDATE.test(text)) {
        // Nexus (redeploy disabled) refuses to overwrite a blob it has; chunks would be refused the same way.
        if (await this.#exists(target, digest, signal)) return 'present';
        throw errorForStatus(reply.status, text, blobSubject('PUT', target, digest));
      }
      const invalidUpload = reply.status === 400 && distributionErrorCodes(text).includes('BLOB_UPLOAD_INVALID');
      if (reply.status === 202 || reply.status === 416 || reply.status === 413 || invalidUpload) {
        // The registry did not take the blob in one PUT: fall back to PATCH chunks and a closing PUT. A 413
        // (a proxy's body limit) needs real chunks, a stream included.
        await this.#uploadChunked(source, target, signal, reply.status === 413);
        return 'uploaded';
      }
      throw errorForStatus(reply.status, reply.body.toString('utf8'), blobSubject('PUT', target, digest));
    }
  }

  async #uploadChunked(source: BlobSource, target: Repository, signal?: AbortSignal, split = false): Promise<void> {
    const { digest, size } = source.descriptor;
    // A fresh session: after a refused monolithic PUT, the old one's state is unknown.
    let location = await this.#startUpload(target, digest, target.repository, signal);
    if (location === undefined) return; // it arrived meanwhile
    if (split && source.bytes === undefined) location = await this.#patchStream(location, source, target, signal);
    // A stream is sent as one PATCH (unless `split`); bytes in memory in chunkSize pieces.
    const step = source.bytes !== undefined ? this.#chunkSize : Math.max(size, 1);
    for (let start = split && source.bytes === undefined ? size : 0; start < size; start += step) {
      const end = Math.min(size, start + step);
      const chunk: BlobSource = source.bytes !== undefined ? { ...source, bytes: source.bytes.subarray(start, end) } : source;
      const reply = await this.#sendBlob(
        { kind: 'PATCH upload', method: 'PATCH', url: location, accept: [202, 204], range: `${start}-${end - 1}`, length: end - start },
        chunk,
        target,
        signal,
      );
      // Some registries answer a PATCH with 204 and no Location: the session URL stays the same.
      if (header(reply.headers, 'location') !== undefined || reply.status === 202) location = locationOf(reply, target, digest);
    }
    await this.#transport.request(
      {
        kind: 'PUT upload',
        method: 'PUT',
        registry: target.registry,
        url: withQuery(location, 'digest', digest),
        headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
        scopes: [pushScope(target)],
        accept: [201],
        retry: false,
        commit: true,
        subject: blobSubject('PUT', target, digest),
      },
      signal,
    );
  }

  /** PATCHes a streamed source in chunkSize pieces read from one GET, its digest verified across all of them. */
  async #patchStream(location: URL, source: BlobSource, target: Repository, signal?: AbortSignal): Promise<URL> {
    const { digest, size } = source.descriptor;
    const input = await this.#openStream(source.repo, source.descriptor, signal);
    const verifier = new DigestVerifier(source.descriptor, formatRepository(source.repo));
    pipeline(input, verifier, () => {});
    const chunks = verifier[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let leftover: Buffer | undefined;
    async function* take(n: number): AsyncGenerator<Buffer> {
      while (n > 0) {
        let buf = leftover;
        leftover = undefined;
        if (buf === undefined) {
          const next = await chunks.next();
          if (next.done === true) return;
          buf = next.value;
        }
        if (buf.length > n) {
          leftover = buf.subarray(n);
          buf = buf.subarray(0, n);
        }
        n -= buf.length;
        yield buf;
      }
    }
    try {
      for (let start = 0; start < size; start += this.#chunkSize) {
        const end = Math.min(size, start + this.#chunkSize);
        const reply = await this.#transport.request(
          {
            kind: 'PATCH upload',
            method: 'PATCH',
            registry: target.registry,
            url: location,
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start), 'content-range': `${start}-${end - 1}` },
            body: Readable.from(take(end - start), { objectMode: false }),
            scopes: [pushScope(target)],
            accept: [202, 204],
            retry: false,
            commit: true,
            subject: blobSubject('PATCH', target, digest),
          },
          signal,
        );
        this.#transport.stats.bytesUploaded += end - start;
        if (header(reply.headers, 'location') !== undefined || reply.status === 202) location = locationOf(reply, target, digest);
      }
      return location;
    } catch (e) {
      if (verifier.failure) {
        throw new PromoteError('DIGEST_MISMATCH', `${verifier.failure.message}; upload to ${formatRepository(target)} aborted`, { cause: verifier.failure });
      }
      throw e;
    } finally {
      this.#transport.stats.bytesDownloaded += verifier.bytes;
      if (!input.readableEnded) discard(input);
      if (!verifier.readableEnded) discard(verifier);
    }
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
    const stats = this.#transport.stats;
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(req.length ?? size),
      ...(req.range !== undefined && { 'content-range': req.range }),
    };
    const call = (body: Buffer | Readable): Call => ({
      commit: true,
      kind: req.kind,
      method: req.method,
      registry: target.registry,
      url: req.url,
      headers,
      body,
      scopes: [pushScope(target)],
      accept: req.accept,
      retry: false, // not idempotent; the whole copy restarts from the POST instead
      subject: blobSubject(req.method, target, digest),
    });

    if (source.bytes !== undefined) {
      const reply = await this.#transport.request(call(source.bytes), signal);
      stats.bytesUploaded += source.bytes.length;
      return reply;
    }

    const input = await this.#openStream(source.repo, source.descriptor, signal);
    const verifier = new DigestVerifier(source.descriptor, formatRepository(source.repo));
    pipeline(input, verifier, () => {});
    try {
      return await this.#transport.request(call(verifier), signal);
    } catch (e) {
      if (verifier.failure) {
        throw new PromoteError('DIGEST_MISMATCH', `${verifier.failure.message}; upload to ${formatRepository(target)} aborted`, { cause: verifier.failure });
      }
      throw e;
    } finally {
      stats.bytesDownloaded += verifier.bytes;
      stats.bytesUploaded += verifier.bytes;
      // An early answer (error, 307) leaves the source half-read: release its connection.
      if (!input.readableEnded) discard(input);
      if (!verifier.readableEnded) discard(verifier);
    }
  }

  async #withCopyRetries(digest: string, target: Repository, signal: AbortSignal | undefined, run: (streaming: () => void) => Promise<BlobCopyOutcome>): Promise<BlobCopyOutcome> {
    let authRestarted = false;
    for (let attempt = 1; ; attempt++) {
      let streaming = false;
      try {
        return await run(() => (streaming = true));
      } catch (e) {
        // A token that expired while the bytes flowed (401 on the PUT/PATCH): the transport dropped it; start
        // the blob once more with a fresh one.
        if (streaming && !authRestarted && isPromoteError(e, 'REGISTRY_UNAUTHORIZED')) {
          authRestarted = true;
          this.#log?.debug({ registry: target.registry, repository: target.repository, digest }, 'blob copy restarts after a 401');
          attempt--;
          continue;
        }
        // Only failures while bytes flowed restart the copy: the POST and GET already retried on their own,
        // and a digest mismatch would only repeat.
        const again = streaming && isPromoteError(e) && e.retryable && attempt < this.#retry.maxAttempts;
        if (!again) throw e;
        // Decision (docs/copy.md#commit): the body may have arrived and been committed although its answer did
        // not (a timeout or reset while the registry stored it). Look before sending the whole blob again.
        if (await this.#exists(target, digest, signal)) return 'uploaded';
        // Never sooner than a Retry-After asks: one longer than we wait for ends the copy (the job is rescheduled).
        if (e.retryAfterMs !== undefined && e.retryAfterMs > this.#retry.maxRetryAfterMs) throw e;
        const wait = e.retryAfterMs ?? (e.code === 'REGISTRY_THROTTLED' ? throttleDelay(this.#retry, attempt) : backoffDelay(this.#retry, attempt));
        this.#log?.debug({ registry: target.registry, repository: target.repository, digest, attempt, code: e.code }, 'blob copy restarts');
        await sleep(wait, signal);
      }
    }
  }
}

// ---------------------------------------------------------------- helpers

/** Nexus' answer to a PUT of a blob it already holds when redeploy is disabled. */
const CANNOT_UPDATE = /cannot be updated|does not allow updating/i;

function blobSubject(method: string, repo: Repository, digest: string): RequestSubject {
  return { method, registry: repo.registry, repository: repo.repository, what: `blob ${digest} in ${formatRepository(repo)}`, notFound: 'BLOB_NOT_FOUND' };
}

/** The upload location a POST, PATCH or 307 answered with, resolved against the request. */
function locationOf(reply: Reply, target: Repository, digest: string): URL {
  const location = header(reply.headers, 'location');
  if (location === undefined) {
    throw new PromoteError('REGISTRY_PROTOCOL', `${blobSubject('POST', target, digest).what}: registry ${target.registry} answered ${reply.status} without a Location`);
  }
  return new URL(location, reply.url);
}

function withQuery(url: URL, key: string, value: string): URL {
  const out = new URL(url);
  out.searchParams.append(key, value);
  return out;
}
