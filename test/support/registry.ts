import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { selfSignedCertificate } from './openssl.js';
import { TokenServer, type Acl } from './token-server.js';

export type { Acl } from './token-server.js';
export { DEFAULT_ACL, TokenServer } from './token-server.js';

/** Credentials accepted by the `basic` and `token` flavours. */
export const TEST_USERNAME = 'testuser';
export const TEST_PASSWORD = 'testpass';

/** Registry-side names used in the `token` flavour's config. */
export const TOKEN_SERVICE = 'test-registry';
export const TOKEN_ISSUER = 'test-issuer';

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface RegistryOptions {
  /** `basic` = htpasswd (bcrypt); `token` = bearer tokens from an in-process {@link TokenServer}. @defaultValue 'none' */
  readonly auth?: RegistryAuth;
  /** Serve HTTPS with a self-signed certificate (SAN localhost, 127.0.0.1); see {@link TestRegistry.caFile}. @defaultValue false */
  readonly tls?: boolean;
  /** Write the registry's access log, enabling {@link TestRegistry.requests}. @defaultValue false */
  readonly accessLog?: boolean;
  /** Token flavour only: the scopes the test user may obtain. @defaultValue {@link DEFAULT_ACL} */
  readonly acl?: Acl;
  /** How long to wait for the `listening on` line and the first `/v2/` answer. @defaultValue 15_000 */
  readonly startTimeoutMs?: number;
}

/** One line of the registry's access log. */
export interface AccessLogEntry {
  readonly method: string;
  /** Request path without the query string, e.g. `/v2/app/manifests/v1`. */
  readonly path: string;
  /** Query string without `?`; `''` when there is none. */
  readonly query: string;
  readonly status: number;
}

/** A running `docker-registry serve` with its own temp directory. Always `stop()` it (e.g. in `afterAll`). */
export interface TestRegistry {
  /** `127.0.0.1:<port>`: the registry part of image references. */
  readonly host: string;
  /** `http://127.0.0.1:<port>` or `https://…` with `tls`. No trailing slash. */
  readonly url: string;
  readonly auth: RegistryAuth;
  readonly tls: boolean;
  /** Set for `basic` and `token`. */
  readonly username?: string;
  readonly password?: string;
  /** `tls` only: the PEM certificate to trust (`NODE_EXTRA_CA_CERTS`, undici `connect.ca`, curl `--cacert`). */
  readonly caFile?: string;
  /** `tls` only: a directory holding `ca.crt`, for skopeo `--src-cert-dir` / `--dest-cert-dir`. */
  readonly certDir?: string;
  /** `token` only: the realm; use it to change the ACL, count tokens or mint one for skopeo. */
  readonly tokenServer?: TokenServer;
  /** The registry's stderr (logfmt application log). */
  readonly logFile: string;
  /** The registry's stdout, where the access log goes (Apache combined format); empty unless `accessLog`. */
  readonly accessLogFile: string;
  readonly configFile: string;
  /** The temp directory holding config, store, certificates and logs; removed by `stop()`. */
  readonly dir: string;
  /**
   * Requests the registry has answered so far, oldest first, from its own access log (needs `accessLog: true`);
   * the harness's readiness probe is left out. Token requests never reach the registry, so they are not counted.
   */
  requests(): Promise<AccessLogEntry[]>;
  /** `(await requests()).length`. */
  requestCount(): Promise<number>;
  /** skopeo flags for this registry as `src` or `dest`: TLS verification or cert dir, and credentials. */
  skopeoFlags(side: 'src' | 'dest'): string[];
  /** SIGTERM, wait for exit, stop the token server, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Starts Debian's `docker-registry` (Distribution 2.8) on 127.0.0.1 with a kernel-chosen port, filesystem storage and
 * delete enabled, in the requested auth/TLS flavour (registry-behaviour.md §2–§6). Resolves once `GET /v2/` answers.
 *
 * @example
 * const registry = await startRegistry({ auth: 'token', accessLog: true });
 * try { … } finally { await registry.stop(); }
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  installExitHook();
  const auth = options.auth ?? 'none';
  const tls = options.tls ?? false;
  const dir = await mkdtemp(join(tmpdir(), 'bp-registry-'));
  liveDirs.add(dir);
  let tokenServer: TokenServer | undefined;
  let child: ChildProcess | undefined;
  try {
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'info', accesslog: { disabled: !(options.accessLog ?? false) } },
      storage: { filesystem: { rootdirectory: join(dir, 'store') }, delete: { enabled: true } },
      http: { addr: '127.0.0.1:0', secret: 'test-secret' } as Record<string, unknown>,
      // Foreign (non-distributable) layers carry URLs; Distribution refuses them unless URLs are allowed,
      // as registries hosting Windows images are configured to.
      validation: { manifests: { urls: { allow: ['^https?://'] } } },
    };
    if (auth === 'basic') {
      const { stdout } = await promisify(execFile)('htpasswd', ['-Bbn', TEST_USERNAME, TEST_PASSWORD]);
      await writeFile(join(dir, 'htpasswd'), stdout);
      config['auth'] = { htpasswd: { realm: 'test-realm', path: join(dir, 'htpasswd') } };
    } else if (auth === 'token') {
      const cert = await selfSignedCertificate(dir, 'token', { cn: 'test-token-issuer' });
      tokenServer = await TokenServer.start({
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        certPem: await readFile(cert.certFile, 'utf8'),
        keyPem: await readFile(cert.keyFile, 'utf8'),
        username: TEST_USERNAME,
        password: TEST_PASSWORD,
        ...(options.acl === undefined ? {} : { acl: options.acl }),
      });
      config['auth'] = {
        token: { realm: tokenServer.realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, rootcertbundle: cert.certFile },
      };
    }
    let caFile: string | undefined;
    let certDir: string | undefined;
    if (tls) {
      const cert = await selfSignedCertificate(dir, 'tls', { cn: 'localhost', subjectAltName: 'DNS:localhost,IP:127.0.0.1' });
      (config['http'] as Record<string, unknown>)['tls'] = { certificate: cert.certFile, key: cert.keyFile };
      caFile = cert.certFile;
      certDir = join(dir, 'certs');
      await mkdir(certDir);
      await copyFile(caFile, join(certDir, 'ca.crt'));
    }
    const configFile = join(dir, 'config.yml');
    await writeFile(configFile, stringify(config));

    const logFile = join(dir, 'registry.log');
    const accessLogFile = join(dir, 'access.log');
    // Decision: stdout (the access log) goes straight to a file descriptor, not through a pipe. Distribution's
    // access-log handler is the outermost one and writes its line before the response is flushed, so a request the
    // client has seen answered is already in the file: requests() needs no wait and no sentinel request.
    const accessLog = await open(accessLogFile, 'w');
    try {
      child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', accessLog.fd, 'pipe'] });
    } finally {
      await accessLog.close();
    }
    live.add(child);
    const port = await waitForListening(child, logFile, options.startTimeoutMs ?? 15_000);
    const host = `127.0.0.1:${port}`;
    const url = `${tls ? 'https' : 'http'}://${host}`;
    const ca = caFile === undefined ? undefined : await readFile(caFile, 'utf8');
    await waitForV2(url, ca, options.startTimeoutMs ?? 15_000);
    // The readiness probe is the harness's own request: requests() starts after it.
    const probeLines = (await readFile(accessLogFile, 'utf8')).split('\n').filter((l) => l !== '').length;

    const registry: TestRegistry = {
      host,
      url,
      auth,
      tls,
      ...(auth === 'none' ? {} : { username: TEST_USERNAME, password: TEST_PASSWORD }),
      ...(caFile === undefined ? {} : { caFile }),
      ...(certDir === undefined ? {} : { certDir }),
      ...(tokenServer === undefined ? {} : { tokenServer }),
      logFile,
      accessLogFile,
      configFile,
      dir,
      async requests() {
        if (!(options.accessLog ?? false)) throw new Error('requests() needs startRegistry({ accessLog: true })');
        return parseAccessLog(await readFile(accessLogFile, 'utf8')).slice(probeLines);
      },
      async requestCount() {
        return (await registry.requests()).length;
      },
      skopeoFlags(side) {
        const flags = tls ? [`--${side}-cert-dir`, certDir ?? ''] : [`--${side}-tls-verify=false`];
        if (auth !== 'none') flags.push(`--${side}-creds`, `${TEST_USERNAME}:${TEST_PASSWORD}`);
        return flags;
      },
      stop: memo(() => shutdown(child, tokenServer, dir)),
    };
    return registry;
  } catch (error) {
    const log = await readFile(join(dir, 'registry.log'), 'utf8').catch(() => '');
    await shutdown(child, tokenServer, dir);
    throw new Error(`docker-registry did not start (${String(error)}); log:\n${log.slice(-2000)}`, { cause: error });
  }
}

/**
 * Parses Distribution's access log (gorilla CombinedLoggingHandler, Apache combined format), e.g.
 * `127.0.0.1 - testuser [28/Nov/2026:07:12:11 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`.
 */
export function parseAccessLog(text: string): AccessLogEntry[] {
  const entries: AccessLogEntry[] = [];
  for (const line of text.split('\n')) {
    const match = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) /.exec(line);
    if (match === null) continue;
    const uri = match[2] ?? '';
    const q = uri.indexOf('?');
    entries.push({
      method: match[1] ?? '',
      path: q < 0 ? uri : uri.slice(0, q),
      query: q < 0 ? '' : uri.slice(q + 1),
      status: Number(match[3]),
    });
  }
  return entries;
}

/**
 * Adds a PEM CA certificate to this process's default trust store (`tls.setDefaultCACertificates`), so that global
 * `fetch` and undici agents without an explicit `ca` trust a TLS test registry. Idempotent; affects only this process
 * (each vitest file runs in its own worker); child processes need `NODE_EXTRA_CA_CERTS` or a cert dir instead.
 */
export function trustCertificate(pem: string): void {
  const current = getCACertificates('default');
  if (current.some((c) => c.trim() === pem.trim())) return;
  setDefaultCACertificates([...current, pem]);
}

function waitForListening(child: ChildProcess, logFile: string, timeoutMs: number): Promise<number> {
  const log = createWriteStream(logFile);
  const stderr = child.stderr;
  if (stderr === null) throw new Error('docker-registry stderr is not piped');
  stderr.pipe(log);
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no "listening on" line within ${timeoutMs} ms`)), timeoutMs);
    let seen = '';
    // A plain 'data' listener next to pipe(): readline's close() would pause stderr, fill the pipe and block the registry.
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      // "listening on 127.0.0.1:37695" (plain) or "listening on 127.0.0.1:37695, tls".
      const match = /msg="listening on 127\.0\.0\.1:(\d+)/.exec(seen);
      if (match !== null) done(undefined, Number(match[1]));
    };
    const onExit = (code: number | null, signal: string | null): void =>
      done(new Error(`docker-registry exited early (code ${code}, signal ${signal})`));
    const onError = (error: Error): void => done(error);
    function done(error: Error | undefined, port?: number): void {
      clearTimeout(timer);
      stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error === undefined && port !== undefined) resolve(port);
      else reject(error ?? new Error('unreachable'));
    }
    stderr.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** GET /v2/ until it answers 200 or 401 with the distribution API header; retries only refused connections. */
async function waitForV2(url: string, ca: string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { status, apiVersion } = await getV2(url, ca);
      if ((status === 200 || status === 401) && apiVersion === 'registry/2.0') return;
      throw new Error(`GET ${url}/v2/ answered ${status}`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

function getV2(url: string, ca: string | undefined): Promise<{ status: number; apiVersion: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(`${url}/v2/`, { method: 'GET', ...(ca === undefined ? {} : { ca }) }, (res) => {
      res.resume();
      res.on('end', () => {
        const header = res.headers['docker-distribution-api-version'];
        resolve({ status: res.statusCode ?? 0, apiVersion: Array.isArray(header) ? header[0] : header });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function shutdown(child: ChildProcess | undefined, tokenServer: TokenServer | undefined, dir: string): Promise<void> {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'close'); // after exit and after stdio closed, so the log file is complete
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (child !== undefined) live.delete(child);
  await tokenServer?.stop();
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

/** Last-resort cleanup if a test file dies without calling stop(). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function memo(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}
