import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PromotionEngine, type PlanRequest } from '../../../src/promote/index.js';
import { RegistryClient } from '../../../src/oci/index.js';
import { silentLogger } from '../../../src/log.js';
import { rejectionOf } from '../../support/failure.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { FaultProxy, type ResponseSpoil } from '../../support/fault-proxy.js';
import { Fixtures, randomLayer, type PushedBundle, type PushedImage } from '../../support/fixtures.js';

// Blob bodies spoiled on the wire between the source registry and us (FaultProxy 'response' rules): a digest
// mismatch found mid-stream must stop the promotion with nothing committed; a body that breaks off is retried.

describe('PromotionEngine, when a blob body is spoiled on the wire', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  let image: PushedImage;
  let bundle: PushedBundle;
  let n = 0;
  let target: string;

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    const fx = new Fixtures(RawClient.for(src));
    image = await fx.pushImage('dev/app', { layers: [await randomLayer(512 * 1024, 'wire-layer')] });
    bundle = await fx.pushBundle('dev/app', { images: [image.ref], tag: 'v1' });
  });
  afterAll(async () => Promise.all([src?.stop(), dst?.stop()]));
  beforeEach(async () => {
    proxy = await FaultProxy.start(src);
    target = `wire/app${n++}`;
  });
  afterEach(async () => proxy?.stop());

  const spoilBlob = (digest: string, spoil: ResponseSpoil) =>
    proxy.inject({ match: (r) => r.method === 'GET' && r.path === `/v2/dev/app/blobs/${digest}`, times: 1, action: 'response', spoil });

  async function promote(): Promise<Awaited<ReturnType<PromotionEngine['promote']>>> {
    const registry = new RegistryClient({ insecure: [proxy.host, dst.host], retry: { baseDelayMs: 10, maxDelayMs: 50 }, logger: silentLogger() });
    const req: PlanRequest = {
      source: { registry: proxy.host, repository: 'dev/app', tag: 'v1' },
      target: { registry: dst.host, repository: target },
      attached: { signatures: true, attestations: false, sboms: false, referrers: false },
    };
    try {
      return await new PromotionEngine({ registry, log: silentLogger() }).promote(req);
    } finally {
      await registry.close();
    }
  }

  const expectNothingCommitted = async (digest: string) => {
    expect(await RawClient.for(dst).blobExists(target, digest)).toBe(false);
    expect(await RawClient.for(dst).listTags(target)).not.toContain('v1');
  };

  it('when a streamed layer has one byte flipped mid-body, fails with DIGEST_MISMATCH and commits no blob and no tag', async () => {
    const rule = spoilBlob(image.layerDigests[0]!, { kind: 'corrupt' });
    const f = await rejectionOf(promote());
    expect(rule.hits).toBe(1);
    expect(f.code).toBe('DIGEST_MISMATCH');
    expect(f.message).toContain(image.layerDigests[0]!);
    await expectNothingCommitted(image.layerDigests[0]!);
  });

  it('when a config read into memory has one byte flipped, fails with DIGEST_MISMATCH naming it', async () => {
    const rule = spoilBlob(image.configDigest, { kind: 'corrupt' });
    const f = await rejectionOf(promote());
    expect(rule.hits).toBe(1);
    expect(f.code).toBe('DIGEST_MISMATCH');
    expect(f.message).toContain(image.configDigest);
    await expectNothingCommitted(image.configDigest);
  });

  it('when the bundle layer is served with a Content-Length 10 bytes short (a short body that looks complete), fails with DIGEST_MISMATCH', async () => {
    const rule = spoilBlob(bundle.layerDigest, { kind: 'content-length', delta: -10 });
    const f = await rejectionOf(promote());
    expect(rule.hits).toBe(1);
    expect(f.code).toBe('DIGEST_MISMATCH');
    expect(await RawClient.for(dst).listTags(target)).not.toContain('v1');
  });

  it('when a streamed layer is served with a Content-Length 10 bytes short, fails with DIGEST_MISMATCH and commits no blob', async () => {
    const rule = spoilBlob(image.layerDigests[0]!, { kind: 'content-length', delta: -10 });
    const f = await rejectionOf(promote());
    expect(rule.hits).toBe(1);
    expect(f.code).toBe('DIGEST_MISMATCH');
    await expectNothingCommitted(image.layerDigests[0]!);
  });

  it.each([
    ['the streamed layer breaks off halfway', (): ResponseSpoil => ({ kind: 'truncate' }), () => image.layerDigests[0]!],
    ['the streamed layer announces 10 bytes more than it sends', (): ResponseSpoil => ({ kind: 'content-length', delta: 10 }), () => image.layerDigests[0]!],
    ['the config breaks off halfway', (): ResponseSpoil => ({ kind: 'truncate' }), () => image.configDigest],
  ])('when %s once, retries and copies the right bytes', async (_, spoil, digest) => {
    const rule = spoilBlob(digest(), spoil());
    const result = await promote();
    expect(rule.hits).toBe(1);
    expect(result.sourceDigest).toBe(bundle.digest);
    const copied = await RawClient.for(dst).getBlob(target, digest());
    expect(copied.equals(await RawClient.for(src).getBlob('dev/app', digest()))).toBe(true);
    expect((await RawClient.for(dst).getManifest(target, 'v1')).digest).toBe(bundle.digest);
  });
});
