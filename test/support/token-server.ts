import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Which repository actions the test user may obtain, by repository-name pattern. `*` in a pattern matches any
 * run of characters (slashes included). When several patterns match a repository, the longest pattern wins, so
 * `{ '*': ['pull', 'push'], 'readonly/*': ['pull'] }` makes `readonly/…` pull-only and everything else writable.
 */
export type Acl = Readonly<Record<string, readonly string[]>>;

/** The default ACL: the test user may pull, push and delete in every repository. */
export const DEFAULT_ACL: Acl = { '*': ['pull', 'push', 'delete'] };

/** One entry of the JWT `access` claim (distribution `docs/spec/auth/jwt.md`). */
export interface TokenAccess {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

/** What the token server handed out for one request. */
export interface IssuedToken {
  /** `testuser`, or `''` for an anonymous request. */
  readonly subject: string;
  /** The `scope` query parameters as received. */
  readonly scopes: readonly string[];
  /** What was granted: the requested actions filtered through the ACL. */
  readonly access: readonly TokenAccess[];
}

export interface TokenServerOptions {
  /** Must equal the registry's `auth.token.service`; becomes the `aud` claim. */
  readonly service: string;
  /** Must equal the registry's `auth.token.issuer`; becomes the `iss` claim. */
  readonly issuer: string;
  /** PEM certificate placed in the JWT `x5c` header; the registry's `rootcertbundle` must contain it. */
  readonly certPem: string;
  /** PEM RSA private key matching `certPem`. */
  readonly keyPem: string;
  readonly username: string;
  readonly password: string;
  /** @defaultValue {@link DEFAULT_ACL} */
  readonly acl?: Acl;
  /** Token lifetime (`exp - iat` and `expires_in`). @defaultValue 300 */
  readonly ttlSeconds?: number;
}

/**
 * An in-process bearer-token realm for Distribution's `auth.token` (registry-behaviour.md §5.2): answers
 * `GET /token?service=…&scope=…` with RS256 JWTs carrying an `x5c` header. It enforces scopes: anonymous callers
 * get an empty `access` claim, wrong credentials get 401, the test user gets what the {@link Acl} allows.
 */
export class TokenServer {
  readonly #server: Server;
  readonly #options: TokenServerOptions;
  readonly #key: KeyObject;
  readonly #x5c: string;
  readonly #issued: IssuedToken[] = [];
  #acl: Acl;
  #stopped: Promise<void> | undefined;

  private constructor(server: Server, options: TokenServerOptions) {
    this.#server = server;
    this.#options = options;
    this.#key = createPrivateKey(options.keyPem);
    this.#x5c = new X509Certificate(options.certPem).raw.toString('base64');
    this.#acl = options.acl ?? DEFAULT_ACL;
  }

  /** Listens on 127.0.0.1, port 0. */
  static async start(options: TokenServerOptions): Promise<TokenServer> {
    const server = createServer();
    const tokenServer = new TokenServer(server, options);
    server.on('request', (req, res) => tokenServer.#handle(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return tokenServer;
  }

  /** The realm URL for the registry config and challenges: `http://127.0.0.1:<port>/token`. */
  get realm(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/token`;
  }

  /** Number of tokens issued so far (anonymous ones included). */
  get tokensIssued(): number {
    return this.#issued.length;
  }

  /** Every token issued so far, oldest first. */
  get issued(): readonly IssuedToken[] {
    return this.#issued;
  }

  /** Replaces the ACL for tokens issued from now on (tokens already issued keep their grants). */
  setAcl(acl: Acl): void {
    this.#acl = acl;
  }

  /** Mints a token for `scopes` as the test user would get it, e.g. for `skopeo --dest-registry-token`. */
  mint(scopes: readonly string[]): string {
    return this.#issue(this.#options.username, scopes).token;
  }

  /** Closes the listener and every open connection. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#stopped;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (req.method !== 'GET' || url.pathname !== '/token') return reply(res, 404, { errors: [{ code: 'NOT_FOUND' }] });
    const service = url.searchParams.get('service');
    if (service !== null && service !== this.#options.service) {
      return reply(res, 400, { errors: [{ code: 'INVALID_SERVICE', message: `unknown service ${service}` }] });
    }
    const subject = this.#authenticate(req.headers.authorization);
    if (subject === undefined) {
      res.setHeader('WWW-Authenticate', 'Basic realm="test-token-realm"');
      return reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] });
    }
    const { token, issuedAt } = this.#issue(subject, url.searchParams.getAll('scope'));
    const ttl = this.#options.ttlSeconds ?? 300;
    reply(res, 200, { token, access_token: token, expires_in: ttl, issued_at: issuedAt.toISOString() });
  }

  /** `''` for anonymous, the user name for valid Basic credentials, `undefined` for invalid ones. */
  #authenticate(header: string | undefined): string | undefined {
    if (header === undefined) return '';
    const match = /^Basic\s+(\S+)$/i.exec(header);
    if (match === null) return undefined;
    const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    return colon > 0 && user === this.#options.username && password === this.#options.password ? user : undefined;
  }

  #issue(subject: string, scopes: readonly string[]): { token: string; issuedAt: Date } {
    const access = subject === '' ? [] : scopes.flatMap((scope) => scope.split(' ')).flatMap((s) => this.#grant(s));
    this.#issued.push({ subject, scopes, access });
    const issuedAt = new Date();
    const now = Math.floor(issuedAt.getTime() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [this.#x5c] };
    const claims = {
      iss: this.#options.issuer,
      sub: subject,
      aud: this.#options.service,
      exp: now + (this.#options.ttlSeconds ?? 300),
      nbf: now,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), this.#key);
    return { token: `${signingInput}.${signature.toString('base64url')}`, issuedAt };
  }

  /** One scope `type:name:actions` → the granted access entry, or none. */
  #grant(scope: string): TokenAccess[] {
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first < 0 || last === first) return [];
    const type = scope.slice(0, first);
    const name = scope.slice(first + 1, last);
    const requested = scope.slice(last + 1).split(',').filter((a) => a !== '');
    if (type === 'registry' && name === 'catalog') return [{ type, name, actions: ['*'] }];
    if (type !== 'repository') return [];
    const allowed = allowedActions(this.#acl, name);
    const actions = requested.filter((a) => allowed.includes(a) || allowed.includes('*'));
    return actions.length === 0 ? [] : [{ type, name, actions }];
  }
}

/** The actions of the longest ACL pattern matching `repository`; none if nothing matches. */
export function allowedActions(acl: Acl, repository: string): readonly string[] {
  let best: string | undefined;
  for (const pattern of Object.keys(acl)) {
    if (globToRegExp(pattern).test(repository) && (best === undefined || pattern.length > best.length)) best = pattern;
  }
  return best === undefined ? [] : (acl[best] ?? []);
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
  res.end(bytes);
}
