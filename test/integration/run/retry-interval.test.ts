import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCommand, startCommand, type RunningCommand } from '../../support/cli-process.js';
import { eventually } from '../../support/eventually.js';
import { Fixtures, randomLayer } from '../../support/fixtures.js';
import { RawClient } from '../../support/raw-client.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';

interface Status { phase?: string; jobId?: string; conditions?: { type: string; status: string; reason: string; message: string }[]; history?: { result: string }[] }

/** A failed promotion is tried again once per spec.interval, with nothing touched but the source's signatures. */
describe('when a gated promotion fails and its source is signed afterwards', () => {
  let reg: TestRegistry;
  let dir: string;
  let bp: RunningCommand;
  let url: string;
  let bundleDigest: string;
  const env = { COSIGN_PASSWORD: 'retry-interval' };
  const statusOf = async (): Promise<Status> =>
    ((await (await fetch(`${url}/status`)).json()) as { promotions: { status: Status }[] }).promotions[0]?.status ?? {};

  beforeAll(async () => {
    reg = await startRegistry();
    const fx = new Fixtures(RawClient.for(reg));
    const image = await fx.pushImage('dev/app', { layers: [await randomLayer(2048, 'retry-interval')] });
    bundleDigest = (await fx.pushBundle('dev/app', { images: [image.ref], tag: 'v1' })).digest;
    dir = await mkdtemp(join(tmpdir(), 'bp-retry-'));
    expect((await runCommand(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], env)).code).toBe(0);
    expect((await runCommand(['sign', '--key', join(dir, 'cosign.key'), '--registry-insecure', reg.host, `${reg.host}/dev/app:v1`], env)).code).toBe(0);
    await writeFile(join(dir, 'promotions.yaml'), stringify({
      apiVersion: 'bundlepromoter.dev/v1alpha1', kind: 'BundlePromotion', metadata: { name: 'prod' },
      spec: {
        source: { bundle: `${reg.host}/dev/app:v1` }, target: { repository: `${reg.host}/prod/app` }, interval: '2s',
        verify: { annotations: { 'e2e-tests-passed': 'True' }, authorities: [{ tlog: 'ignore', keys: [{ pem: await readFile(join(dir, 'cosign.pub'), 'utf8') }] }] },
      },
    }));
    bp = startCommand(['run', '--promotions', dir, '--listen', '127.0.0.1:0', '--registry-insecure', reg.host]);
    url = (await bp.waitForLog('the HTTP server', (l) => typeof l['url'] === 'string'))['url'] as string;
  });
  afterAll(async () => {
    if (bp) expect(await bp.stop()).toBe(0);
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('promotes on a later interval, as a new job, without a requestedAt bump', async () => {
    const failed = await eventually('the first attempt to fail verification', async () => {
      const s = await statusOf();
      return s.conditions?.find((c) => c.type === 'Ready')?.reason === 'VerificationFailed' ? s : undefined;
    });
    expect(await RawClient.for(reg).listTags('prod/app')).not.toContain('v1');
    expect((await runCommand(['sign', '--key', join(dir, 'cosign.key'), '-a', 'e2e-tests-passed=True', '--registry-insecure', reg.host, `${reg.host}/dev/app:v1`], env)).code).toBe(0);
    const done = await eventually('a later attempt to succeed', async () => {
      const s = await statusOf();
      return s.phase === 'Succeeded' ? s : undefined;
    }, { timeoutMs: 60_000 });
    expect(done.jobId).not.toBe(failed.jobId);
    expect(done.history?.[0]?.result).toBe('Succeeded');
    expect(done.history?.some((h) => h.result === 'Failed')).toBe(true);
    expect((await RawClient.for(reg).headManifest('prod/app', 'v1'))?.digest).toBe(bundleDigest);
  }, 90_000);
});
