import { execFile } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { buildPromotionFixture, type PromotionFixture } from '../../support/fixtures.js';
import { eventually } from '../../support/eventually.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..', '..');

/**
 * What the Dockerfile's final stage runs — `node dist/cli.js` over production dependencies only — tested
 * from a clean install made the way its deps stage makes it (`npm ci --omit=dev` from the lockfile), offline
 * from the npm cache the build filled. A dependency that only devDependencies provide fails here.
 */
describe('a clean production install', () => {
  let dir: string;
  let cli: string;
  let src: TestRegistry;
  let dst: TestRegistry;
  let fixture: PromotionFixture;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bp-install-'));
    // The Dockerfile's deps and runtime stages: the lockfile's production dependencies and the built dist.
    const app = join(dir, 'app');
    await mkdir(app);
    for (const file of ['package.json', 'package-lock.json', '.npmrc']) await cp(join(ROOT, file), join(app, file));
    await cp(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
    await cp(join(ROOT, 'crds'), join(app, 'crds'), { recursive: true });
    await run('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app });
    cli = join(app, 'dist', 'cli.js');
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    fixture = await buildPromotionFixture(src, 'dev/app', { seed: 'install' });
  }, 180_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ships no dev dependency', async () => {
    const installed = await readdir(join(dir, 'app', 'node_modules'));
    for (const dev of ['vitest', 'typescript', 'vite']) expect(installed).not.toContain(dev);
  });

  it('runs copy and verify on production dependencies alone', async () => {
    const hosts = ['--registry-insecure', src.host, '--registry-insecure', dst.host];
    const copy = await run(process.execPath, [cli, 'copy', '-b', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/app`, '--cosign-signatures', '--json', ...hosts]);
    expect(JSON.parse(copy.stdout).sourceDigest).toBe(fixture.root.digest);
    expect(await RawClient.for(dst).listTags('prod/app')).toContain('v1');
    const keyFile = join(dir, 'fixture.pub');
    await writeFile(keyFile, fixture.key.publicKeyPem);
    const verify = await run(process.execPath, [cli, 'verify', '--key', keyFile, '--tlog', 'ignore', ...hosts, `${dst.host}/prod/app:v1`]);
    expect(JSON.parse(verify.stdout).length).toBeGreaterThan(0);
  });

  it('runs the long-running commands: controller and worker help, and run over a promotions directory', async () => {
    for (const command of ['controller', 'worker', 'run']) {
      const help = await run(process.execPath, [cli, command, '--help']);
      expect(help.stdout).toContain(`bundle-promoter ${command}`);
    }
    const promotions = join(dir, 'promotions');
    await mkdir(promotions);
    await writeFile(join(promotions, 'app.yaml'), [
      'apiVersion: bundlepromoter.dev/v1alpha1', 'kind: BundlePromotion', 'metadata: {name: app}', 'spec:',
      `  source: {bundle: "${src.host}/dev/app:v1"}`, `  target: {repository: "${dst.host}/prod/run"}`, '',
    ].join('\n'));
    const child = spawn(process.execPath, [cli, 'run', '--promotions', promotions, '--registry-insecure', src.host, '--registry-insecure', dst.host], { stdio: 'ignore' });
    try {
      const status = await eventually('the promotion to succeed', async () => {
        const text = await readFile(join(promotions, '.status', 'default.app.yaml'), 'utf8');
        return /phase: Succeeded/.test(text) ? text : undefined;
      }, { timeoutMs: 60_000 });
      expect(status).toContain(fixture.root.digest);
    } finally {
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    }
    expect(await RawClient.for(dst).listTags('prod/run')).toContain('v1');
  }, 90_000);
});
