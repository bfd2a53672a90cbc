import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromotionEngine, type GateVerdict, type PlanRequest, type VerificationGate } from '../../../src/promote/index.js';
import { RegistryClient, type Repository } from '../../../src/oci/index.js';
import { silentLogger } from '../../../src/log.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { buildPromotionFixture, gzip, locationsTag, packTar, readTar, type PromotionFixture } from '../../support/fixtures.js';

// Issue #9 item 3: under scope all, what is verified is the bundle's own .imgpkg/images.yml (covered by its digest),
// not the target's image-locations image, an unsigned cache anyone who can write the target can plant.

const ALL = { signatures: true, attestations: true, sboms: true, referrers: true };

/** A gate that passes everything and records what it was asked to verify, per side. */
function recordingGate(scope: 'bundle' | 'all', target: Repository): VerificationGate & { seen: { side: 'source' | 'target'; digest: string; kind: string }[] } {
  const seen: { side: 'source' | 'target'; digest: string; kind: string }[] = [];
  return {
    scope,
    seen,
    verify(subject): Promise<GateVerdict> {
      const side = subject.repo.registry === target.registry && subject.repo.repository === target.repository ? 'target' : 'source';
      seen.push({ side, digest: subject.digest, kind: subject.kind });
      return Promise.resolve({ digest: subject.digest, passed: true, reasons: [] });
    },
  };
}

describe('the promotion closure under scope all', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let fixture: PromotionFixture;
  const target = 'prod/closure';

  beforeAll(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    fixture = await buildPromotionFixture(src, 'dev/app');
  });
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  async function promote(gate: VerificationGate): Promise<void> {
    const registry = new RegistryClient({ insecure: [src.host, dst.host], retry: { baseDelayMs: 10, maxDelayMs: 200 }, logger: silentLogger() });
    const request: PlanRequest = { source: { registry: src.host, repository: 'dev/app', tag: 'v1' }, target: { registry: dst.host, repository: target }, attached: ALL };
    try {
      await new PromotionEngine({ registry, log: silentLogger() }).promote(request, { gate }, undefined);
    } finally {
      await registry.close();
    }
  }

  describe('when the target holds a planted image-locations image that drops an image', () => {
    it('still verifies every image the bundle\'s images.yml lists, in the source and in the target', async () => {
      const targetRepo = { registry: dst.host, repository: target };
      await promote(recordingGate('all', targetRepo));

      // The attacker rewrites the root bundle's locations image without the web image, and marks the nested
      // bundle as a plain image (which would hide its worker image).
      const raw = RawClient.for(dst);
      const tag = locationsTag(fixture.root.digest);
      const manifest = JSON.parse((await raw.getManifest(target, tag)).bytes.toString()) as { layers: { digest: string; size: number; mediaType: string }[] } & Record<string, unknown>;
      const layer = manifest.layers[0]!;
      const entries = await readTar(await raw.getBlob(target, layer.digest));
      const planted = entries.map((e) => {
        if (!e.name.endsWith('image-locations.yml')) return { name: e.name, content: e.content, mode: e.mode };
        const yaml = e.content.toString()
          .split(/(?=^- image: )/m)
          .filter((chunk) => !chunk.startsWith(`- image: ${fixture.web.ref}\n`))
          .join('')
          .replace(`- image: ${fixture.nested.ref}\n  isBundle: true`, `- image: ${fixture.nested.ref}\n  isBundle: false`);
        expect(yaml).not.toContain(fixture.web.ref);
        return { name: e.name, content: yaml, mode: e.mode };
      });
      const layerBytes = await gzip(await packTar(planted));
      const layerDigest = await raw.pushBlob(target, layerBytes);
      const rewritten = { ...manifest, layers: [{ ...layer, digest: layerDigest, size: layerBytes.length }] };
      await raw.pushManifest(target, tag, Buffer.from(JSON.stringify(rewritten)), (manifest['mediaType'] as string | undefined) ?? 'application/vnd.oci.image.manifest.v1+json');

      const gate = recordingGate('all', targetRepo);
      await promote(gate);
      for (const side of ['source', 'target'] as const) {
        const verified = gate.seen.filter((s) => s.side === side);
        expect(verified.map((s) => s.digest), side).toContain(fixture.web.digest);
        expect(verified.map((s) => s.digest), side).toContain(fixture.worker.digest);
        expect(verified.find((s) => s.digest === fixture.nested.digest)?.kind, side).toBe('bundle');
      }
    });
  });
});
