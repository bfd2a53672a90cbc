import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One request as the fake saw it. */
export interface Seen {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  status?: number;
  /** Body bytes received; `complete` only when the request body reached its end. */
  bodyBytes: number;
  complete: boolean;
  /** Settles when the server has seen the request end or break off. */
  readonly settled: Promise<void>;
}

export type Hook = (req: IncomingMessage, res: ServerResponse, seen: Seen, body: Buffer) => boolean | Promise<boolean>;

export interface FakeRegistryOptions {
  /** `basic`: user:pass Basic; `token`: Bearer from `/token` on the same server (Basic user:pass there). */
  auth?: 'none' | 'basic' | 'token';
  username?: string;
  password?: string;
  /** Token server: refuse any token naming these repositories. */
  refuseScopesFor?: readonly string[];
  /** Token server: refuse a token combining push elsewhere with pull on these repositories (a refused mount scope). */
  refuseMountFrom?: readonly string[];
  /** Serve HTTPS with this key pair (PEM); `requestCert` also asks clients for a certificate signed by `ca`. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer; requestCert?: boolean };
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * A small in-memory distribution registry on node:http (port 0) for fault tests: manifests, blobs, uploads
 * (monolithic, chunked, mount), tags, optional Basic / token auth. `hook` runs first and may answer anything.
 */
export class FakeRegistry {
  readonly seen: Seen[] = [];
  readonly blobs = new Map<string, Buffer>(); // `${repo}@${digest}`
  readonly manifests = new Map<string, { mediaType: string; bytes: Buffer }>(); // `${repo}:${tag|digest}`
  readonly uploads = new Map<string, { repo: string; data: Buffer[] }>();
  readonly tokens = new Map<string, string[]>();
  hook: Hook | undefined;
  #server: Server;
  #options: FakeRegistryOptions;
  host = '';

  private constructor(options: FakeRegistryOptions) {
    this.#options = options;
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.#handle(req, res);
    const { tls } = options;
    this.#server = tls === undefined
      ? createServer(handler)
      : createTlsServer({ cert: tls.cert, key: tls.key, ...(tls.ca !== undefined && { ca: tls.ca }), requestCert: tls.requestCert === true, rejectUnauthorized: tls.requestCert === true }, handler);
  }

  static async start(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const fake = new FakeRegistry(options);
    fake.#server.listen(0, '127.0.0.1');
    await once(fake.#server, 'listening');
    fake.host = `127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  get url(): string {
    return `${this.#options.tls === undefined ? 'http' : 'https'}://${this.host}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }

  /** Requests matching method and a path pattern. */
  requests(method?: string, path?: RegExp): Seen[] {
    return this.seen.filter((s) => (method === undefined || s.method === method) && (path === undefined || path.test(s.path)));
  }

  putBlob(repo: string, bytes: Buffer): string {
    const digest = sha256(bytes);
    this.blobs.set(`${repo}@${digest}`, bytes);
    return digest;
  }

  putManifest(repo: string, tag: string | undefined, bytes: Buffer, mediaType: string): string {
    const digest = sha256(bytes);
    this.manifests.set(`${repo}:${digest}`, { mediaType, bytes });
    if (tag !== undefined) this.manifests.set(`${repo}:${tag}`, { mediaType, bytes });
    return digest;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    let settle!: () => void;
    const seen: Seen = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      bodyBytes: 0,
      complete: false,
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    this.seen.push(seen);
    const origWriteHead = res.writeHead.bind(res);
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      seen.status = status;
      return (origWriteHead as (s: number, ...r: unknown[]) => ServerResponse)(status, ...rest);
    }) as typeof res.writeHead;

    const chunks: Buffer[] = [];
    const body = await new Promise<Buffer | undefined>((resolve) => {
      req.on('data', (c: Buffer) => {
        seen.bodyBytes += c.length;
        chunks.push(c);
      });
      req.on('end', () => {
        seen.complete = true;
        settle();
        resolve(Buffer.concat(chunks));
      });
      req.on('close', () => {
        settle();
        resolve(undefined);
      });
    });
    if (body === undefined) return; // the client broke off: nothing to answer, nothing to commit

    try {
      if (this.hook && (await this.hook(req, res, seen, body))) return;
      this.#route(req, res, url, body);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500).end(String(e));
    }
  }

  #route(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    const method = req.method ?? '';
    if (url.pathname === '/token') return this.#token(req, res, url);
    if (url.pathname === '/v2/' || url.pathname === '/v2') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/(.+?)\/(manifests|blobs\/uploads|blobs|tags|referrers)(?:\/(.*))?$/.exec(url.pathname);
    if (!m) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
    const [, repo = '', kind = '', rest = ''] = m;
    const write = method !== 'GET' && method !== 'HEAD';
    if (!this.#authorized(req, res, repo, write ? 'pull,push' : 'pull', url)) return;

    if (kind === 'manifests') {
      if (method === 'PUT') {
        const digest = this.putManifest(repo, rest.startsWith('sha256:') ? undefined : rest, body, String(req.headers['content-type']));
        return void res.writeHead(201, { 'docker-content-digest': digest, location: `/v2/${repo}/manifests/${digest}` }).end();
      }
      const found = this.manifests.get(`${repo}:${rest}`);
      if (!found) return error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      res.writeHead(200, { 'content-type': found.mediaType, 'content-length': found.bytes.length, 'docker-content-digest': sha256(found.bytes) });
      return void res.end(method === 'HEAD' ? undefined : found.bytes);
    }
    if (kind === 'blobs') {
      const found = this.blobs.get(`${repo}@${rest}`);
      if (!found) return error(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': found.length, 'docker-content-digest': rest });
      return void res.end(method === 'HEAD' ? undefined : found);
    }
    if (kind === 'blobs/uploads') {
      if (method === 'POST') {
        const mount = url.searchParams.get('mount');
        const from = url.searchParams.get('from');
        if (mount && from) {
          const blob = this.blobs.get(`${from}@${mount}`);
          if (blob) {
            this.blobs.set(`${repo}@${mount}`, blob);
            return void res.writeHead(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount }).end();
          }
        }
        const id = randomUUID();
        this.uploads.set(id, { repo, data: [] });
        return void res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}?_state=s`, 'docker-upload-uuid': id, range: '0-0' }).end();
      }
      const upload = this.uploads.get(rest);
      if (!upload) return error(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown');
      if (method === 'PATCH') {
        const size = upload.data.reduce((n, b) => n + b.length, 0);
        const range = req.headers['content-range'];
        if (range !== undefined && !range.startsWith(`${size}-`)) return error(res, 416, 'BLOB_UPLOAD_INVALID', 'range');
        upload.data.push(body);
        return void res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${rest}?_state=s2`, range: `0-${size + body.length - 1}` }).end();
      }
      if (method === 'PUT') {
        upload.data.push(body);
        const all = Buffer.concat(upload.data);
        const digest = url.searchParams.get('digest') ?? '';
        if (sha256(all) !== digest) return error(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
        this.uploads.delete(rest);
        this.blobs.set(`${repo}@${digest}`, all);
        return void res.writeHead(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest }).end();
      }
    }
    if (kind === 'tags') {
      const tags = [...this.manifests.keys()].filter((k) => k.startsWith(`${repo}:`) && !k.startsWith(`${repo}:sha256:`)).map((k) => k.slice(repo.length + 1));
      if (tags.length === 0) return error(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: repo, tags }));
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
  }

  #authorized(req: IncomingMessage, res: ServerResponse, repo: string, actions: string, url: URL): boolean {
    const { auth = 'none', username = 'user', password = 'pass' } = this.#options;
    if (auth === 'none') return true;
    const header = req.headers.authorization ?? '';
    if (auth === 'basic') {
      if (header === `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`) return true;
      error(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="fake"' });
      return false;
    }
    const granted = this.tokens.get(header.replace(/^Bearer /, '')) ?? [];
    const from = url.searchParams.get('from');
    const needed = [`repository:${repo}:${actions}`, ...(from && url.searchParams.get('mount') ? [`repository:${from}:pull`] : [])];
    if (needed.every((n) => covers(granted, n))) return true;
    const challenge = `Bearer realm="http://${this.host}/token",service="fake",scope="${needed.join(' ')}"${header ? ',error="insufficient_scope"' : ''}`;
    error(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': challenge });
    return false;
  }

  #token(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const { username = 'user', password = 'pass', refuseScopesFor = [], refuseMountFrom = [] } = this.#options;
    const header = req.headers.authorization;
    if (header !== undefined && header !== `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`) {
      return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
    }
    const scopes = url.searchParams.getAll('scope');
    const mountFromRefused = scopes.length > 1 && scopes.some((s) => refuseMountFrom.some((r) => s === `repository:${r}:pull`));
    if (mountFromRefused || scopes.some((s) => refuseScopesFor.some((r) => s.startsWith(`repository:${r}:`)))) {
      return void res.writeHead(403, { 'content-type': 'application/json' }).end('{"details":"scope refused"}');
    }
    const token = `tok-${randomUUID()}`;
    this.tokens.set(token, header === undefined ? scopes.filter((s) => s.endsWith(':pull')) : scopes);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  }
}

function covers(granted: readonly string[], needed: string): boolean {
  const cut = needed.lastIndexOf(':');
  const resource = needed.slice(0, cut);
  const actions = needed.slice(cut + 1).split(',');
  const have = new Set(granted.filter((g) => g.slice(0, g.lastIndexOf(':')) === resource).flatMap((g) => g.slice(g.lastIndexOf(':') + 1).split(',')));
  return actions.every((a) => have.has(a));
}

export function error(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ errors: [{ code, message }] }));
}
