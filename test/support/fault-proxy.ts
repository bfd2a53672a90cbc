import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  Agent as HttpAgent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestRegistry } from './registry.js';

/** What a fault rule's `match` sees. */
export interface ProxiedRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/v2/app/manifests/v1`. */
  readonly path: string;
  /** Query string without `?`; `''` when none. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
}

/** A fault injected instead of forwarding a matching request, at most `times` times. */
export type FaultRule =
  | {
      readonly match: (req: ProxiedRequest) => boolean;
      readonly times: number;
      /** Answer `status` with a Distribution error body (`UNAVAILABLE` / `TOOMANYREQUESTS`). */
      readonly action: 'status';
      readonly status: 503 | 429;
      /** `Retry-After` header value, e.g. `'1'` or an HTTP date. @defaultValue no header */
      readonly retryAfter?: string;
    }
  | {
      readonly match: (req: ProxiedRequest) => boolean;
      readonly times: number;
      /** Destroy the client socket before answering (the client sees a connection reset / socket hang-up). */
      readonly action: 'reset';
    }
  | {
      readonly match: (req: ProxiedRequest) => boolean;
      readonly times: number;
      /**
       * Hold the request unanswered, its body unread: the client is stuck mid-request until it gives up, dies,
       * or the rule's {@link FaultHandle.release} forwards what is held.
       */
      readonly action: 'hold';
    }
  | {
      readonly match: (req: ProxiedRequest) => boolean;
      readonly times: number;
      /** Forward to the registry, then spoil its response body on the way back (see {@link ResponseSpoil}). */
      readonly action: 'response';
      readonly spoil: ResponseSpoil;
    };

/**
 * How an `action: 'response'` rule spoils a forwarded response (the whole upstream body is read first):
 * - `truncate`: the declared `Content-Length`, then only the first `atByte` bytes, then the connection is destroyed
 *   (the client sees the body break off).
 * - `corrupt`: the byte at `atByte` flipped, length and headers unchanged (only a digest check notices).
 * - `content-length`: `Content-Length` declared `delta` bytes off, with `Connection: close`: negative, exactly that
 *   many bytes are sent (a short body that looks complete); positive, the whole body, then the connection closes
 *   before the declared length is reached.
 * `atByte` defaults to the middle of the body.
 */
export type ResponseSpoil =
  | { readonly kind: 'truncate'; readonly atByte?: number }
  | { readonly kind: 'corrupt'; readonly atByte?: number }
  | { readonly kind: 'content-length'; readonly delta: number };

/** One request the proxy received. */
export interface RecordedRequest extends Omit<ProxiedRequest, 'headers'> {
  /** 0-based arrival order. */
  readonly seq: number;
  /** Status sent to the client; `undefined` for a reset or while still in flight. */
  status: number | undefined;
  /** Set when a fault rule answered instead of the registry. */
  readonly fault?: 'status' | 'reset' | 'hold' | 'response';
}

interface RuleEntry {
  readonly rule: FaultRule;
  remaining: number;
  hits: number;
  /** `hold`: what forwards each held request. */
  readonly held: (() => void)[];
}

/** Live view of an injected rule. */
export interface FaultHandle {
  /** How many more times the rule fires. */
  readonly remaining: number;
  /** How many times it has fired. */
  readonly hits: number;
  /** `hold` rules: forwards the requests held so far (whose clients are still there) to the registry. */
  release(): void;
}

/**
 * A streaming reverse proxy (node:http on 127.0.0.1:0) in front of a {@link TestRegistry}: records every request in
 * arrival order and injects faults per rule. Bodies stream through unbuffered. The `Host` header is forwarded and
 * `X-Forwarded-Proto: http` set, so upload `Location`s the registry builds point back at the proxy. Token requests go
 * to the realm directly and are not seen here.
 *
 * @example
 * const proxy = await FaultProxy.start(registry);
 * proxy.inject({ match: (r) => r.method === 'PUT' && r.path.includes('/manifests/'), times: 1, action: 'status', status: 503 });
 * const client = new RawClient({ baseUrl: proxy.url });
 */
export class FaultProxy {
  readonly target: TestRegistry;
  readonly #server: Server;
  readonly #agent: HttpAgent;
  readonly #ca: string | undefined;
  readonly #rules: RuleEntry[] = [];
  readonly #requests: RecordedRequest[] = [];
  #seq = 0;
  #stopped: Promise<void> | undefined;

  private constructor(target: TestRegistry, server: Server) {
    this.target = target;
    this.#server = server;
    this.#ca = target.caFile === undefined ? undefined : readFileSync(target.caFile, 'utf8');
    this.#agent = target.tls ? new HttpsAgent({ keepAlive: true, ...(this.#ca === undefined ? {} : { ca: this.#ca }) }) : new HttpAgent({ keepAlive: true });
  }

  /** Starts a plain-HTTP proxy for `target` (which may itself be HTTPS). */
  static async start(target: TestRegistry): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(target, server);
    server.on('request', (req, res) => proxy.#handle(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  /** `127.0.0.1:<port>` of the proxy. */
  get host(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://${this.host}`;
  }

  /** Every request so far, in arrival order. */
  get requests(): readonly RecordedRequest[] {
    return this.#requests;
  }

  /** Adds a rule; rules are tried in the order added, the first live match fires. */
  inject(rule: FaultRule): FaultHandle {
    const entry: RuleEntry = { rule, remaining: rule.times, hits: 0, held: [] };
    this.#rules.push(entry);
    return {
      release: () => {
        for (const forward of entry.held.splice(0)) forward();
      },
      get remaining() {
        return entry.remaining;
      },
      get hits() {
        return entry.hits;
      },
    };
  }

  /** Removes every rule. */
  clearFaults(): void {
    this.#rules.length = 0;
  }

  /** Forgets the recorded requests (sequence numbers keep counting). */
  clearRequests(): void {
    this.#requests.length = 0;
  }

  /** Closes the listener, client connections and upstream connections. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
      this.#agent.destroy();
    });
    return this.#stopped;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const seen: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: q < 0 ? target : target.slice(0, q),
      query: q < 0 ? '' : target.slice(q + 1),
      headers: req.headers,
    };
    const rule = this.#rules.find((r) => r.remaining > 0 && r.rule.match(seen));
    const record: RecordedRequest = {
      seq: this.#seq++,
      method: seen.method,
      path: seen.path,
      query: seen.query,
      status: undefined,
      ...(rule === undefined ? {} : { fault: rule.rule.action }),
    };
    this.#requests.push(record);
    if (rule !== undefined) {
      rule.remaining--;
      rule.hits++;
      if (rule.rule.action === 'hold') {
        rule.held.push(() => {
          if (!req.destroyed) this.#forward(req, res, record, target);
        });
        return;
      }
      if (rule.rule.action === 'response') return this.#forward(req, res, record, target, rule.rule.spoil);
      return answerFault(rule.rule, req, res, record);
    }
    this.#forward(req, res, record, target);
  }

  #forward(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, target: string, spoil?: ResponseSpoil): void {
    const upstreamUrl = new URL(target, this.target.url);
    const request = this.target.tls ? httpsRequest : httpRequest;
    const upstream = request(upstreamUrl, {
      method: req.method,
      headers: { ...req.headers, 'x-forwarded-proto': 'http' },
      agent: this.#agent,
      ...(this.#ca === undefined ? {} : { ca: this.#ca }),
    });
    upstream.on('response', (upRes) => {
      record.status = upRes.statusCode;
      const headers = { ...upRes.headers };
      const location = headers.location;
      if (location?.startsWith(this.target.url)) headers.location = this.url + location.slice(this.target.url.length);
      if (spoil !== undefined) return void spoilResponse(spoil, upRes, res, headers);
      res.writeHead(upRes.statusCode ?? 502, headers);
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (res.headersSent) res.destroy();
      else {
        record.status = 502;
        res.writeHead(502, { 'Content-Type': 'text/plain' }).end('fault proxy: upstream error');
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}

function answerFault(rule: FaultRule, req: IncomingMessage, res: ServerResponse, record: RecordedRequest): void {
  if (rule.action === 'reset') {
    req.socket.destroy();
    return;
  }
  if (rule.action === 'hold') return; // held by the proxy itself (FaultProxy#handle)
  if (rule.action === 'response') return; // forwarded and spoiled by the proxy itself (FaultProxy#forward)
  req.resume(); // drain any upload body so the client is not cut off mid-write
  const code = rule.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message: `injected ${rule.status}`, detail: null }] }));
  record.status = rule.status;
  res.writeHead(rule.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': body.length,
    'Docker-Distribution-Api-Version': 'registry/2.0',
    ...(rule.retryAfter === undefined ? {} : { 'Retry-After': rule.retryAfter }),
  });
  res.end(body);
}

async function spoilResponse(spoil: ResponseSpoil, upRes: IncomingMessage, res: ServerResponse, headers: IncomingHttpHeaders): Promise<void> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of upRes) chunks.push(c as Buffer);
  } catch {
    return void res.destroy();
  }
  const body = Buffer.concat(chunks);
  const status = upRes.statusCode ?? 502;
  const at = Math.min(Math.max(0, 'atByte' in spoil && spoil.atByte !== undefined ? spoil.atByte : body.length >> 1), Math.max(0, body.length - 1));
  if (spoil.kind === 'corrupt') {
    const bad = Buffer.from(body);
    if (bad.length > 0) bad[at]! ^= 0xff;
    res.writeHead(status, headers).end(bad);
    return;
  }
  if (spoil.kind === 'truncate') {
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.write(body.subarray(0, at), () => res.destroy());
    return;
  }
  res.writeHead(status, { ...headers, 'content-length': String(Math.max(0, body.length + spoil.delta)), connection: 'close' });
  if (spoil.delta < 0) res.end(body.subarray(0, body.length + spoil.delta)); // exactly as declared: well framed, short
  else res.write(body, () => res.destroy());
}
