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
      expect(r.stdout).toMatch(/plan \| bundle: 2 \(2 already in the target\)/);
      expect(r.stdout).toContain(`present bundle      ${src.host}/dev/app@${fixture.root.digest}`);
    });
  });

  describe('when the input is wrong', () => {
    it.each([
      [['copy', '--bundle', 'UPPER/Case:v1', '--to-repo', 'r.example/x'], /bundle-promoter: error: \[INVALID_REFERENCE\].*UPPER\/Case:v1/, 1],
      [['copy', '--bundle', 'r.example/a:v1', '--to-repo', 'r.example/b:tag'], /\[INVALID_REFERENCE\].*r\.example\/b:tag/, 1],
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
