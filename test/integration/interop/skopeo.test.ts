import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromotionEngine } from '../../../src/promote/index.js';
import { RegistryClient } from '../../../src/oci/index.js';
import { silentLogger } from '../../../src/log.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { buildPromotionFixture, type PromotionFixture } from '../../support/fixtures.js';

// A whole-bundle cross-check with skopeo, a client that shares no code with ours: after a promotion, every manifest
// the target's tags reach (index children and referrers included) is read back with `skopeo inspect --raw` and
// must hash to its digest and equal the source's bytes; every image is `skopeo copy`-ed to a directory, and each blob
// it wrote must hash to the digest it is named by.

const run = promisify(execFile);
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface ManifestLike { mediaType?: string; manifests?: { digest: string }[]; config?: { digest: string }; layers?: { digest: string }[] }

describe('a promoted bundle, as skopeo reads it', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let fixture: PromotionFixture;
  let work: string;
  const target = 'prod/app';
  const skopeo = async (args: string[]): Promise<Buffer> =>
    Buffer.from((await run('skopeo', args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'skopeo-check-'));
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    fixture = await buildPromotionFixture(src, 'dev/app', { seed: 'skopeo-oracle' });
    const registry = new RegistryClient({ insecure: [src.host, dst.host], logger: silentLogger() });
    try {
      await new PromotionEngine({ registry, log: silentLogger() }).promote({
        source: { registry: src.host, repository: 'dev/app', tag: 'v1' },
        target: { registry: dst.host, repository: target },
        attached: { signatures: true, attestations: true, sboms: true, referrers: true },
      });
    } finally {
      await registry.close();
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Every manifest reachable from the target's tags, by digest, read with skopeo. */
  async function reachable(): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    const visit = async (ref: string, expected?: string): Promise<void> => {
      const bytes = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${dst.host}/${target}${ref}`]);
      const digest = sha256(bytes);
      if (expected !== undefined) expect(digest, ref).toBe(expected);
      if (found.has(digest)) return;
      found.set(digest, bytes);
      for (const child of (JSON.parse(bytes.toString()) as ManifestLike).manifests ?? []) await visit(`@${child.digest}`, child.digest);
    };
    for (const tag of await RawClient.for(dst).listTags(target)) await visit(`:${tag}`);
    return found;
  }

  it('reaches every manifest of the closure, each byte for byte the source\'s', async () => {
    const manifests = await reachable();
    for (const digest of fixture.expected.manifests) {
      expect(manifests.has(digest), digest).toBe(true);
      const source = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${src.host}/dev/app@${digest}`]);
      expect(manifests.get(digest)!.equals(source), digest).toBe(true);
    }
  });

  it('holds every blob of every image manifest, each hashing to its name (skopeo copy to a directory)', async () => {
    const manifests = await reachable();
    let images = 0;
    for (const [digest, bytes] of manifests) {
      const m = JSON.parse(bytes.toString()) as ManifestLike;
      if (m.manifests !== undefined || m.config === undefined) continue; // indexes: their children are visited too
      images++;
      const dir = join(work, digest.slice(7, 19));
      await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${dst.host}/${target}@${digest}`, `dir:${dir}`]);
      const wanted = [m.config.digest, ...(m.layers ?? []).map((l) => l.digest)];
      const files = (await readdir(dir)).filter((f) => /^[0-9a-f]{64}$/.test(f));
      expect(new Set(files.map((f) => `sha256:${f}`)), digest).toEqual(new Set(wanted));
      for (const f of files) expect(sha256(await readFile(join(dir, f))), `${digest} blob ${f}`).toBe(`sha256:${f}`);
      expect(sha256(await readFile(join(dir, 'manifest.json'))), digest).toBe(digest);
    }
    expect(images).toBeGreaterThanOrEqual(fixture.expected.manifests.length - 1); // all but the multi-arch index
  });
});
