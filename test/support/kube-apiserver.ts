/**
 * A real, throwaway Kubernetes API server for tests: etcd + kube-apiserver (v1.20.2) on loopback, in a private temp
 * directory, with RBAC enforced. It does what /work/shared/tools/kube-test-env.sh does, but in-process, so the project
 * does not depend on that script at run time (docs/testing.md#kubernetes-api-server).
 *
 * Binaries come from `KUBEBUILDER_ASSETS` (a directory holding executable `kube-apiserver` and `etcd`, as envtest
 * expects) or else from `${XDG_CACHE_HOME:-$HOME/.cache}/kube-test-assets/bin`, which `test/kube/kube-test-assets.sh`
 * fills (`.ci/run` runs it before `make test`).
 *
 * Rule for tests: missing assets are a FAILURE, never a silent skip. Wrap a kube suite in
 * `describe.skipIf(kubeTestsSkipped())` and start the server in `beforeAll`: without the binaries
 * {@link startKubeApiServer} rejects with a message naming the script that provides them. Only an explicit
 * `BP_SKIP_KUBE=1` in the environment skips those suites (for a quick local run on a machine without the assets).
 *
 * @example
 * describe.skipIf(kubeTestsSkipped())('Promotion controller', () => {
 *   let kube: KubeTestEnv;
 *   beforeAll(async () => { kube = await startKubeApiServer(); });
 *   afterAll(async () => { await kube?.stop(); });
 *   it('…', async () => { expect((await kube.kubectl(['get', 'ns'])).code).toBe(0); });
 * });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPair, randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, open, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { constants as osConstants, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { selfSignedCertificate } from './openssl.js';

/** `--service-account-issuer`; also the only `--api-audiences` entry, so TokenRequest tokens are accepted. */
const SA_ISSUER = 'https://kubernetes.default.svc';

export interface KubeApiServerOptions {
  /** Directory with executable `kube-apiserver` and `etcd`. @defaultValue {@link kubeAssetsDir}() */
  readonly assetsDir?: string;
  /** How long to wait for etcd's `/health`, and then again for kube-apiserver's `/readyz`. @defaultValue 60_000 */
  readonly startTimeoutMs?: number;
  /** Extra kube-apiserver flags, appended after the harness's own (a repeated flag's last value wins). @defaultValue [] */
  readonly apiServerArgs?: readonly string[];
}

/** What {@link KubeTestEnv.kubectl} returns. `code` is the exit status (128 + signal number if killed). */
export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A running etcd + kube-apiserver. Always `stop()` it (e.g. in `afterAll`). */
export interface KubeTestEnv {
  /** Admin kubeconfig (JSON; user `admin` in `system:masters`, namespace `default`). */
  readonly kubeconfigPath: string;
  /** `https://127.0.0.1:<port>`. No trailing slash. */
  readonly server: string;
  /** PEM of the self-signed serving certificate (SAN `127.0.0.1`, `localhost`); the CA to trust. */
  readonly caFile: string;
  /** Bearer token of `admin` (group `system:masters`). */
  readonly adminToken: string;
  /** `http://127.0.0.1:<port>`: etcd's client URL. */
  readonly etcdUrl: string;
  /** The temp directory holding certificates, keys, etcd data, kubeconfigs and logs; removed by `stop()`. */
  readonly dir: string;
  /** PID of the current kube-apiserver process (a new one after `restart()`). */
  readonly apiServerPid: number;
  /**
   * Writes a kubeconfig that authenticates AS ServiceAccount `namespace/name` (creating the namespace and the
   * ServiceAccount if missing) with a bound token from the TokenRequest API, so RBAC applies exactly as in a
   * cluster. Resolves to the file's path.
   */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Stops kube-apiserver and starts it again on the same port against the same etcd (data kept); resolves when ready. */
  restart(): Promise<void>;
  /** Stops kube-apiserver, then etcd (TERM, KILL after 10 s), and removes `dir`. Idempotent. */
  stop(): Promise<void>;
  /**
   * Runs `kubectl --kubeconfig <admin> <args…>` with `input` on stdin. A `--kubeconfig` in `args` wins over the admin
   * one (pflag keeps a repeated flag's last value). Never rejects on a non-zero exit: check `code`.
   */
  kubectl(args: readonly string[], input?: string): Promise<KubectlResult>;
}

/** `true` when `BP_SKIP_KUBE=1`: the only case in which tests needing a kube-apiserver may be skipped. */
export function kubeTestsSkipped(): boolean {
  return process.env['BP_SKIP_KUBE'] === '1';
}

/**
 * The assets directory the harness uses: `KUBEBUILDER_ASSETS` if it holds executable `kube-apiserver` and `etcd`,
 * otherwise `${XDG_CACHE_HOME:-$HOME/.cache}/kube-test-assets/bin` (the same choice `test/kube/kube-test-assets.sh` makes).
 */
export function kubeAssetsDir(): string {
  const fromEnv = process.env['KUBEBUILDER_ASSETS'];
  if (fromEnv !== undefined && fromEnv !== '' && hasAssets(fromEnv)) return fromEnv;
  const xdg = process.env['XDG_CACHE_HOME'];
  const cache = xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache');
  return join(cache, 'kube-test-assets', 'bin');
}

/** Whether {@link kubeAssetsDir} (or `dir`) holds executable `kube-apiserver` and `etcd`. */
export function assetsAvailable(dir: string = kubeAssetsDir()): boolean {
  return hasAssets(dir);
}

const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Starts etcd and kube-apiserver on free 127.0.0.1 ports in a private temp directory and resolves once `/readyz`
 * answers 200. kube-apiserver runs with `--authorization-mode=RBAC`, a static token file whose `admin` token is in
 * `system:masters`, a service-account key pair (TokenRequest enabled) and a self-signed serving certificate. Like
 * envtest, it disables the ServiceAccount admission plugin and allows privileged pods, because no controller-manager
 * runs to create default ServiceAccounts.
 *
 * @example
 * const kube = await startKubeApiServer();
 * try { await kube.kubectl(['apply', '-f', '-'], manifest); } finally { await kube.stop(); }
 */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeTestEnv> {
  const assets = options.assetsDir ?? kubeAssetsDir();
  if (!hasAssets(assets)) {
    const env = process.env['KUBEBUILDER_ASSETS'];
    throw new Error(
      `No executable kube-apiserver and etcd in ${assets}` +
        (env !== undefined && env !== '' && env !== assets ? ` (KUBEBUILDER_ASSETS=${env} lacks them too)` : '') +
        '. Build them once with `export KUBEBUILDER_ASSETS="$(bash test/kube/kube-test-assets.sh)"` (about 9 minutes; ' +
        '.ci/run does this), or point KUBEBUILDER_ASSETS at existing envtest binaries. ' +
        'Set BP_SKIP_KUBE=1 only to skip the Kubernetes tests deliberately.',
    );
  }
  installExitHook();
  const env = new KubeApiServer(assets, options);
  try {
    await env.start();
  } catch (error) {
    const logs = await env.logTails();
    await env.stop();
    throw new Error(`kube test environment did not start: ${String(error)}\n${logs}`, { cause: error });
  }
  return env;
}

class KubeApiServer implements KubeTestEnv {
  readonly adminToken: string = randomBytes(24).toString('hex');
  readonly #assets: string;
  readonly #timeoutMs: number;
  readonly #extraArgs: readonly string[];
  #dir = '';
  #caFile = '';
  #ca = '';
  /** kube-apiserver flags except the two that name ports. */
  #apiArgsBase: string[] = [];
  #etcdPort = 0;
  #apiPort = 0;
  #etcd: ChildProcess | undefined;
  #apiServer: ChildProcess | undefined;
  #watchdog: ChildProcess | undefined;
  #restarting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(assets: string, options: KubeApiServerOptions) {
    this.#assets = assets;
    this.#timeoutMs = options.startTimeoutMs ?? 60_000;
    this.#extraArgs = options.apiServerArgs ?? [];
  }

  get dir(): string {
    return this.#dir;
  }

  get kubeconfigPath(): string {
    return join(this.#dir, 'kubeconfig');
  }

  get caFile(): string {
    return this.#caFile;
  }

  get server(): string {
    return `https://127.0.0.1:${this.#apiPort}`;
  }

  get etcdUrl(): string {
    return `http://127.0.0.1:${this.#etcdPort}`;
  }

  get apiServerPid(): number {
    return this.#apiServer?.pid ?? 0;
  }

  async start(): Promise<void> {
    const dir = await realpath(await mkdtemp(join(tmpdir(), 'bp-kube-')));
    liveDirs.add(dir);
    this.#dir = dir;
    this.#watchdog = startWatchdog(dir);

    const [cert, keys] = await Promise.all([
      // kubernetes* names and 10.0.0.1 (first address of --service-cluster-ip-range) are how in-cluster clients reach it.
      selfSignedCertificate(dir, 'apiserver', {
        cn: 'kube-apiserver',
        subjectAltName: 'IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1',
      }),
      promisify(generateKeyPair)('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      }),
    ]);
    this.#caFile = cert.certFile;
    this.#ca = await readFile(cert.certFile, 'utf8');
    await writeFile(join(dir, 'sa.key'), keys.privateKey, { mode: 0o600 });
    await writeFile(join(dir, 'sa.pub'), keys.publicKey);
    await writeFile(join(dir, 'tokens.csv'), `${this.adminToken},admin,admin,system:masters\n`, { mode: 0o600 });
    this.#apiArgsBase = [
      `--bind-address=127.0.0.1`,
      `--advertise-address=127.0.0.1`,
      `--tls-cert-file=${cert.certFile}`,
      `--tls-private-key-file=${cert.keyFile}`,
      `--service-cluster-ip-range=10.0.0.0/24`,
      // No `kubernetes` Endpoints: 127.0.0.1 is not a valid endpoint address, so the reconciler would only log errors.
      `--endpoint-reconciler-type=none`,
      `--service-account-issuer=${SA_ISSUER}`,
      `--api-audiences=${SA_ISSUER}`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      `--authorization-mode=RBAC`,
      // The choices envtest makes: Pods can be created without a controller-manager having made ServiceAccounts.
      `--allow-privileged=true`,
      `--disable-admission-plugins=ServiceAccount`,
    ];

    await this.#startEtcd();
    await this.#startApiServer();
    await writeFile(this.kubeconfigPath, kubeconfig(this.server, this.caFile, 'admin', this.adminToken), { mode: 0o600 });
  }

  async serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    for (const [what, value] of [['namespace', namespace], ['ServiceAccount name', name]] as const) {
      if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(value)) throw new Error(`invalid ${what} ${JSON.stringify(value)}`);
    }
    await this.#createIfMissing('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await this.#createIfMissing(`/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace },
    });
    // Decision: a real bound token from TokenRequest (GA in 1.20), not a static-token-file user, so the request is
    // authenticated by the service-account authenticator exactly as a pod's projected token would be.
    const res = await this.#api('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [SA_ISSUER], expirationSeconds: 24 * 3600 },
    });
    if (res.status !== 201 && res.status !== 200) throw new Error(`TokenRequest for ${namespace}/${name} answered ${res.status}: ${res.body}`);
    const token = tokenOf(res.body);
    const file = join(this.dir, `sa-${namespace}-${name}.kubeconfig`);
    await writeFile(file, kubeconfig(this.server, this.caFile, `system:serviceaccount:${namespace}:${name}`, token, namespace), {
      mode: 0o600,
    });
    return file;
  }

  restart(): Promise<void> {
    if (this.#stopping !== undefined) return Promise.reject(new Error('restart() after stop()'));
    if (this.#restarting !== undefined) return this.#restarting;
    const restarting = (async () => {
      await terminate(this.#apiServer);
      // Same port (clients keep their URL); a clash here is not retried on another port.
      await this.#startApiServer(this.#apiPort);
    })();
    this.#restarting = restarting.finally(() => {
      this.#restarting = undefined;
    });
    return this.#restarting;
  }

  stop(): Promise<void> {
    return (this.#stopping ??= (async () => {
      await this.#restarting?.catch(() => undefined);
      await terminate(this.#apiServer);
      await terminate(this.#etcd);
      if (this.dir !== '') {
        await rm(this.dir, { recursive: true, force: true });
        liveDirs.delete(this.dir);
      }
      this.#watchdog?.stdin?.end(); // nothing left for it to do: it exits
    })());
  }

  async kubectl(args: readonly string[], input?: string): Promise<KubectlResult> {
    // A private discovery cache: kubectl's default ~/.kube/cache is keyed by host:port, which a later env may reuse.
    const child = spawn('kubectl', ['--kubeconfig', this.kubeconfigPath, '--cache-dir', join(this.dir, 'kubectl-cache'), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => undefined); // kubectl may exit before reading stdin
    child.stdin.end(input ?? '');
    const [code, signal] = (await once(child, 'close').catch((error: unknown) => {
      throw new Error(`could not run kubectl (${String(error)}); install it (apt package kubernetes-client)`, { cause: error });
    })) as [number | null, NodeJS.Signals | null];
    return {
      code: code ?? 128 + (signal === null ? 0 : (osConstants.signals[signal] ?? 0)),
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
    };
  }

  /** The last lines of both logs, for a start failure's message. */
  async logTails(): Promise<string> {
    const parts: string[] = [];
    for (const name of ['etcd.log', 'kube-apiserver.log']) {
      const text = await readFile(join(this.dir, name), 'utf8').catch(() => undefined);
      if (text !== undefined) parts.push(`--- ${name} (last lines) ---\n${text.split('\n').slice(-25).join('\n')}`);
    }
    return parts.join('\n');
  }

  async #startEtcd(): Promise<void> {
    // A port can be taken between choosing and binding it; then start again on other ports.
    for (let attempt = 1; ; attempt++) {
      const client = await freePort();
      const peer = await freePort([client]);
      await rm(join(this.dir, 'etcd'), { recursive: true, force: true });
      this.#etcdPort = client;
      this.#etcd = await this.#spawn('etcd', [
        '--name=kube-test-env',
        `--data-dir=${join(this.dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${client}`,
        `--advertise-client-urls=http://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=kube-test-env=http://127.0.0.1:${peer}`,
        '--initial-cluster-state=new',
        '--unsafe-no-fsync',
        '--logger=zap',
        '--log-level=warn',
      ]);
      const outcome = await this.#waitFor(this.#etcd, async () => {
        const res = await get(`${this.etcdUrl}/health`);
        return res.status === 200 && res.body.includes('"health":"true"');
      });
      if (outcome === 'ready') return;
      if (outcome === 'exited' && attempt < 3 && (await this.#logMentionsPortClash('etcd.log'))) continue;
      throw new Error(outcome === 'exited' ? 'etcd exited during startup' : `etcd was not healthy within ${this.#timeoutMs} ms`);
    }
  }

  async #startApiServer(port?: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.#apiPort = port ?? (await freePort());
      this.#apiServer = await this.#spawn('kube-apiserver', [
        `--etcd-servers=${this.etcdUrl}`,
        `--secure-port=${this.#apiPort}`,
        ...this.#apiArgsBase,
        ...this.#extraArgs,
      ]);
      const outcome = await this.#waitFor(this.#apiServer, async () => {
        const res = await get(`${this.server}/readyz`, { ca: this.#ca, token: this.adminToken });
        return res.status === 200;
      });
      if (outcome === 'ready') return;
      if (outcome === 'exited' && port === undefined && attempt < 3 && (await this.#logMentionsPortClash('kube-apiserver.log'))) continue;
      throw new Error(
        outcome === 'exited' ? 'kube-apiserver exited during startup' : `kube-apiserver was not ready within ${this.#timeoutMs} ms`,
      );
    }
  }

  /** Spawns an asset with its output appended to `<name>.log` in the env dir (a restart keeps the earlier lines). */
  async #spawn(name: 'etcd' | 'kube-apiserver', args: string[]): Promise<ChildProcess> {
    const log = await open(join(this.dir, `${name}.log`), 'a');
    try {
      const child = spawn(join(this.#assets, name), args, { cwd: this.dir, stdio: ['ignore', log.fd, log.fd] });
      live.add(child);
      child.once('exit', () => live.delete(child));
      this.#watchdog?.stdin?.write(`${child.pid}\n`);
      await once(child, 'spawn'); // rejects with the 'error' event (e.g. ENOENT)
      return child;
    } finally {
      await log.close();
    }
  }

  /** Polls `check` every 100 ms until it is true, the process exits, or the start timeout passes. */
  async #waitFor(child: ChildProcess, check: () => Promise<boolean>): Promise<'ready' | 'exited' | 'timeout'> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) return 'exited';
      if (await check().catch(() => false)) return 'ready';
      if (Date.now() > deadline) return 'timeout';
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async #logMentionsPortClash(name: string): Promise<boolean> {
    return (await readFile(join(this.dir, name), 'utf8').catch(() => '')).includes('address already in use');
  }

  async #createIfMissing(collection: string, object: object): Promise<void> {
    const res = await this.#api('POST', collection, object);
    if (res.status !== 201 && res.status !== 409) throw new Error(`POST ${collection} answered ${res.status}: ${res.body}`);
  }

  #api(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    return send(method, `${this.server}${path}`, { ca: this.#ca, token: this.adminToken }, body);
  }
}

function hasAssets(dir: string): boolean {
  return ['kube-apiserver', 'etcd'].every((name) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * A 127.0.0.1 port that accepts a bind right now (and is not in `exclude`), picked at random from 20000–32767.
 * Decision: below Linux's ephemeral range (32768–60999), unlike port 0. kube-apiserver keeps its port across
 * `restart()`, and while it is down an outgoing connection could be given an ephemeral port; a port outside that range
 * stays free unless something binds it explicitly.
 */
async function freePort(exclude: readonly number[] = []): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = randomInt(20_000, 32_768);
    if (!exclude.includes(port) && (await canBind(port))) return port;
  }
  throw new Error('found no free loopback port in 20000-32767');
}

async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen({ port, host: '127.0.0.1', exclusive: true });
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    if (server.listening) await new Promise((resolve) => server.close(resolve));
  }
}

/** TERM, KILL after 10 s; resolves once the process has exited (at once if it already has). */
async function terminate(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  live.delete(child);
}

function get(url: string, auth?: { ca: string; token: string }): Promise<{ status: number; body: string }> {
  return send('GET', url, auth);
}

function send(method: string, url: string, auth?: { ca: string; token: string }, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth !== undefined) headers['authorization'] = `Bearer ${auth.token}`;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const options = { method, headers, signal: AbortSignal.timeout(10_000), ...(auth === undefined ? {} : { ca: auth.ca }) };
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** `status.token` of a TokenRequest response (parsed here, at the edge). */
function tokenOf(body: string): string {
  const parsed: unknown = JSON.parse(body);
  const status = typeof parsed === 'object' && parsed !== null ? (parsed as { status?: unknown }).status : undefined;
  const token = typeof status === 'object' && status !== null ? (status as { token?: unknown }).token : undefined;
  if (typeof token !== 'string' || token === '') throw new Error(`TokenRequest response has no status.token: ${body.slice(0, 200)}`);
  return token;
}

/** A kubeconfig in JSON (valid YAML, so kubectl and client-node read it). */
function kubeconfig(server: string, caFile: string, user: string, token: string, namespace = 'default'): string {
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kube-test-env', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'kube-test-env', context: { cluster: 'kube-test-env', user, namespace } }],
      'current-context': 'kube-test-env',
    },
    null,
    2,
  )}\n`;
}

/**
 * Decision: a watchdog process per env, because the `exit` hook alone does not run when it matters. vitest ends its
 * fork workers with SIGTERM, and a signal's default action skips `exit` listeners, so a test file that forgot
 * `stop()` (or a worker killed on a timeout) would leave etcd and kube-apiserver running and ~100 MB in /tmp.
 * The watchdog is a detached `node` that ignores signals and reads the PIDs we spawn from a pipe; when the pipe
 * closes (after `stop()`, or because this process died in any way) it SIGKILLs those PIDs that still run from `dir`
 * (a reused PID is never hit), waits up to 10 s for them to go, and removes `dir`.
 */
function startWatchdog(dir: string): ChildProcess {
  const script = String.raw`
    const fs = require('node:fs');
    const dir = process.argv[1];
    const pids = new Set();
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => {});
    const ours = (pid) => { try { return fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').includes(dir + '/'); } catch { return false; } };
    let buffered = '';
    process.stdin.on('data', (chunk) => {
      const lines = (buffered + chunk).split('\n');
      buffered = lines.pop();
      for (const line of lines) if (Number(line) > 0) pids.add(Number(line));
    });
    process.stdin.on('end', () => {
      for (const pid of pids) if (ours(pid)) try { process.kill(pid, 'SIGKILL'); } catch {}
      const deadline = Date.now() + 10000;
      const finish = () => {
        if ([...pids].some(ours) && Date.now() < deadline) return void setTimeout(finish, 50);
        fs.rmSync(dir, { recursive: true, force: true });
      };
      finish();
    });`;
  const watchdog = spawn(process.execPath, ['-e', script, dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  // Neither the process nor its pipe keeps this event loop alive: the watchdog must not hold a worker open.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  watchdog.stdin?.on('error', () => undefined);
  return watchdog;
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
