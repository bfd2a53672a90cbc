import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, readlink, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const DEMO = join(ROOT, '.demo', 'build', 'demo', 'demo.js');
/** `make demo` must finish in under two minutes after the first build; the demo itself is what is timed here. */
const DEMO_LIMIT_MS = 120_000;

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  ms: number;
}

/** Runs the compiled demo as `make demo` does (cwd: the checkout); `interrupt` sends SIGINT once it matches. */
async function runDemo(interrupt?: RegExp): Promise<DemoRun> {
  const started = Date.now();
  const child = spawn(process.execPath, [DEMO], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let interrupted = false;
  const onData = (c: Buffer): void => {
    out += c.toString('utf8');
    if (interrupt !== undefined && !interrupted && interrupt.test(out)) {
      interrupted = true;
      child.kill('SIGINT');
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => child.kill('SIGKILL'), DEMO_LIMIT_MS + 30_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, out, ms: Date.now() - started };
}

/** What the narration says the demo started and where it kept its files. */
function startedBy(out: string): { dir: string; registry: { port: number; pid: number; config: string }; run: { port: number; pid: number } } {
  const dir = /its files go to (\S+)/.exec(out)?.[1];
  const registry = /✓ registry 127\.0\.0\.1:(\d+) \(pid (\d+), docker-registry (\S+)\)/.exec(out);
  const run = /✓ bundle-promoter run \(pid (\d+)\) serves http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
  if (dir === undefined || registry === null || run === null) throw new Error(`the narration names no directory, registry or run:\n${out}`);
  return {
    dir,
    registry: { port: Number(registry[1]), pid: Number(registry[2]), config: registry[3]! },
    run: { pid: Number(run[1]), port: Number(run[2]) },
  };
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** Live processes (pid, command line, cwd) from /proc. */
async function processes(): Promise<{ pid: number; cmdline: string; cwd: string }[]> {
  const found = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline === '') continue; // gone, or a zombie
    found.push({ pid: Number(entry), cmdline: cmdline.replaceAll('\0', ' '), cwd: await readlink(`/proc/${entry}/cwd`).catch(() => '') });
  }
  return found;
}

/** The processes the demo started that are still there: by pid, by the registry's config and by working directory. */
async function leftovers(s: ReturnType<typeof startedBy>): Promise<string[]> {
  return (await processes())
    .filter((p) => (p.pid === s.registry.pid && p.cmdline.includes('docker-registry')) || (p.pid === s.run.pid && p.cmdline.includes('cli.js'))
      || p.cmdline.includes(s.registry.config) || p.cwd === s.dir || p.cwd.startsWith(`${s.dir}/`))
    .map((p) => `${p.pid} ${p.cmdline}`);
}

beforeAll(async () => {
  // `make test` builds dist/cli.js (typecheck build) before vitest; the demo itself is compiled here.
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.demo.json'], { cwd: ROOT });
}, 120_000);

describe('make demo (demo/demo.ts, compiled)', () => {
  let demo: DemoRun;
  let started: ReturnType<typeof startedBy>;

  beforeAll(async () => {
    demo = await runDemo();
    started = startedBy(demo.out);
  }, DEMO_LIMIT_MS + 60_000);
  afterAll(async () => {
    if (started) await rm(started.dir, { recursive: true, force: true });
  });

  it('when run, it exits 0 within two minutes', () => {
    expect(demo.code, demo.out).toBe(0);
    expect(demo.ms).toBeLessThan(DEMO_LIMIT_MS);
    expect(demo.out).toMatch(/demo passed in [\d.]+ s/);
  });

  it('when dev → test has run, it narrates test promoted, then prod blocked with "missing or incorrect annotation"', () => {
    const test = demo.out.indexOf('✓ useful-bundle-test Succeeded: sha256:');
    const blocked = demo.out.search(/✓ useful-bundle-prod blocked \(Ready False, VerificationFailed\): .*missing or incorrect annotation/);
    expect(test, demo.out).toBeGreaterThan(0);
    expect(blocked, demo.out).toBeGreaterThan(test);
  });

  it('when the test copy is signed with e2e-tests-passed=True and requestedAt bumped, it narrates prod promoted and verify passing', () => {
    const order = [
      /\$ bundle-promoter sign --key keys\/bundle\.key -a e2e-tests-passed=True .*useful-bundle-test-repo:1\.0\.0/,
      /bundlepromoter\.dev\/requestedAt: "/,
      /✓ useful-bundle-prod Succeeded: sha256:[0-9a-f]{64} is now 127\.0\.0\.1:\d+\/useful-bundle-prod-repo:1\.0\.0/,
      /\$ bundle-promoter verify --key keys\/bundle\.pub -a e2e-tests-passed=True --tlog ignore .*useful-bundle-prod-repo:1\.0\.0/,
      /✓ verify passed for 127\.0\.0\.1:\d+\/useful-bundle-prod-repo:1\.0\.0/,
    ].map((re) => demo.out.search(re));
    expect(order.every((i) => i > 0), demo.out).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('when it shows status and metrics, both promotions are Succeeded/True on one digest and prod counts a failed and a succeeded run', () => {
    const rows = demo.out.split('\n').filter((l) => /^\s+useful-bundle-(test|prod)\s+Succeeded\s+True\s+sha256:[0-9a-f]{64}$/.test(l));
    expect(rows, demo.out).toHaveLength(2);
    expect(new Set(rows.map((r) => r.trim().split(/\s+/)[3])).size).toBe(1);
    expect(demo.out).toContain('bundle_promoter_promotions_total{namespace="default",name="useful-bundle-prod",result="failed"} 1');
    expect(demo.out).toContain('bundle_promoter_promotions_total{namespace="default",name="useful-bundle-prod",result="succeeded"} 1');
  });

  it('when it has finished, nothing it started is left: the registry and run processes are gone and their ports closed', async () => {
    expect(await leftovers(started)).toEqual([]);
    expect(await portAccepts(started.registry.port)).toBe(false);
    expect(await portAccepts(started.run.port)).toBe(false);
  });

  it('when it has finished, it keeps its files in the directory it printed, the registry host in place of the placeholder', async () => {
    const prod = await readFile(join(started.dir, 'promotions', 'useful-bundle-prod.yaml'), 'utf8');
    expect(prod).toContain(`repository: 127.0.0.1:${started.registry.port}/useful-bundle-prod-repo`);
    expect(prod).not.toContain('${REGISTRY}');
    const status = await readFile(join(started.dir, 'promotions', '.status', 'default.useful-bundle-prod.yaml'), 'utf8');
    expect(status).toMatch(/phase: Succeeded/);
    expect(demo.out).toContain(`files kept in ${started.dir}:`);
  });
});

describe('make demo, interrupted (Ctrl-C)', () => {
  let demo: DemoRun;
  let started: ReturnType<typeof startedBy>;

  beforeAll(async () => {
    demo = await runDemo(/✓ useful-bundle-test Succeeded/);
    started = startedBy(demo.out);
  }, DEMO_LIMIT_MS + 60_000);
  afterAll(async () => {
    if (started) await rm(started.dir, { recursive: true, force: true });
  });

  it('when SIGINT reaches the demo mid-run, it stops the registry and run, leaves no process or port behind and exits 130', async () => {
    expect(demo.code, demo.out).toBe(130);
    expect(demo.out).toMatch(/SIGINT: stopping what the demo started/);
    expect(demo.out).toMatch(/✓ registry gone \(pid \d+\), 127\.0\.0\.1:\d+ closed/);
    expect(demo.out).toMatch(/✓ bundle-promoter run gone \(pid \d+\), 127\.0\.0\.1:\d+ closed/);
    expect(await leftovers(started)).toEqual([]);
    expect(await portAccepts(started.registry.port)).toBe(false);
    expect(await portAccepts(started.run.port)).toBe(false);
  });
});
