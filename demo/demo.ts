/**
 * `make demo`: the promotion workflow end to end on this machine, with the real CLI and no cluster or Redis.
 *
 * A throwaway `docker-registry` on a free loopback port; the seed scenario (a signed image, a signed bundle
 * pinning it, two key pairs); `bundle-promoter run --promotions` over demo/promotions/ (dev → test, then
 * test → prod gated on a signed `e2e-tests-passed: "True"` annotation). The demo narrates each step, checks
 * what it expects by polling /status with a deadline, and stops everything it started, also on failure or
 * Ctrl-C. Its files stay in a temp directory it prints. Exit code: 0, 1 (an expectation failed), 130 (interrupted).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { CliRunner } from './cli-runner.js';
import { DemoFailure, DemoInterrupted } from './demo-failure.js';
import { Narrator } from './narrator.js';
import { onPath, pidsWithArgument, portAccepts, processAlive } from './process-probe.js';
import { RunProcess } from './run-process.js';
import { REPOS, seed, TAG, type Seeded } from './seed.js';
import { describePromotion, metricsExcerpt, readyOf, StatusClient, statusTable, type PromotionView } from './status-client.js';
import { waitFor } from './wait-for.js';

const TEST = 'useful-bundle-test';
const PROD = 'useful-bundle-prod';
const PLACEHOLDER = '${REGISTRY}';
const REQUESTED_AT = 'bundlepromoter.dev/requestedAt';
const BLOCKED_REASON = 'missing or incorrect annotation';
/** Password of the demo's keys (the CLI reads $COSIGN_PASSWORD). */
const COSIGN_PASSWORD = 'demo';

/** The checkout: the nearest directory above this file holding `dist/cli.js` and `demo/promotions`. */
function checkoutRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'dist', 'cli.js')) && existsSync(join(dir, 'demo', 'promotions'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new DemoFailure('dist/cli.js not found above the demo: run `make demo` in the checkout');
    dir = parent;
  }
}

/** Something the demo started, with how to stop it and how to tell it is gone. */
interface Started {
  readonly what: string;
  readonly pid: number | undefined;
  /** A string of the process's command line, so a reused pid is not mistaken for it. */
  readonly marker: string;
  readonly host: string;
  readonly port: number;
  stop(): Promise<string>;
}

class Demo {
  readonly #root: string;
  readonly #dir: string;
  readonly #narrator: Narrator;
  readonly #signal: AbortSignal;
  readonly #cli: CliRunner;
  /** Stopped in reverse order. */
  readonly #started: Started[] = [];
  /** The last state a wait saw, for its timeout message. */
  #last = '';

  constructor(root: string, dir: string, narrator: Narrator, signal: AbortSignal) {
    this.#root = root;
    this.#dir = dir;
    this.#narrator = narrator;
    this.#signal = signal;
    this.#cli = new CliRunner({ cli: join(root, 'dist', 'cli.js'), cwd: dir, narrator, env: { COSIGN_PASSWORD } });
  }

  async play(): Promise<void> {
    const n = this.#narrator;
    const signal = this.#signal;

    n.step('Start a throwaway registry on a free loopback port');
    const registry = await this.#startRegistry();
    const host = registry.host;
    const insecure = ['--registry-insecure', host];

    n.step('Seed: two key pairs, a signed useful-server-image, a signed useful-bundle pinning it');
    const seeded = await seed(registry, this.#dir, this.#cli, n, signal);

    n.step('Start bundle-promoter run over the demo promotions (no cluster, no Redis)');
    const files = await this.#copyPromotions(host);
    n.say(`promotions/${files.join(', promotions/')} (from demo/promotions/, ${PLACEHOLDER} → ${host})`);
    const status = await this.#startRun(host);

    n.step(`dev → test: ${TEST} promotes ${seeded.bundle}`);
    const test = await this.#waitForPhase(status, TEST, 'Succeeded');
    this.#expectDigest(test, seeded);
    n.ok(`${TEST} Succeeded: ${test.status.promotedDigest ?? ''} is now ${host}/${REPOS.test}:${TAG}`);

    n.step(`test → prod: ${PROD} is blocked until the e2e tests have signed the test copy`);
    const blocked = await waitFor(`${PROD} to be blocked by its annotation policy`, async () => {
      const p = await status.promotion(PROD, signal);
      if (p?.status.phase === 'Succeeded') throw new DemoFailure(`${PROD} was promoted without the e2e-tests-passed annotation`);
      const ready = readyOf(p);
      if (p?.status.phase !== 'Failed' || ready === undefined) return undefined;
      if (!ready.message.includes(BLOCKED_REASON)) throw new DemoFailure(`${PROD} failed for another reason: ${describePromotion(p)}`);
      return ready;
    }, { signal, describe: () => this.#last });
    n.ok(`${PROD} blocked (Ready ${blocked.status}, ${blocked.reason}): ${blocked.message}`);

    n.step('The e2e tests pass: sign the test copy with e2e-tests-passed=True');
    const testRef = `${host}/${REPOS.test}:${TAG}`;
    await this.#cliMustPass(['sign', '--key', seeded.keys.bundle.key, '-a', 'e2e-tests-passed=True', ...insecure, testRef]);
    n.ok(`${testRef} carries a signature with e2e-tests-passed=True`);

    n.step(`Ask ${PROD} to try again: a new ${REQUESTED_AT} in promotions/${PROD}.yaml`);
    const requestedAt = await this.#bumpRequestedAt(`${PROD}.yaml`);
    n.say(`${REQUESTED_AT}: "${requestedAt}"`);

    n.step(`test → prod: ${PROD} promotes what ${TEST} promoted`);
    const prod = await this.#waitForPhase(status, PROD, 'Succeeded', requestedAt);
    this.#expectDigest(prod, seeded);
    n.ok(`${PROD} Succeeded: ${prod.status.promotedDigest ?? ''} is now ${host}/${REPOS.prod}:${TAG}`);

    n.step('Anyone can check prod: verify the annotated signature there');
    const prodRef = `${host}/${REPOS.prod}:${TAG}`;
    const verified = await this.#cliMustPass(['verify', '--key', seeded.keys.bundle.pub, '-a', 'e2e-tests-passed=True', '--tlog', 'ignore', ...insecure, prodRef]);
    await writeFile(join(this.#dir, 'verify-prod.json'), verified.stdout);
    n.ok(`verify passed for ${prodRef} (payloads in verify-prod.json)`);

    n.step('Status (GET /status)');
    const view = await status.status(signal);
    await writeFile(join(this.#dir, 'status.json'), `${JSON.stringify(view, null, 2)}\n`);
    n.say(statusTable(view.promotions));
    if (view.problems.length > 0) throw new DemoFailure(`/status reports problems: ${JSON.stringify(view.problems)}`);

    n.step('Metrics (GET /metrics, excerpt: non-zero samples; all of it in metrics.txt)');
    const metrics = await status.metrics(signal);
    await writeFile(join(this.#dir, 'metrics.txt'), metrics);
    const excerpt = metricsExcerpt(metrics);
    n.say(excerpt.join('\n'));
    for (const [name, result] of [[TEST, 'succeeded'], [PROD, 'failed'], [PROD, 'succeeded']] as const) {
      const line = excerpt.find((l) => l.startsWith('bundle_promoter_promotions_total{') && l.includes(`name="${name}"`) && l.includes(`result="${result}"`));
      if (line === undefined || Number(line.split(' ').at(-1)) < 1) {
        throw new DemoFailure(`/metrics has no bundle_promoter_promotions_total{name="${name}",result="${result}"} ≥ 1`);
      }
    }
  }

  /** Stops everything started, newest first, and checks each process is gone and its port closed. */
  async stopAll(): Promise<boolean> {
    const n = this.#narrator;
    n.step('Stop everything the demo started');
    let clean = true;
    if (this.#started.length === 0) n.say('nothing was started');
    for (const s of this.#started.toReversed()) {
      try {
        n.say(`${s.what}: ${await s.stop()}`);
      } catch (e) {
        clean = false;
        n.say(`${s.what}: stopping failed: ${(e as Error).message}`);
      }
      const alive = s.pid !== undefined && (await processAlive(s.pid, s.marker));
      const open = await portAccepts(s.host, s.port);
      if (alive || open) {
        clean = false;
        n.fail(`${s.what} is still there (pid ${s.pid ?? '?'} ${alive ? 'alive' : 'gone'}, ${s.host}:${s.port} ${open ? 'open' : 'closed'})`);
      } else {
        n.ok(`${s.what} gone (pid ${s.pid ?? '?'}), ${s.host}:${s.port} closed`);
      }
    }
    return clean;
  }

  async #startRegistry(): Promise<TestRegistry> {
    if (!onPath('docker-registry')) {
      throw new DemoFailure("docker-registry is not on PATH: 'make demo' installs Debian's package (apt-get install docker-registry)");
    }
    const registry = await startRegistry();
    const [pid] = await pidsWithArgument(registry.configFile);
    const [hostname, port] = registry.host.split(':') as [string, string];
    this.#started.push({
      what: 'registry', pid, marker: 'docker-registry', host: hostname, port: Number(port),
      stop: async () => {
        await copyFile(registry.logFile, join(this.#dir, 'registry.log')).catch(() => undefined);
        await registry.stop();
        return 'stopped (its log is registry.log)';
      },
    });
    this.#narrator.ok(`registry ${registry.host} (pid ${pid ?? '?'}, docker-registry ${registry.configFile})`);
    return registry;
  }

  /** demo/promotions/*.yaml → <dir>/promotions/, with the registry host in place of the placeholder. */
  async #copyPromotions(host: string): Promise<string[]> {
    const from = join(this.#root, 'demo', 'promotions');
    const to = join(this.#dir, 'promotions');
    await mkdir(to, { recursive: true });
    const files = (await readdir(from)).filter((f) => /\.ya?ml$/.test(f)).sort();
    for (const file of files) {
      const text = await readFile(join(from, file), 'utf8');
      await writeFile(join(to, file), text.replaceAll(PLACEHOLDER, host));
    }
    return files;
  }

  async #startRun(host: string): Promise<StatusClient> {
    const args = ['run', '--promotions', 'promotions', '--secrets-dir', 'secrets', '--listen', '127.0.0.1:0', '--registry-insecure', host];
    this.#narrator.command(args);
    const { run, url } = await RunProcess.start({ cli: join(this.#root, 'dist', 'cli.js'), args, cwd: this.#dir, logFile: join(this.#dir, 'run.log') }, this.#signal);
    const { hostname, port } = new URL(url);
    this.#started.push({
      what: 'bundle-promoter run', pid: run.pid, marker: 'cli.js', host: hostname, port: Number(port),
      stop: async () => `exited ${await run.stop()} (its log is run.log)`,
    });
    this.#narrator.ok(`bundle-promoter run (pid ${run.pid ?? '?'}) serves ${url}/status, /metrics; status files in promotions/.status/`);
    return new StatusClient(url);
  }

  /**
   * Polls /status until `name` reaches `phase`; a `Failed` phase ends the wait at once (with `interval: 24h`
   * nothing retries within the demo). With `requestedAt`, only an attempt for that request counts.
   */
  #waitForPhase(status: StatusClient, name: string, phase: string, requestedAt?: string): Promise<PromotionView> {
    return waitFor(`${name} to reach ${phase}`, async () => {
      const p = await status.promotion(name, this.#signal);
      this.#last = describePromotion(p);
      if (p === undefined || (requestedAt !== undefined && p.status.lastHandledRequestedAt !== requestedAt)) return undefined;
      if (p.status.phase === phase) return p;
      if (p.status.phase === 'Failed') throw new DemoFailure(`${name} failed: ${this.#last}`);
      return undefined;
    }, { signal: this.#signal, describe: () => this.#last });
  }

  #expectDigest(p: PromotionView, seeded: Seeded): void {
    if (p.status.promotedDigest !== seeded.bundleDigest) {
      throw new DemoFailure(`${p.name} promoted ${p.status.promotedDigest ?? '(nothing)'}, expected the seeded bundle ${seeded.bundleDigest}`);
    }
  }

  async #cliMustPass(args: string[]): Promise<{ stdout: string; stderr: string }> {
    const result = await this.#cli.run(args, this.#signal);
    this.#narrator.output(result.stderr);
    if (result.code !== 0) throw new DemoFailure(`bundle-promoter ${args[0]} exited ${result.code}`);
    return result;
  }

  /**
   * Sets a new requestedAt annotation in a promotion file, comments kept. Written to a temp name and
   * renamed, so the watcher of `run` never reads half a file.
   */
  async #bumpRequestedAt(file: string): Promise<string> {
    const path = join(this.#dir, 'promotions', file);
    const doc = parseDocument(await readFile(path, 'utf8'));
    const value = new Date().toISOString();
    doc.setIn(['metadata', 'annotations', REQUESTED_AT], value);
    await writeFile(`${path}.tmp`, doc.toString());
    await rename(`${path}.tmp`, path);
    return value;
  }
}

/** Lists the files the demo kept, relative to its directory. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

async function main(): Promise<number> {
  const narrator = new Narrator();
  const controller = new AbortController();
  const interrupt = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) return;
    narrator.fail(`${sig}: stopping what the demo started…`);
    controller.abort(new DemoInterrupted(sig));
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, interrupt);

  const dir = await mkdtemp(join(tmpdir(), 'bundle-promoter-demo-'));
  narrator.say(`bundle-promoter demo; its files go to ${dir}`);
  narrator.say(`"bundle-promoter" below is ${process.execPath} <checkout>/dist/cli.js, run in that directory`);
  let code = 0;
  let demo: Demo | undefined;
  try {
    demo = new Demo(checkoutRoot(), dir, narrator, controller.signal);
    await demo.play();
  } catch (e) {
    if (controller.signal.aborted) {
      code = 130;
      narrator.fail('interrupted');
    } else {
      code = 1;
      narrator.fail(`FAILED: ${e instanceof DemoFailure ? e.message : ((e as Error).stack ?? String(e))}`);
    }
  }
  if (demo !== undefined && !(await demo.stopAll())) code = code === 0 ? 1 : code;

  const seconds = narrator.elapsedSeconds();
  narrator.step('Done');
  const files = await listFiles(dir);
  if (files.length === 0) {
    await rm(dir, { recursive: true, force: true });
    narrator.say('no files were written');
  } else {
    narrator.say(`files kept in ${dir}:`);
    narrator.say(files.map((f) => `  ${f}`).join('\n'));
    narrator.say(`remove them with: rm -rf ${dir}`);
  }
  narrator.say(code === 0 ? `demo passed in ${seconds} s` : `demo ${code === 130 ? 'interrupted' : 'FAILED'} (exit ${code}) after ${seconds} s`);
  return code;
}

process.exitCode = await main();
