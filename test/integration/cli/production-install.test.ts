import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { buildPromotionFixture, type PromotionFixture } from '../../support/fixtures.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..', '..');

/**
 * What the Dockerfile's final stage runs — `node dist/cli.js` over production dependencies only — tested
 * from a clean install of the packed package (`npm pack`, then `npm install --omit=dev`), offline from the
 * npm cache the build filled. A dependency that only devDependencies provide fails here, not in production.
 */
describe('a clean production install', () => {
  let dir: string;
  let cli: string;
  let src: TestRegistry;
  let dst: TestRegistry;
  let fixture: PromotionFixture;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bp-install-'));
    await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT });
    const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
    if (tarball === undefined) throw new Error('npm pack produced no tarball');
    await run('npm', ['install', '--prefix', join(dir, 'app'), '--omit=dev', '--offline', '--no-audit', '--no-fund', '--no-package-lock', join(dir, tarball)], { cwd: dir });
    cli = join(dir, 'app', 'node_modules', '.bin', 'bundle-promoter');
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

  it('runs copy and verify from the installed bin', async () => {
    const hosts = ['--registry-insecure', src.host, '--registry-insecure', dst.host];
    const copy = await run(cli, ['copy', '-b', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/app`, '--cosign-signatures', '--json', ...hosts]);
    expect(JSON.parse(copy.stdout).sourceDigest).toBe(fixture.root.digest);
    expect(await RawClient.for(dst).listTags('prod/app')).toContain('v1');
    const keyFile = join(dir, 'fixture.pub');
    await writeFile(keyFile, fixture.key.publicKeyPem);
    const verify = await run(cli, ['verify', '--key', keyFile, ...hosts, `${dst.host}/prod/app:v1`]);
    expect(JSON.parse(verify.stdout).length).toBeGreaterThan(0);
  });
});
