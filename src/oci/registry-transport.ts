import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { Agent, EnvHttpProxyAgent, interceptors, type Dispatcher } from 'undici';
import { PromoteError, asAbort, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { parseAuthChallenge, repositoryScope } from './auth-challenge.js';
import { Authenticator } from './authenticator.js';
import { registryKey, type Keychain } from './keychain.js';
import { errorForNetwork, errorForStatus, isRetryableStatus, type RequestSubject } from './registry-errors.js';
import { backoffDelay, parseRetryAfter, sleep, throttleDelay, type RetryPolicy } from './retry-policy.js';
import type { Repository, RequestStats } from './types.js';

/** Passed to `onRequest` before every HTTP request (retries and token requests included). */
export interface RequestEvent {
  /** `GET manifest`, `POST upload`, `GET token`, … */
  readonly kind: string;
  readonly method: string;
  readonly registry: string;
  /** Path without the query string. */
  readonly path: string;
}

/** Why the transport tries a request again. */
export type RetryReason = 'throttled' | 'server-error' | 'network' | 'timeout' | 'auth-refresh';

/** One HTTP request attempt, told to {@link RegistryObserver.requestFinished} once it has an answer or failed. */
export interface RequestFinishedEvent {
  readonly registry: string;
  /** `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE`. */
  readonly method: string;
  /** `GET manifest`, `POST upload`, `GET token`, … (a fixed set, as in {@link RequestEvent}). */
  readonly kind: string;
  /** The HTTP status; 0 when no answer came (connection refused or reset, timeout, TLS failure). */
  readonly status: number;
  /**
   * From sending the request to its response headers (a PUT's includes sending its body), or to the
   * failure. A body read afterwards is not included.
   */
  readonly durationMs: number;
}

/** The transport is about to try a request again (after its backoff or Retry-After wait is chosen). */
export interface RetryEvent {
  readonly registry: string;
  readonly reason: RetryReason;
}

/**
 * Told about every request attempt and every retry: the seam for metrics, so that `oci/` imports no
 * metrics library. Calls are synchronous and must not throw; an observer that throws is ignored (the
 * request goes on as if it had not been told).
 */
export interface RegistryObserver {
  /** Once per attempt (retries, re-challenges and token requests included). */
  requestFinished(event: RequestFinishedEvent): void;
  /** Once per retry: `throttled` (429), `server-error` (5xx), `timeout` (408 or a network timeout), `network`, `auth-refresh` (a 401 answered with new credentials). */
  retried(event: RetryEvent): void;
}

/**
 * What the transport runs on, every default already applied: `RegistryClientOptions` documents the
 * defaults and resolves them, so that they live in one place.
 */
export interface RegistryTransportConfig {
  readonly keychain: Keychain;
  /** Registries (`host:port` or `host`) spoken to over plain HTTP. */
  readonly insecure: readonly string[];
  /** PEM file with extra CA certificates, trusted in addition to Node's defaults. */
  readonly caFile: string | undefined;
  /** Roots of per-registry `<root>/<host:port>/` certificate directories (Docker/Podman `certs.d`). @defaultValue none */
  readonly certsDirs?: readonly string[];
  /** The operating system's CA certificates, trusted besides Node's; `undefined` trusts only Node's. @defaultValue none */
  readonly systemCa?: () => readonly string[];
  /** Sockets per registry and direction (reads and writes have separate pools). */
  readonly connectionsPerRegistry: number;
  readonly retry: RetryPolicy;
  /** `bodyMs` is the longest gap between chunks. */
  readonly timeouts: { readonly connectMs: number; readonly headersMs: number; readonly bodyMs: number; readonly commitMs: number };
  readonly userAgent: string;
  /** Debug line per request: method, registry, path, status, ms — never headers. */
  readonly logger: Logger | undefined;
  /** Awaited before every request. */
  readonly onRequest: ((event: RequestEvent, signal?: AbortSignal) => void | Promise<void>) | undefined;
  /** Told about every attempt and retry. */
  readonly observer: RegistryObserver | undefined;
  /** Proxies for both pools (empty strings: none); `noProxy` as in `NO_PROXY`. @defaultValue none */
  readonly proxy?: { readonly httpProxy: string; readonly httpsProxy: string; readonly noProxy: string };
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One HTTP request as the registry operations describe it. */
export interface Call {
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
  /** A blob PUT/PATCH: wait `timeouts.commitMs` (not `headersMs`) for the answer once the body is sent. */
  readonly commit?: boolean;
  readonly maxBytes?: number;
  readonly tooLarge?: (bytes: number) => PromoteError;
  readonly subject: RequestSubject;
}

/** An accepted answer: the body read whole, or (`stream`) handed over unread. */
export interface Reply {
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
  readonly agents: readonly Dispatcher[];
}

/**
 * The one request path to registries over undici: per-registry connection pools, TLS trust, auth,
 * retries, body limits, error classification, request stats and the `onRequest` hook.
 */
export class RegistryTransport {
  readonly stats: RequestStats = { requests: 0, byKind: {}, bytesUploaded: 0, bytesDownloaded: 0 };
  readonly #retry: RetryPolicy;
  readonly #insecure: Set<string>;
  readonly #caFile: string | undefined;
  readonly #connections: number;
  readonly #timeouts: { connectMs: number; headersMs: number; bodyMs: number; commitMs: number };
  readonly #userAgent: string;
  readonly #log: Logger | undefined;
  readonly #onRequest: RegistryTransportConfig['onRequest'];
  readonly #observer: RegistryObserver | undefined;
  readonly #proxy: { readonly httpProxy: string; readonly httpsProxy: string; readonly noProxy: string };
  readonly #auth: Authenticator;
  readonly #dispatchers = new Map<string, Promise<Dispatchers>>();
  #ca: Promise<string[]> | undefined;
  readonly #certsDirs: readonly string[];
  readonly #systemCa: (() => readonly string[]) | undefined;
  #closed = false;

  constructor(config: RegistryTransportConfig) {
    this.#retry = config.retry;
    this.#insecure = new Set(config.insecure.map(registryKey));
    this.#caFile = config.caFile;
    this.#certsDirs = config.certsDirs ?? [];
    this.#systemCa = config.systemCa;
    this.#connections = config.connectionsPerRegistry;
    this.#timeouts = { ...config.timeouts };
    this.#userAgent = config.userAgent;
    this.#log = config.logger;
    this.#onRequest = config.onRequest;
    this.#observer = config.observer;
    this.#proxy = { httpProxy: '', httpsProxy: '', noProxy: '', ...config.proxy };
    this.#auth = new Authenticator({
      keychain: config.keychain,
      fetch: async (req, signal) => {
        const reply = await this.request(
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

  /**
   * Every HTTP request goes through here: connection caps (per-registry agents), auth (token flow, one
   * re-challenge on 401), retries of transient failures with backoff and Retry-After, body limits,
   * error classification, stats and the observer. Every response body is read, dumped or handed over as a stream.
   */
  async request(call: Call, signal?: AbortSignal): Promise<Reply> {
    const base = this.#baseUrl(call.registry);
    const url = typeof call.url === 'string' && call.url.startsWith('/') ? new URL(call.url, base) : new URL(call.url);
    const replayable = !(call.body instanceof Readable);
    const retry = (call.retry ?? (call.method === 'GET' || call.method === 'HEAD')) && replayable;
    // Registry credentials go to the registry's own origin only (not to storage or a foreign upload host).
    const sendAuth = call.scopes !== undefined && url.origin === base.origin;
    let scopes = call.scopes ?? [];
    let reauthed = false;
    let refreshed = false;
    const dispatchers = await this.#dispatchersFor(call.registry);
    const dispatcher = call.follow ? dispatchers.follow : call.method === 'GET' || call.method === 'HEAD' ? dispatchers.read : dispatchers.write;

    const begun = performance.now();
    let throttles = 0;
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
          ...(call.commit === true && { headersTimeout: this.#timeouts.commitMs }),
        });
      } catch (e) {
        const { error, transient } = errorForNetwork(e, call.subject, signal);
        this.#logRequest(call, url, undefined, started, error.code);
        this.#finished(call, 0, started);
        const wait = backoffDelay(this.#retry, attempt);
        if (retry && transient && attempt < this.#retry.maxAttempts && performance.now() - begun + wait <= this.#retry.deadlineMs) {
          this.#retried(call, networkRetryReason(error));
          await sleep(wait, signal);
          continue;
        }
        throw error;
      }
      const status = response.statusCode;
      this.#logRequest(call, url, status, started);
      this.#finished(call, status, started);

      if (status === 401 && sendAuth && !replayable && !reauthed) {
        // A streamed body cannot be sent again here: drop the refused token so that the caller's restart
        // (BlobTransfer restarts a blob once on REGISTRY_UNAUTHORIZED) fetches a fresh one.
        await dump(response.body);
        const challenge = parseAuthChallenge(response.headers['www-authenticate']);
        if (challenge !== undefined) this.#auth.learn(call.registry, challenge);
        if (authorization !== undefined) this.#auth.invalidate(call.registry, authorization);
        throw errorForStatus(401, '', call.subject);
      }
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
            this.#retried(call, 'auth-refresh');
            continue;
          }
          // The same header again (Basic, a registry token): only fresh credentials can help.
          if (authorization !== undefined && !refreshed) {
            refreshed = true;
            if (await this.#auth.refreshCredential(call.registry)) {
              attempt--;
              this.#retried(call, 'auth-refresh');
              continue;
            }
          }
        }
        if (call.accept.includes(401)) return { status, headers: response.headers, url, body: Buffer.alloc(0) };
        throw errorForStatus(401, '', call.subject);
      }
      if (status === 401 && sendAuth && replayable && reauthed && !refreshed && authorization !== undefined) {
        // Refused even with a fresh token (or fresh Basic): the credentials themselves may have expired.
        await dump(response.body);
        refreshed = true;
        if (await this.#auth.refreshCredential(call.registry)) {
          attempt--;
          this.#retried(call, 'auth-refresh');
          continue;
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
            this.#retried(call, networkRetryReason(error));
            await sleep(backoffDelay(this.#retry, attempt), signal);
            continue;
          }
          throw error;
        }
      }

      const text = await readErrorText(response);
      const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
      // Decision (docs/copy.md#retries): a 429 is retried until the deadline with a long backoff (seconds to a
      // minute), other transient answers `maxAttempts` times with a short one; never sooner than Retry-After.
      const throttled = status === 429;
      if (retry && isRetryableStatus(status) && (throttled || attempt < this.#retry.maxAttempts)) {
        if (throttled) throttles++;
        const wait = retryAfterMs ?? (throttled ? throttleDelay(this.#retry, throttles) : backoffDelay(this.#retry, attempt));
        const withinDeadline = performance.now() - begun + wait <= this.#retry.deadlineMs;
        if ((retryAfterMs === undefined || retryAfterMs <= this.#retry.maxRetryAfterMs) && withinDeadline) {
          this.#retried(call, throttled ? 'throttled' : status === 408 ? 'timeout' : 'server-error');
          await sleep(wait, signal);
          continue;
        }
      }
      throw errorForStatus(status, text, call.subject, retryAfterMs);
    }
  }

  /** Closes every connection; idempotent. Requests after close fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = await Promise.allSettled(this.#dispatchers.values());
    this.#dispatchers.clear();
    await Promise.all(all.flatMap((r) => (r.status === 'fulfilled' ? r.value.agents.map((a) => a.close()) : [])));
  }

  #logRequest(call: Call, url: URL, status: number | undefined, started: number, error?: ErrorCode): void {
    this.#log?.debug(
      { method: call.method, registry: call.registry, path: url.pathname, status, ms: Math.round(performance.now() - started), ...(error && { error }) },
      'registry request',
    );
  }

  #finished(call: Call, status: number, started: number): void {
    if (this.#observer === undefined) return;
    const event = { registry: call.registry, method: call.method, kind: call.kind, status, durationMs: performance.now() - started };
    try {
      this.#observer.requestFinished(event);
    } catch (e) {
      this.#log?.debug({ error: (e as Error).message }, 'registry observer failed');
    }
  }

  #retried(call: Call, reason: RetryReason): void {
    if (this.#observer === undefined) return;
    try {
      this.#observer.retried({ registry: call.registry, reason });
    } catch (e) {
      this.#log?.debug({ error: (e as Error).message }, 'registry observer failed');
    }
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
      dispatchers = this.#createDispatchers(registry);
      this.#dispatchers.set(registry, dispatchers);
    }
    return dispatchers;
  }

  async #createDispatchers(registry: string): Promise<Dispatchers> {
    this.#ca ??= this.#loadCa();
    const base = await this.#ca;
    const local = await readCertsDirs(this.#certsDirs, registry);
    const ca = local.ca.length > 0 ? [...new Set([...base, ...local.ca])] : base;
    let tlsOptions: TlsTrust;
    try {
      // One context per registry: `ca` on every connect would parse some 800 certificates per socket.
      tlsOptions = { secureContext: tls.createSecureContext({ ca, ...(local.cert !== undefined && { cert: local.cert, key: local.key }) }) };
    } catch (e) {
      throw new PromoteError('TLS_CONFIG', `TLS settings for registry ${registry} are unusable: ${(e as Error).message}`, { cause: e });
    }
    const options: Agent.Options = {
      connections: this.#connections,
      // HTTP/2 multiplexes; `connections` would then cap sockets, not concurrent requests.
      allowH2: false,
      headersTimeout: this.#timeouts.headersMs,
      bodyTimeout: this.#timeouts.bodyMs,
      connect: { timeout: this.#timeouts.connectMs, ...tlsOptions },
    };
    // Decision (docs/copy.md#connections): two agents per registry, reads and writes. A blob streamed from
    // and to the same registry (a refused mount) holds a read socket until its PUT gets a write socket; with
    // one capped pool, `connections` such copies could each hold a GET and wait forever for a PUT.
    const read = this.#agent(options, tlsOptions);
    const write = this.#agent(options, tlsOptions);
    // Cross-origin hops drop Authorization (pre-signed storage URLs must not see our token).
    const follow = read.compose(interceptors.redirect({ maxRedirections: 5, throwOnMaxRedirect: true }));
    return { read, write, follow, agents: [read, write] };
  }

  /**
   * A plain Agent, or with HTTP(S)_PROXY set an EnvHttpProxyAgent (NO_PROXY honoured): CONNECT for https
   * registries, absolute-URI forwarding for plain-HTTP ones. Through a tunnel the registry's TLS takes
   * `requestTls`, not `connect`.
   */
  #agent(options: Agent.Options, trust: TlsTrust): Dispatcher {
    const { httpProxy, httpsProxy, noProxy } = this.#proxy;
    if (httpProxy === '' && httpsProxy === '') return new Agent(options);
    return new EnvHttpProxyAgent({ ...options, httpProxy, httpsProxy, noProxy, connectTimeout: this.#timeouts.connectMs, requestTls: trust, proxyTls: trust });
  }

  /**
   * Decision (docs/copy.md#trust): `ca` replaces Node's trust store, so the list is built whole: Node's
   * defaults (bundled roots, NODE_EXTRA_CA_CERTS), the operating system's store, and the CA file.
   */
  async #loadCa(): Promise<string[]> {
    const all = [...tls.getCACertificates('default')];
    if (this.#systemCa !== undefined) {
      try {
        all.push(...this.#systemCa());
      } catch (e) {
        this.#log?.debug({ error: (e as Error).message }, 'system CA store unreadable');
      }
    }
    if (this.#caFile !== undefined) {
      let pem: string;
      try {
        pem = await readFile(this.#caFile, 'utf8');
      } catch (e) {
        throw new PromoteError('TLS_CONFIG', `cannot read CA file ${this.#caFile}: ${(e as Error).message}`, { cause: e });
      }
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new PromoteError('TLS_CONFIG', `CA file ${this.#caFile} holds no PEM certificate`);
      all.push(pem);
    }
    return [...new Set(all)];
  }
}

interface TlsTrust {
  readonly secureContext: tls.SecureContext;
}

/**
 * What `<dir>/<registry>/` holds in Docker's and Podman's layout (`/etc/docker/certs.d/host:port/`): `*.crt`
 * CA certificates, `*.cert` + `*.key` a client certificate and its key (mTLS). Missing directories are fine.
 */
export async function readCertsDirs(dirs: readonly string[], registry: string): Promise<{ ca: string[]; cert?: string; key?: string }> {
  const ca: string[] = [];
  let client: { cert: string; key: string } | undefined;
  for (const root of dirs) {
    const dir = join(root, registry);
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw new PromoteError('TLS_CONFIG', `cannot read ${dir}: ${(e as Error).message}`, { cause: e });
    }
    const read = async (name: string): Promise<string> => {
      try {
        return await readFile(join(dir, name), 'utf8');
      } catch (e) {
        throw new PromoteError('TLS_CONFIG', `cannot read ${join(dir, name)}: ${(e as Error).message}`, { cause: e });
      }
    };
    for (const name of names) {
      if (name.endsWith('.crt')) ca.push(await read(name));
      if (name.endsWith('.cert') && client === undefined) {
        const keyName = `${name.slice(0, -'.cert'.length)}.key`;
        if (!names.includes(keyName)) throw new PromoteError('TLS_CONFIG', `${join(dir, name)} has no key ${keyName} beside it`);
        client = { cert: await read(name), key: await read(keyName) };
      }
    }
  }
  return { ca, ...client };
}

/** A transient network failure as a retry reason: timeouts apart, since they hint at a slow registry, not a broken path. */
function networkRetryReason(error: PromoteError): RetryReason {
  return error.code === 'REGISTRY_TIMEOUT' ? 'timeout' : 'network';
}

// ---------------------------------------------------------------- helpers for the registry operations

/** The token scope to read `repo`. */
export function pullScope(repo: Repository): string {
  return repositoryScope(repo.repository, ['pull']);
}

/** The token scope to write `repo` (a push also reads: existence checks, mounts). */
export function pushScope(repo: Repository): string {
  return repositoryScope(repo.repository, ['pull', 'push']);
}

/** A response header's (first) value. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Drops a body and its connection; undici reports a destroy as an 'error' that nobody needs to see. */
export function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

// ---------------------------------------------------------------- body handling

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

async function dump(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump();
  } catch {
    // the connection is gone; nothing left to release
  }
}
