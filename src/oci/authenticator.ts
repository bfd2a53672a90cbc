import { PromoteError, asAbort } from '../errors.js';
import { mergeScopes, scopesCover, type AuthChallenge } from './auth-challenge.js';
import type { Credential, Keychain } from './keychain.js';

/** How the authenticator reaches a token server; the registry client passes its own request path. */
export type TokenFetch = (
  request: { url: string; method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; registry: string },
  signal?: AbortSignal,
) => Promise<{ status: number; body: Buffer }>;

export interface AuthenticatorOptions {
  keychain: Keychain;
  fetch: TokenFetch;
  /** @defaultValue `Date.now` */
  now?: () => number;
  /** Sent as `client_id` in the refresh-token flow. @defaultValue 'bundle-promoter' */
  clientId?: string;
}

interface CachedToken {
  readonly scopes: readonly string[];
  readonly token: string;
  readonly expiresAt: number;
}

const DEFAULT_EXPIRES_IN_S = 60; // distribution token spec: the default when the server omits expires_in

/**
 * Turns (registry, scopes) into an `Authorization` header. It knows nothing until a 401 teaches it a
 * registry's challenge; afterwards it fetches tokens for new scopes before the request, so each new
 * repository costs one token request, not a 401 round trip as well. Tokens are cached per registry and
 * scope set until shortly before they expire, and a token for `pull,push` also serves `pull`.
 */
export class Authenticator {
  readonly #keychain: Keychain;
  readonly #fetch: TokenFetch;
  readonly #now: () => number;
  readonly #clientId: string;
  readonly #challenges = new Map<string, AuthChallenge>();
  readonly #tokens = new Map<string, CachedToken[]>();
  readonly #inflight = new Map<string, Promise<CachedToken>>();
  readonly #credentials = new Map<string, Promise<Credential | undefined>>();

  constructor(options: AuthenticatorOptions) {
    this.#keychain = options.keychain;
    this.#fetch = options.fetch;
    this.#now = options.now ?? Date.now;
    this.#clientId = options.clientId ?? 'bundle-promoter';
  }

  /** Remembers how `registry` wants to be authenticated (from a 401's `WWW-Authenticate`). */
  learn(registry: string, challenge: AuthChallenge): void {
    const known = this.#challenges.get(registry);
    // A new realm or service invalidates what we hold; a mere insufficient_scope answer does not.
    if (known?.scheme !== challenge.scheme || (challenge.scheme === 'bearer' && known.scheme === 'bearer' && (known.realm !== challenge.realm || known.service !== challenge.service))) {
      this.#tokens.delete(registry);
    }
    this.#challenges.set(registry, challenge);
  }

  knows(registry: string): boolean {
    return this.#challenges.has(registry);
  }

  /** Drops a header that the registry refused, so that the next call fetches a fresh token. */
  invalidate(registry: string, authorization: string): void {
    const tokens = this.#tokens.get(registry);
    if (tokens) this.#tokens.set(registry, tokens.filter((t) => `Bearer ${t.token}` !== authorization));
  }

  /**
   * Decision (docs/copy.md#expiring-credentials): credentials from a helper or a config file may expire
   * while a long promotion runs. After a refusal, drop the cached credential and tokens and ask the keychain
   * again; `true` when it now answers something different (worth another try).
   */
  async refreshCredential(registry: string): Promise<boolean> {
    const before = await this.#credentials.get(registry)?.catch(() => undefined);
    this.#credentials.delete(registry);
    this.#tokens.delete(registry);
    this.#keychain.forget?.(registry);
    const after = await this.#credential(registry);
    return JSON.stringify(after) !== JSON.stringify(before);
  }

  /** The header for a request needing `scopes`, or `undefined` to go anonymously (nothing learnt yet). */
  async authorization(registry: string, scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    try {
      return await this.#authorization(registry, scopes, signal);
    } catch (e) {
      // The token server refused the credentials: they may have expired; ask the keychain once more.
      if (!(e instanceof PromoteError && e.code === 'REGISTRY_UNAUTHORIZED') || !(await this.refreshCredential(registry))) throw e;
      return this.#authorization(registry, scopes, signal);
    }
  }

  async #authorization(registry: string, scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.#challenges.get(registry);
    if (challenge === undefined) return undefined;
    const credential = await this.#credential(registry);
    if (credential !== undefined && 'registryToken' in credential) return `Bearer ${credential.registryToken}`;
    if (challenge.scheme === 'basic') {
      if (credential === undefined || !('username' in credential)) return undefined;
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    }
    const wanted = mergeScopes(scopes);
    const now = this.#now();
    const cached = this.#tokens.get(registry)?.find((t) => t.expiresAt > now && scopesCover(t.scopes, wanted));
    if (cached) return `Bearer ${cached.token}`;

    const key = `${registry} ${wanted.join(' ')}`;
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      // The shared request belongs to no caller: one caller giving up must not fail the others waiting on
      // it. It is bounded by the transport's own timeouts; each caller stops waiting on its own signal.
      pending = this.#fetchToken(registry, challenge, wanted, credential, undefined).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    const token = await untilAborted(pending, signal);
    const list = (this.#tokens.get(registry) ?? []).filter((t) => t.expiresAt > now);
    if (!list.includes(token)) this.#tokens.set(registry, [...list, token]);
    return `Bearer ${token.token}`;
  }

  #credential(registry: string): Promise<Credential | undefined> {
    let credential = this.#credentials.get(registry);
    if (credential === undefined) {
      credential = this.#keychain.resolve(registry);
      this.#credentials.set(registry, credential);
      // A failed helper must not be cached forever: the next request may try again.
      credential.catch(() => this.#credentials.delete(registry));
    }
    return credential;
  }

  async #fetchToken(
    registry: string,
    challenge: Extract<AuthChallenge, { scheme: 'bearer' }>,
    scopes: readonly string[],
    credential: Credential | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const realm = new URL(challenge.realm);
    const where = `${realm.origin}${realm.pathname}`;
    let response: { status: number; body: Buffer } | undefined;
    // Decision (docs/copy.md#credentials): credentials go to a token realm on the registry's own host, or over
    // HTTPS to one in the same domain (Docker Hub: registry-1.docker.io → auth.docker.io); never elsewhere.
    const trusted = realmTrusted(registry, realm);
    if (credential !== undefined && !trusted) credential = undefined;
    if (credential !== undefined && 'identityToken' in credential) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: this.#clientId });
      if (challenge.service !== undefined) form.set('service', challenge.service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      response = await this.#fetch(
        { url: realm.toString(), method: 'POST', registry, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
        signal,
      );
      // A token server without the OAuth2 POST (404): the GET flow, the refresh token as `<token>` password.
      if (response.status === 404) response = undefined;
    }
    if (response === undefined) {
      if (challenge.service !== undefined) realm.searchParams.append('service', challenge.service);
      for (const scope of scopes) realm.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      const basic = credential === undefined ? undefined : 'username' in credential ? credential : 'identityToken' in credential ? { username: '<token>', password: credential.identityToken } : undefined;
      if (basic !== undefined) headers['authorization'] = `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`;
      response = await this.#fetch({ url: realm.toString(), method: 'GET', registry, headers }, signal);
    }

    const asked = scopes.length > 0 ? ` for ${scopes.join(' ')}` : '';
    if (response.status === 401) {
      throw new PromoteError('REGISTRY_UNAUTHORIZED', `registry ${registry}: the token server ${where} refused the credentials${credential ? '' : ' (none configured)'}${asked}`);
    }
    if (response.status === 403) throw new PromoteError('REGISTRY_DENIED', `registry ${registry}: the token server ${where} denied access${asked}`);
    if (response.status !== 200) throw new PromoteError('REGISTRY_PROTOCOL', `registry ${registry}: the token server ${where} answered ${response.status}${asked}`);

    let json: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      json = JSON.parse(response.body.toString('utf8')) as typeof json;
    } catch (e) {
      throw new PromoteError('REGISTRY_PROTOCOL', `registry ${registry}: the token server ${where} did not answer JSON`, { cause: e });
    }
    const token = typeof json.token === 'string' && json.token !== '' ? json.token : json.access_token;
    if (typeof token !== 'string' || token === '') throw new PromoteError('REGISTRY_PROTOCOL', `registry ${registry}: the token server ${where} answered without a token`);
    const lifetimeMs = (typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_EXPIRES_IN_S) * 1000;
    // Refresh a little early so that a token never expires between our check and the registry's.
    const margin = Math.min(10_000, lifetimeMs / 10);
    return { scopes, token, expiresAt: this.#now() + lifetimeMs - margin };
  }
}

/** The realm is on the registry's host, or on HTTPS within its domain (the last two labels of the host name). */
export function realmTrusted(registry: string, realm: URL): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  const realmHost = realm.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (realmHost === host) return true;
  if (realm.protocol !== 'https:' || /^[\d.]+$|:/.test(host)) return false;
  // The registrable domain, roughly: the last two labels, three under a ccTLD's second level (`co.uk`, `com.au`).
  const domain = (h: string): string => {
    const labels = h.split('.');
    const ccSecondLevel = labels.length >= 3 && (labels.at(-1)?.length ?? 0) === 2 && (labels.at(-2)?.length ?? 0) <= 3;
    return labels.slice(ccSecondLevel ? -3 : -2).join('.');
  };
  const canonical = host === 'index.docker.io' || host === 'docker.io' ? 'registry-1.docker.io' : host;
  return domain(realmHost) === domain(canonical) && domain(canonical).includes('.');
}

/** `promise`, or an ABORTED rejection as soon as `signal` fires, whichever comes first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  const aborted = asAbort(signal);
  if (aborted) return Promise.reject(aborted);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(asAbort(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (err: unknown) => { signal.removeEventListener('abort', onAbort); reject(err); },
    );
  });
}
