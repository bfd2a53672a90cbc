import { once } from 'node:events';
import { createServer, request as httpRequest, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestRegistry } from './registry.js';

/** What the proxy does to a manifest PUT it matches. */
export type ManifestRewrite =
  /** Re-serialises the JSON body with two-space indentation before forwarding: the registry stores other bytes. */
  | 'reformat'
  /** Forwards the body unchanged but answers a `Docker-Content-Digest` of other bytes. */
  | 'lie-about-digest';

export interface RewritingProxyOptions {
  /** Which manifest PUTs to rewrite, by request path (`/v2/<repo>/manifests/<ref>`). */
  readonly match: (path: string) => boolean;
  readonly rewrite: ManifestRewrite;
}

/**
 * A registry that does not store what it is given: a plain-HTTP proxy (127.0.0.1:0) in front of a plain-HTTP
 * {@link TestRegistry} that rewrites matching manifest PUTs, as a misbehaving mirror or a registry converting
 * manifests would. Everything else passes through unchanged (`Host` forwarded, `Location`s left relative).
 */
export class RewritingProxy {
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #target: TestRegistry;
  readonly #options: RewritingProxyOptions;
  /** Paths of the manifest PUTs rewritten so far. */
  readonly rewritten: string[] = [];

  private constructor(target: TestRegistry, options: RewritingProxyOptions) {
    this.#target = target;
    this.#options = options;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  static async start(target: TestRegistry, options: RewritingProxyOptions): Promise<RewritingProxy> {
    if (target.tls) throw new Error('RewritingProxy speaks plain HTTP to the registry only');
    const proxy = new RewritingProxy(target, options);
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    return proxy;
  }

  /** `127.0.0.1:<port>`. */
  get host(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    this.#agent.destroy();
    if (this.#server.listening) await once(this.#server, 'close');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks);
    const rewrite = req.method === 'PUT' && /\/manifests\/[^/]+$/.test(path) && this.#options.match(path) ? this.#options.rewrite : undefined;
    if (rewrite === 'reformat') body = Buffer.from(JSON.stringify(JSON.parse(body.toString('utf8')), null, 2));
    if (rewrite !== undefined) this.rewritten.push(path);
    const headers = { ...req.headers, 'content-length': String(body.length) };
    const upstream = httpRequest(new URL(req.url ?? '/', this.#target.url), { method: req.method, headers, agent: this.#agent });
    upstream.on('response', (up) => {
      const out = { ...up.headers };
      if (rewrite === 'lie-about-digest' && out['docker-content-digest'] !== undefined) out['docker-content-digest'] = `sha256:${'0'.repeat(64)}`;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.on('error', () => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end('rewriting proxy: upstream error');
    });
    upstream.end(body);
  }
}
