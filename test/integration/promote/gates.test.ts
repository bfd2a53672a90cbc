import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { Fixtures, imgpkgTag, randomLayer } from '../../support/fixtures.js';

interface Run { code: number; stdout: string; stderr: string }

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => { stdout += c.toString(); });
  err.on('data', (c: Buffer) => { stderr += c.toString(); });
  const code = await main(args, { stdout: out, stderr: err, stdin: Readable.from([]), env: { ...process.env, ...env } });
  return { code, stdout, stderr };
}

describe('promotion gates (the seed workflow: sign → promote → verify)', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let dir: string;
  let bundleRef: string;
  let imageDigest: string;
  const env = { COSIGN_PASSWORD: 'gate-test' };
  const insecure = () => ['--registry-insecure', src.host, '--registry-insecure', dst.host];
  const copy = (repo: string, policy: string, ...extra: string[]) =>
    cli(['copy', '-b', bundleRef, '--to-repo', `${dst.host}/${repo}`, '--cosign-signatures', '--policy', join(dir, policy), '--json', ...extra, ...insecure()], env);
  const tags = (repo: string) => RawClient.for(dst).listTags(repo);

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(join(tmpdir(), 'bp-gates-'));
    const fx = new Fixtures(RawClient.for(src));
    const image = await fx.pushImage('dev/app', { layers: [await randomLayer(1024, 'gate')] });
    imageDigest = image.digest;
    await fx.pushBundle('dev/app', { images: [image.ref], tag: 'v1' });
    bundleRef = `${src.host}/dev/app:v1`;
    expect((await cli(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], env)).code).toBe(0);
    await writeFile(join(dir, 'tested.yaml'), 'authorities:\n  - keys: [cosign.pub]\n    tlog: ignore\nannotations:\n  e2e-tests-passed: "True"\n');
    await writeFile(join(dir, 'all.yaml'), 'authorities:\n  - keys: [cosign.pub]\n    tlog: ignore\nscope: all\n');
  });
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('when the source bundle lacks the required annotation', () => {
    it('fails before writing anything to the target', async () => {
      expect((await cli(['sign', '--key', join(dir, 'cosign.key'), ...insecure(), bundleRef], env)).code).toBe(0);
      const r = await copy('prod/early', 'tested.yaml');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[VERIFICATION_FAILED\].*source.*missing or incorrect annotation/);
      expect(await tags('prod/early')).toEqual([]);
    });
  });

  describe('when the source carries a signature with e2e-tests-passed=True', () => {
    it('promotes, re-verifies in the target, and cosign-style verify agrees there', async () => {
      expect((await cli(['sign', '--key', join(dir, 'cosign.key'), '-a', 'e2e-tests-passed=True', ...insecure(), bundleRef], env)).code).toBe(0);
      const r = await copy('prod/app', 'tested.yaml');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const result = JSON.parse(r.stdout);
      expect(result.verification.source).toHaveLength(1);
      expect(result.verification.source[0].passed).toBe(true);
      expect(result.verification.target[0].passed).toBe(true);
      expect(await tags('prod/app')).toContain('v1');

      const verified = await cli(['verify', '--key', join(dir, 'cosign.pub'), '-a', 'e2e-tests-passed=True', '--tlog', 'ignore', ...insecure(), `${dst.host}/prod/app:v1`]);
      expect(verified.code).toBe(0);
      const payloads = JSON.parse(verified.stdout) as { optional: Record<string, string> | null }[];
      expect(payloads.some((p) => p.optional?.['e2e-tests-passed'] === 'True')).toBe(true);

      const wrong = await cli(['verify', '--key', join(dir, 'cosign.pub'), '-a', 'e2e-tests-passed=true', '--tlog', 'ignore', ...insecure(), `${dst.host}/prod/app:v1`]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('missing or incorrect annotation');
    });
  });

  describe('when the signatures are not copied', () => {
    it('passes in the source, fails in the target, and leaves no bundle tag', async () => {
      const r = await cli(['copy', '-b', bundleRef, '--to-repo', `${dst.host}/prod/unsigned`, '--policy', join(dir, 'tested.yaml'), ...insecure()], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[VERIFICATION_FAILED\].*target.*no signatures found/);
      const t = await tags('prod/unsigned');
      expect(t).toContain(imgpkgTag(imageDigest)); // the content arrived …
      expect(t).not.toContain('v1'); // … but was never exposed
    });
  });

  describe('when the policy covers every image and one is unsigned', () => {
    it('names the unsigned image and writes nothing', async () => {
      const r = await copy('prod/all', 'all.yaml');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(imageDigest);
      expect(r.stderr).toContain('no signatures found');
      expect(await tags('prod/all')).toEqual([]);
    });

    it('passes once the image is signed too', async () => {
      expect((await cli(['sign', '--key', join(dir, 'cosign.key'), ...insecure(), `${src.host}/dev/app@${imageDigest}`], env)).code).toBe(0);
      const r = await copy('prod/all', 'all.yaml');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).verification.target).toHaveLength(2);
    });
  });

  describe('when the policy has separate rules for the bundle and its images (two keys)', () => {
    let twoRef: string;
    let twoBundle: string;
    let twoImage: string;
    const copyTwo = (repo: string) => cli(['copy', '-b', twoRef, '--to-repo', `${dst.host}/${repo}`, '--cosign-signatures', '--policy', join(dir, 'two-keys.yaml'), '--json', ...insecure()], env);
    const signWith = (key: 'release' | 'build', ref: string, ...extra: string[]) => cli(['sign', '--key', join(dir, `${key}.key`), ...extra, ...insecure(), ref], env);

    beforeAll(async () => {
      const fx = new Fixtures(RawClient.for(src));
      const image = await fx.pushImage('dev/two-img', { layers: [await randomLayer(512, 'two-keys')] });
      twoImage = image.digest;
      const bundle = await fx.pushBundle('dev/two', { images: [image.ref], tag: 'v1' });
      twoBundle = bundle.digest;
      twoRef = `${src.host}/dev/two:v1`;
      expect((await cli(['generate-key-pair', '--output-key-prefix', join(dir, 'release')], env)).code).toBe(0);
      expect((await cli(['generate-key-pair', '--output-key-prefix', join(dir, 'build')], env)).code).toBe(0);
      await writeFile(join(dir, 'two-keys.yaml'), [
        'scope: all',
        'bundle:',
        '  authorities: [{name: release, keys: [release.pub], tlog: ignore}]',
        '  annotations: {e2e-tests-passed: "True"}',
        'images:',
        `  - match: "${src.host}/dev/*"`,
        '    authorities: [{name: build, keys: [build.pub], tlog: ignore}]',
        '',
      ].join('\n'));
    });

    it('fails a bundle signed by the image key and an image signed by the bundle key', async () => {
      expect((await signWith('build', `${src.host}/dev/two@${twoBundle}`, '-a', 'e2e-tests-passed=True')).code).toBe(0);
      expect((await signWith('release', `${src.host}/dev/two-img@${twoImage}`)).code).toBe(0);
      const r = await copyTwo('prod/two-a');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[VERIFICATION_FAILED\].*source/);
      expect(r.stderr).toContain(twoBundle);
      expect(r.stderr).toContain(twoImage);
      expect(await tags('prod/two-a')).toEqual([]);
    });

    it('still fails while the image lacks the image key, once the bundle has the bundle key and annotation', async () => {
      expect((await signWith('release', `${src.host}/dev/two@${twoBundle}`, '-a', 'e2e-tests-passed=True')).code).toBe(0);
      const r = await copyTwo('prod/two-b');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(twoImage);
      expect(r.stderr).not.toContain(twoBundle);
    });

    it('passes only when the image is signed by the image key and the bundle by the bundle key with the annotation', async () => {
      expect((await signWith('build', `${src.host}/dev/two-img@${twoImage}`)).code).toBe(0);
      const r = await copyTwo('prod/two-c');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const result = JSON.parse(r.stdout) as { verification: { target: { digest: string; passed: boolean }[] } };
      expect(result.verification.target.map((v) => [v.digest, v.passed]).sort()).toEqual([[twoBundle, true], [twoImage, true]].sort());
    });
  });
});
