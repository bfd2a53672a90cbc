import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startCommand, type RunningCommand } from '../../support/cli-process.js';
import { eventually } from '../../support/eventually.js';
import { Fixtures, randomLayer } from '../../support/fixtures.js';
import { RawClient } from '../../support/raw-client.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';

interface StatusView {
  promotions: { namespace: string; name: string; generation: number; status: { phase?: string; observedGeneration?: number; promotedDigest?: string; conditions?: { type: string; status: string; reason: string; message: string }[] } }[];
  problems: { file: string; errors: string[] }[];
}

function promotion(name: string, source: string, target: string, extra = ''): string {
  return `apiVersion: bundlepromoter.dev/v1alpha1
kind: BundlePromotion
metadata:
  name: ${name}
spec:
  source:
    bundle: ${source}
  target:
    repository: ${target}
${extra}`;
}

describe('bundle-promoter run --promotions DIR (no cluster, no Redis)', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let dir: string;
  let run: RunningCommand;
  let url: string;
  let bundleDigest: string;
  const status = async (): Promise<StatusView> => (await (await fetch(`${url}/status`)).json()) as StatusView;
  const phaseOf = async (name: string) => (await status()).promotions.find((p) => p.name === name)?.status;

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    const fx = new Fixtures(RawClient.for(src));
    const image = await fx.pushImage('dev/app', { layers: [await randomLayer(2048, 'dir-mode')] });
    bundleDigest = (await fx.pushBundle('dev/app', { images: [image.ref], tag: 'v1' })).digest;
    dir = await mkdtemp(join(tmpdir(), 'bp-run-'));
    await writeFile(join(dir, 'app.yaml'), promotion('app', `${src.host}/dev/app:v1`, `${dst.host}/prod/app`));
    run = startCommand(['run', '--promotions', dir, '--listen', '127.0.0.1:0', '--registry-insecure', src.host, '--registry-insecure', dst.host]);
    const line = await run.waitForLog('the HTTP server', (l) => typeof l['url'] === 'string');
    url = line['url'] as string;
  });
  afterAll(async () => {
    if (run) expect(await run.stop()).toBe(0);
    await Promise.all([src?.stop(), dst?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('when a promotion file is there, it promotes the bundle and reports Ready in /status and the status file', async () => {
    const s = await eventually('app to succeed', async () => {
      const st = await phaseOf('app');
      return st?.phase === 'Succeeded' ? st : undefined;
    });
    expect(s.promotedDigest).toBe(bundleDigest);
    expect(s.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Promoted' });
    expect((await RawClient.for(dst).headManifest('prod/app', 'v1'))?.digest).toBe(bundleDigest);
    const file = parseYaml(await readFile(join(dir, '.status', 'default.app.yaml'), 'utf8')) as { status: unknown };
    expect(file.status).toEqual((await status()).promotions.find((p) => p.name === 'app')?.status);
  });

  it('when the file is edited, it runs the new generation and writes the new tags', async () => {
    await writeFile(join(dir, 'app.yaml'), promotion('app', `${src.host}/dev/app:v1`, `${dst.host}/prod/app`, '    tags: [v1, stable]\n'));
    const s = await eventually('generation 2 to succeed', async () => {
      const st = await phaseOf('app');
      return st?.observedGeneration === 2 && st.phase === 'Succeeded' ? st : undefined;
    });
    expect(s.promotedDigest).toBe(bundleDigest);
    expect((await RawClient.for(dst).headManifest('prod/app', 'stable'))?.digest).toBe(bundleDigest);
  });

  it('when a file is malformed, it names the file, document and field, and the other promotions still run', async () => {
    await writeFile(join(dir, 'broken.yaml'), `${promotion('broken', `${src.host}/dev/app:v1`, `${dst.host}/prod/broken`, '  verify:\n    authorities: [{keys: [{pem: x}], tlog: sometimes}]\n')}`);
    await writeFile(join(dir, 'other.yaml'), promotion('other', `${src.host}/dev/app:v1`, `${dst.host}/prod/other`));
    const problems = await eventually('the broken file to be reported', async () => {
      const st = await status();
      return st.problems.length > 0 ? st.problems : undefined;
    });
    expect(problems[0]?.file).toMatch(/broken\.yaml$/);
    expect(problems[0]?.errors.join('\n')).toMatch(/broken\.yaml document 1: spec\.verify\.authorities\[0\]\.tlog/);
    await eventually('other to succeed', async () => (await phaseOf('other'))?.phase === 'Succeeded');
    expect((await status()).promotions.map((p) => p.name).sort()).toEqual(['app', 'other']);
    expect(await RawClient.for(dst).listTags('prod/broken')).toEqual([]);
  });
});
