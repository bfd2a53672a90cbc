import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCommand, type RunningCommand } from '../../support/cli-process.js';
import { eventually } from '../../support/eventually.js';
import { FaultProxy } from '../../support/fault-proxy.js';
import { Fixtures, randomLayer } from '../../support/fixtures.js';
import { RawClient } from '../../support/raw-client.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';

interface Status { phase?: string; observedGeneration?: number; jobId?: string; lastPromotion?: { generation: number; result: string; tags: string[] } }

describe('when a promotion is edited while its job runs', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let bp: RunningCommand;
  let url: string;
  let layer: string;
  let bundleDigest: string;
  const statusOf = async (): Promise<Status> =>
    ((await (await fetch(`${url}/status`)).json()) as { promotions: { status: Status }[] }).promotions[0]?.status ?? {};
  const write = (tags: string[]) => writeFile(join(dir, 'app.yaml'), [
    'apiVersion: bundlepromoter.dev/v1alpha1', 'kind: BundlePromotion', 'metadata: {name: app}', 'spec:',
    `  source: {bundle: "${src.host}/dev/app:v1"}`, `  target: {repository: "${proxy.host}/prod/app", tags: [${tags.join(', ')}]}`, '',
  ].join('\n'));

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await FaultProxy.start(dst);
    const fx = new Fixtures(RawClient.for(src));
    const image = await fx.pushImage('dev/app', { layers: [await randomLayer(64 * 1024, 'edit-while-running')] });
    layer = image.blobs[image.blobs.length - 1]!;
    bundleDigest = (await fx.pushBundle('dev/app', { images: [image.ref], tag: 'v1' })).digest;
    dir = await mkdtemp(join(tmpdir(), 'bp-edit-'));
  });
  afterAll(async () => {
    if (bp) await bp.stop();
    await proxy?.stop();
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the new generation wins, and status says which generation it reflects', async () => {
    const held = proxy.inject({ match: (r) => r.method === 'PUT' && decodeURIComponent(r.query).includes(`digest=${layer}`), times: 1, action: 'hold' });
    await write(['v1']);
    bp = startCommand(['run', '--promotions', dir, '--listen', '127.0.0.1:0', '--registry-insecure', src.host, '--registry-insecure', proxy.host]);
    url = (await bp.waitForLog('the HTTP server', (l) => typeof l['url'] === 'string'))['url'] as string;
    await eventually('generation 1 to be copying', () => held.hits === 1);
    const first = await statusOf();
    expect(first).toMatchObject({ observedGeneration: 1, phase: 'Promoting' });

    await write(['v1', 'stable']);
    const edited = await eventually('generation 2 to be seen', async () => {
      const s = await statusOf();
      return s.observedGeneration === 2 ? s : undefined;
    });
    expect(edited.jobId).not.toBe(first.jobId);
    // Generation 1 is held mid-copy: manifests whose own blobs are in may carry their `.imgpkg` tags (the
    // bundle's), but neither a tag of the bundle nor its locations image, which marks it complete.
    const midCopy = await RawClient.for(dst).listTags('prod/app');
    expect(midCopy.filter((t) => !/^sha256-[0-9a-f]{64}\.imgpkg$/.test(t))).toEqual([]);

    held.release();
    const done = await eventually('generation 2 to succeed', async () => {
      const s = await statusOf();
      return s.phase === 'Succeeded' ? s : undefined;
    });
    expect(done.lastPromotion).toMatchObject({ generation: 2, result: 'Succeeded', tags: ['v1', 'stable'] });
    expect((await RawClient.for(dst).headManifest('prod/app', 'stable'))?.digest).toBe(bundleDigest);
  }, 90_000);
});
