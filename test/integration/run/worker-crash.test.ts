import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCommand, type SpawnedCommand } from '../../support/cli-process.js';
import { eventually } from '../../support/eventually.js';
import { FaultProxy } from '../../support/fault-proxy.js';
import { Fixtures, randomLayer } from '../../support/fixtures.js';
import { RawClient } from '../../support/raw-client.js';
import { startRedisServer, type TestRedisServer } from '../../support/redis-server.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';

/**
 * A worker killed with SIGKILL in the middle of a blob upload: the job's lock runs out, another process
 * takes the job up again (BullMQ stalled-job recovery), finishes it without re-sending what was already
 * copied, and no bundle tag was visible before the content was complete.
 */
describe('when the process running a promotion is killed mid-blob', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  let redis: TestRedisServer;
  let dir: string;
  const processes: SpawnedCommand[] = [];
  let bundleDigest: string;
  let bigLayer: string;
  let smallLayers: string[];

  const start = () => {
    const p = spawnCommand(['run', '--promotions', dir, '--registry-insecure', src.host, '--registry-insecure', proxy.host, '--job-lock-duration', '2'], { REDIS_URL: redis.url });
    processes.push(p);
    return p;
  };

  beforeAll(async () => {
    [src, dst, redis] = await Promise.all([startRegistry(), startRegistry(), startRedisServer()]);
    proxy = await FaultProxy.start(dst);
    const fx = new Fixtures(RawClient.for(src));
    const small = await Promise.all([randomLayer(4096, 'crash-a'), randomLayer(4096, 'crash-b')]);
    const big = await randomLayer(8 * 1024 * 1024, 'crash-big');
    const a = await fx.pushImage('dev/app', { layers: small });
    const b = await fx.pushImage('dev/app', { layers: [big] });
    smallLayers = [...a.blobs];
    bigLayer = b.blobs[b.blobs.length - 1]!;
    bundleDigest = (await fx.pushBundle('dev/app', { images: [a.ref, b.ref], tag: 'v1' })).digest;
    dir = await mkdtemp(join(tmpdir(), 'bp-crash-'));
    await writeFile(join(dir, 'app.yaml'), [
      'apiVersion: bundlepromoter.dev/v1alpha1', 'kind: BundlePromotion', 'metadata: {name: app}', 'spec:',
      `  source: {bundle: "${src.host}/dev/app:v1"}`, `  target: {repository: "${proxy.host}/prod/app"}`, '',
    ].join('\n'));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => (p.child.exitCode === null ? p.kill('SIGKILL') : undefined)));
    await proxy?.stop();
    await Promise.all([src?.stop(), dst?.stop(), redis?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('another process finishes the job, re-sending nothing already copied, and no tag was exposed early', async () => {
    const uploadOf = (digest: string) => (r: { method: string; query: string }) => r.method === 'PUT' && decodeURIComponent(r.query).includes(`digest=${digest}`);
    const held = proxy.inject({ match: uploadOf(bigLayer), times: 1, action: 'hold' });
    const first = start();
    await eventually('the big blob upload to be under way', () => held.hits === 1, { timeoutMs: 60_000 });
    await eventually('the small blobs to be copied', async () => (await Promise.all(smallLayers.map((d) => RawClient.for(dst).blobExists('prod/app', d)))).every(Boolean));
    expect(await RawClient.for(dst).listTags('prod/app')).not.toContain('v1');
    expect(await first.kill('SIGKILL')).toBe(137);

    const second = start();
    const status = await eventually('the promotion to succeed in the second process', async () => {
      const text = await readFile(join(dir, '.status', 'default.app.yaml'), 'utf8').catch(() => '');
      return /phase: Succeeded/.test(text) ? text : undefined;
    }, { timeoutMs: 90_000 });
    expect(status).toContain(bundleDigest);
    expect((await RawClient.for(dst).headManifest('prod/app', 'v1'))?.digest).toBe(bundleDigest);
    expect(await RawClient.for(dst).blobExists('prod/app', bigLayer)).toBe(true);
    for (const digest of smallLayers) {
      const puts = proxy.requests.filter(uploadOf(digest));
      expect(puts.length, `uploads of ${digest}`).toBe(1);
    }
    expect(second.logs.some((l) => l['msg'] === 'promotion started')).toBe(true);
    expect(await second.stop()).toBe(0);
  }, 150_000);
});
