import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../../src/cli/main.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { FaultProxy, type RecordedRequest } from '../../support/fault-proxy.js';
import { Fixtures, buildPromotionFixture, imgpkgTag, randomLayer, type PromotionFixture } from '../../support/fixtures.js';

const CLI = join(import.meta.dirname, '..', '..', '..', 'dist', 'cli.js');

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function cli(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; onStart?: (kill: (signal?: NodeJS.Signals) => void) => void } = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  child.stdin.end(options.stdin ?? '');
  options.onStart?.((signal = 'SIGKILL') => child.kill(signal));
  return once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }));
}

const insecure = (...hosts: string[]) => hosts.flatMap((h) => ['--registry-insecure', h]);

/** Digests of the blob uploads the registry accepted (the final `PUT …?digest=` of each upload). */
function uploadedBlobs(requests: readonly RecordedRequest[]): string[] {
  return requests
    .filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201)
    .map((r) => new URLSearchParams(r.query).get('digest') ?? '');
}

describe('bundle-promoter copy', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let fixture: PromotionFixture;

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    fixture = await buildPromotionFixture(src, 'dev/app', { seed: 'cli' });
  });
  afterAll(async () => Promise.all([src?.stop(), dst?.stop()]));

  describe('when given a bundle and a target repository', () => {
    it('copies it and prints the result as JSON', async () => {
      const r = await cli(['copy', '--bundle', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/app`, '--cosign-signatures', '--include', 'att,sbom', '--json', ...insecure(src.host, dst.host)]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const result = JSON.parse(r.stdout);
      expect(result.sourceDigest).toBe(fixture.root.digest);
      expect(result.tags).toEqual(['v1']);
      expect(result.counts.blobs.uploaded).toBe(fixture.expected.blobs.length);
      expect(result.requests.requests).toBeGreaterThan(0);
      const tags = await RawClient.for(dst).listTags('prod/app');
      for (const s of fixture.signatures) expect(tags).toContain(s.tag);
      expect(tags).toContain(fixture.attestation.tag);
      expect(tags).toContain(fixture.sbom.tag);
    });

    it('prints a human summary without --json', async () => {
      const r = await cli(['copy', '-b', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/human`, '--to-tag', 'stable', '--to-tag', '1.0', ...insecure(src.host, dst.host)]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/copy \| promoted .* as stable, 1\.0/);
      expect(r.stdout).toMatch(/Succeeded/);
      const tags = await RawClient.for(dst).listTags('prod/human');
      expect(tags).toEqual(expect.arrayContaining(['stable', '1.0']));
      expect(tags).not.toContain('v1');
      expect(tags.some((t) => t.endsWith('.sig'))).toBe(false); // no --cosign-signatures
    });
  });

  describe('when stderr is a terminal', () => {
    it('draws a progress line there and keeps stdout for the summary', async () => {
      const out = new PassThrough();
      const err = Object.assign(new PassThrough(), { isTTY: true });
      const chunks: string[] = [];
      err.on('data', (c: Buffer) => chunks.push(c.toString()));
      let stdout = '';
      out.on('data', (c: Buffer) => { stdout += c.toString(); });
      const code = await main(['copy', '-b', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/tty`, ...insecure(src.host, dst.host)],
        { stdout: out, stderr: err, stdin: Readable.from([]), env: {} });
      expect(code).toBe(0);
      const progress = chunks.join('');
      expect(progress).toMatch(/copy \| blobs: \d+\/\d+ artifacts, \d+\/\d+ blobs, [\d.]+ MiB\/[\d.]+ MiB, [\d.]+ MiB\/s/);
      expect(progress.endsWith('\r\x1b[K')).toBe(true);
      expect(stdout).toContain('Succeeded');
      expect(stdout).not.toContain('\r');
    });
  });

  describe('plan', () => {
    it('lists what copy would do and writes nothing', async () => {
      const before = await RawClient.for(dst).listTags('prod/planned');
      const r = await cli(['plan', '-b', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/planned`, '--cosign-signatures', '--include', 'att,sbom,referrers', '--json', ...insecure(src.host, dst.host)]);
      expect(r.code).toBe(0);
      const plan = JSON.parse(r.stdout);
      expect(plan.sourceDigest).toBe(fixture.root.digest);
      expect(plan.artifacts.filter((a: { presentInTarget: boolean }) => !a.presentInTarget).length).toBe(plan.artifacts.length);
      expect(plan.blobs.count).toBe(fixture.expected.blobs.length);
      expect(plan.requests.byKind['PUT manifest'] ?? 0).toBe(0);
      expect(await RawClient.for(dst).listTags('prod/planned')).toEqual(before);
    });

    it('marks what the target already holds', async () => {
      const r = await cli(['plan', '-b', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/app`, '--cosign-signatures', ...insecure(src.host, dst.host)]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('plan | 2 bundles: 2 already in the target\n');
      expect(r.stdout).toContain('plan | to copy: nothing, the target holds every manifest\n');
      expect(r.stdout).toContain(`present bundle      ${src.host}/dev/app@${fixture.root.digest}`);
    });
  });

  describe('the human summary', () => {
    const summaryLine = (stdout: string) => stdout.split('\n')[1];
    const unitLines = (stdout: string) => stdout.split('\n').filter((l) => /^plan \| \d+ /.test(l));

    it('when a bundle of one multi-arch image is copied and then re-copied, counts the same bundle and image, in the singular', async () => {
      const fx = new Fixtures(RawClient.for(src));
      const amd64 = await fx.pushImage('one/app', { layers: [await randomLayer(1000, 'one-amd64')], oci: true });
      const arm64 = await fx.pushImage('one/app', { layers: [await randomLayer(1000, 'one-arm64')], oci: true, platform: { architecture: 'arm64', os: 'linux' } });
      const index = await fx.pushIndex('one/app', [amd64, arm64]);
      await fx.pushBundle('one/app', { images: [index.ref], tag: 'v1' });
      const args = ['-b', `${src.host}/one/app:v1`, '--to-repo', `${dst.host}/prod/one`, ...insecure(src.host, dst.host)];

      const planned = await cli(['plan', ...args]);
      const first = await cli(['copy', ...args]);
      const again = await cli(['copy', ...args]);
      const replanned = await cli(['plan', ...args]);

      expect([planned.code, first.code, again.code, replanned.code]).toEqual([0, 0, 0, 0]);
      // Four manifests (bundle, index, its two children) and six blobs (a config and a layer each but the index's).
      expect(summaryLine(first.stdout)).toBe('copy | 1 bundle, 1 image, 0 signature tags: 4 manifests copied');
      expect(summaryLine(again.stdout)).toBe('copy | 1 bundle, 1 image, 0 signature tags: no manifest copied, all already in the target');
      expect(unitLines(planned.stdout)).toEqual([
        'plan | 1 bundle: 0 already in the target', 'plan | 1 image: 0 already in the target',
        'plan | 0 signature tags: 0 up to date', 'plan | 1 locations image: 0 present',
      ]);
      expect(planned.stdout).toMatch(/^plan \| to copy: 4 manifests \(1 bundle, 1 index, 2 index-child\), 6 blobs \([\d.]+ MiB\) unless present$/m);
      expect(unitLines(replanned.stdout)).toEqual([
        'plan | 1 bundle: 1 already in the target', 'plan | 1 image: 1 already in the target',
        'plan | 0 signature tags: 0 up to date', 'plan | 1 locations image: 1 present',
      ]);
    });

    it('when signatures follow a copy without them, counts the same closure and says what was copied', async () => {
      const args = ['-b', `${src.host}/dev/app:v1`, '--to-repo', `${dst.host}/prod/summary`, ...insecure(src.host, dst.host)];
      const bare = await cli(['copy', ...args]);
      const signed = await cli(['copy', ...args, '--cosign-signatures', '--include', 'att,sbom']);
      const again = await cli(['copy', ...args, '--cosign-signatures', '--include', 'att,sbom']);
      expect([bare.code, signed.code, again.code]).toEqual([0, 0, 0]);
      const signedManifests = fixture.signatures.length + 3; // .sig manifests, the .att, the .sbom and the referrer
      expect(summaryLine(bare.stdout)).toBe(`copy | 2 bundles, 4 images, 0 signature tags: ${fixture.expected.manifests.length - signedManifests} manifests copied`);
      expect(summaryLine(signed.stdout)).toBe(`copy | 2 bundles, 4 images, 8 signature tags: ${signedManifests} manifests copied, the rest already in the target`);
      expect(summaryLine(again.stdout)).toBe('copy | 2 bundles, 4 images, 8 signature tags: no manifest copied, all already in the target');
      expect(again.stdout).toMatch(/^copy \| blobs: 0 uploaded, 0 mounted, 0 present; 0\.0 MiB uploaded in [\d.]+ s, \d+ requests$/m);
    });
  });

  describe('when the input is wrong', () => {
    it.each([
      [['copy', '--bundle', 'UPPER/Case:v1', '--to-repo', 'r.example/x'], /bundle-promoter: error: --bundle: invalid reference "UPPER\/Case:v1"/, 2],
      [['copy', '--bundle', 'r.example/a:v1', '--to-repo', 'r.example/b:tag'], /--to-repo: invalid reference "r\.example\/b:tag"/, 2],
      [['copy', '--to-repo', 'r.example/b'], /--bundle is required/, 2],
      [['copy', '--bundle', 'r.example/a:v1', '--to-repo', 'r.example/b', '--include', 'everything'], /unknown 'everything'/, 2],
      [['copy', '--bundle', 'r.example/a:v1', '--to-repo', 'r.example/b', '--concurrency', '0'], /--concurrency must be a positive whole number/, 2],
      [['copy', '--frobnicate'], /Unknown option '--frobnicate'/, 2],
      [['teleport'], /unknown command 'teleport'/, 2],
    ])('%j fails with a message naming the problem', async (args, message, code) => {
      const r = await cli(args as string[]);
      expect(r.stderr).toMatch(message as RegExp);
      expect(r.code).toBe(code);
    });

    it('names the missing source tag and exits 1', async () => {
      const r = await cli(['copy', '-b', `${src.host}/dev/app:nope`, '--to-repo', `${dst.host}/prod/nope`, ...insecure(src.host, dst.host)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[MANIFEST_NOT_FOUND\].*dev\/app:nope/);
    });
  });

  describe('when the copy is interrupted with SIGTERM', () => {
    it('stops, exits 130 and writes no bundle tag', async () => {
      const fx = new Fixtures(RawClient.for(src));
      const images = [];
      for (let i = 0; i < 8; i += 1) images.push(await fx.pushImage('term/app', { layers: [await randomLayer(2 * 1024 * 1024, `term-${i}`)] }));
      await fx.pushBundle('term/app', { images: images.map((i) => i.ref), tag: 'v1' });
      const proxy = await FaultProxy.start(dst);
      try {
        const r = await cli(['copy', '-b', `${src.host}/term/app:v1`, '--to-repo', `${proxy.host}/prod/term`, '--concurrency', '1', ...insecure(src.host, proxy.host)], {
          onStart: (kill) => {
            const poll = setInterval(() => {
              if (uploadedBlobs(proxy.requests).length >= 1) { clearInterval(poll); kill('SIGTERM'); }
            }, 2);
            setTimeout(() => clearInterval(poll), 30_000).unref();
          },
        });
        expect(r.code).toBe(130);
        expect(r.stderr).toContain('interrupted');
        expect(uploadedBlobs(proxy.requests).length).toBeLessThan(images.length * 2);
        expect(await RawClient.for(dst).listTags('prod/term')).not.toContain('v1');
      } finally {
        await proxy.stop();
      }
    });
  });

  describe('when the copy process is killed midway', () => {
    it('never exposes the bundle tag, and a re-run completes without re-sending what arrived', async () => {
      const fx = new Fixtures(RawClient.for(src));
      const images = [];
      for (let i = 0; i < 12; i += 1) images.push(await fx.pushImage('big/app', { layers: [await randomLayer(2 * 1024 * 1024, `kill-${i}`)] }));
      const bundle = await fx.pushBundle('big/app', { images: images.map((i) => i.ref), tag: 'v1' });
      const proxy = await FaultProxy.start(dst);
      try {
        const args = ['copy', '-b', `${src.host}/big/app:v1`, '--to-repo', `${proxy.host}/prod/big`, '--concurrency', '1', '--json', ...insecure(src.host, proxy.host)];
        const first = await cli(args, {
          onStart: (kill) => {
            // Kill as soon as three blobs have landed: the event is the proxy recording them.
            const poll = setInterval(() => {
              if (uploadedBlobs(proxy.requests).length >= 3) { clearInterval(poll); kill(); }
            }, 2);
            setTimeout(() => clearInterval(poll), 30_000).unref();
          },
        });
        expect(first.signal).toBe('SIGKILL');
        const landed = uploadedBlobs(proxy.requests);
        const totalBlobs = new Set([...images.flatMap((i) => i.blobs), ...bundle.blobs]).size;
        expect(landed.length).toBeGreaterThanOrEqual(3);
        expect(landed.length).toBeLessThan(totalBlobs);
        expect(await RawClient.for(dst).listTags('prod/big')).not.toContain('v1');

        proxy.clearRequests();
        const second = await cli(args);
        expect(second.code).toBe(0);
        const resent = uploadedBlobs(proxy.requests).filter((d) => landed.includes(d));
        expect(resent).toEqual([]);
        const result = JSON.parse(second.stdout);
        expect(result.counts.blobs.present).toBeGreaterThanOrEqual(landed.length - 1); // one may belong to a manifest already written
        const tags = await RawClient.for(dst).listTags('prod/big');
        expect(tags).toContain('v1');
        for (const image of images) expect(tags).toContain(imgpkgTag(image.digest));
      } finally {
        await proxy.stop();
      }
    });
  });
});
