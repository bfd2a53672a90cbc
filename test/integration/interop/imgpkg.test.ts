import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { PromotionEngine } from '../../../src/promote/index.js';
import { RegistryClient } from '../../../src/oci/index.js';
import { silentLogger } from '../../../src/log.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { buildPromotionFixture, readTar, referrersTag, type PromotionFixture } from '../../support/fixtures.js';

// An independent oracle: imgpkg itself. The same bundle is copied with `imgpkg copy --bundle --to-repo
// --cosign-signatures` and with ours; every tag imgpkg writes must be in ours with the same digest, and `imgpkg pull`
// must accept our copy as relocated. imgpkg is an optional peer: without it on PATH (or IMGPKG) these tests are
// reported skipped, an entry of test/skip-allowlist.txt.

const run = promisify(execFile);

function findImgpkg(): string | undefined {
  const candidates = [process.env['IMGPKG'], ...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'imgpkg'))];
  return candidates.find((c): c is string => {
    if (c === undefined || c === '') return false;
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const imgpkg = findImgpkg();
const LOCATIONS = /\.image-locations\.imgpkg$/;

describe.skipIf(imgpkg === undefined)('when imgpkg is available', () => {
  let reg: TestRegistry;
  let fixture: PromotionFixture;
  let home: string;
  const imgpkgCmd = (args: string[]) =>
    run(imgpkg!, [...args, '--registry-insecure'], { env: { ...process.env, HOME: home, IMGPKG_ACTIVE_KEYCHAINS: '' }, maxBuffer: 16 * 1024 * 1024 });

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'imgpkg-home-'));
    reg = await startRegistry();
    fixture = await buildPromotionFixture(reg, 'dev/app', { seed: 'imgpkg-interop' });
    await imgpkgCmd(['copy', '-b', `${reg.host}/dev/app:v1`, '--to-repo', `${reg.host}/by-imgpkg/app`, '--cosign-signatures']);
    const registry = new RegistryClient({ insecure: [reg.host], logger: silentLogger() });
    try {
      await new PromotionEngine({ registry, log: silentLogger() }).promote({
        source: { registry: reg.host, repository: 'dev/app', tag: 'v1' },
        target: { registry: reg.host, repository: 'by-us/app' },
        attached: { signatures: true, attestations: false, sboms: false, referrers: false },
      });
    } finally {
      await registry.close();
    }
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const digests = async (repo: string): Promise<Map<string, string>> => {
    const raw = RawClient.for(reg);
    const out = new Map<string, string>();
    for (const tag of await raw.listTags(repo)) out.set(tag, (await raw.headManifest(repo, tag))!.digest);
    return out;
  };

  const locationsYaml = async (repo: string, tag: string): Promise<unknown> => {
    const raw = RawClient.for(reg);
    const m = JSON.parse((await raw.getManifest(repo, tag)).bytes.toString()) as { layers: { digest: string }[] };
    const entries = await readTar(await raw.getBlob(repo, m.layers[0]!.digest));
    const doc = parseYaml(entries.find((e) => e.name.endsWith('image-locations.yml'))!.content.toString()) as { images: { image: string }[] };
    return { ...doc, images: [...doc.images].sort((a, b) => (a.image < b.image ? -1 : 1)) };
  };

  it('writes every content tag imgpkg writes, each naming the same digest', async () => {
    const theirs = await digests('by-imgpkg/app');
    const ours = await digests('by-us/app');
    // Locations images are rebuilt by each tool (gzip output differs): compared by content below, and the
    // `sha256-<L>.imgpkg` tags of the locations images themselves are left out.
    const locationsDigests = new Set([...theirs, ...ours].filter(([t]) => LOCATIONS.test(t)).map(([, d]) => d));
    const content = (tags: Map<string, string>) => new Map([...tags].filter(([t, d]) => !LOCATIONS.test(t) && !(t === `${d.replace(':', '-')}.imgpkg` && locationsDigests.has(d))));
    const theirContent = content(theirs);
    expect(theirContent.size).toBeGreaterThan(10);
    for (const [tag, digest] of theirContent) expect(ours.get(tag), tag).toBe(digest);
    // Ours adds only the sigstore-bundle referrer's fallback index (imgpkg 0.43 does not copy referrers).
    expect([...content(ours).keys()].filter((t) => !theirContent.has(t))).toEqual([referrersTag(fixture.root.digest)]);
  });

  it('writes image-locations with the same content for both bundles', async () => {
    for (const bundle of [fixture.root.digest, fixture.nested.digest]) {
      const tag = `${bundle.replace(':', '-')}.image-locations.imgpkg`;
      expect(await locationsYaml('by-us/app', tag), tag).toEqual(await locationsYaml('by-imgpkg/app', tag));
    }
  });

  it('imgpkg pull -r accepts our copy as relocated: every images.yml entry points into the target repository', async () => {
    const out = await mkdtemp(join(tmpdir(), 'imgpkg-pull-'));
    try {
      // imgpkg rewrites images.yml to the bundle's repository only when that repository holds every image
      // (checked through our image-locations); otherwise it leaves the dev/app references.
      await imgpkgCmd(['pull', '-r', '-b', `${reg.host}/by-us/app:v1`, '-o', out]);
      const lock = parseYaml(await readFile(join(out, '.imgpkg', 'images.yml'), 'utf8')) as { images: { image: string }[] };
      expect(lock.images).toHaveLength(4);
      for (const { image } of lock.images) expect(image).toMatch(new RegExp(`^${reg.host.replace(/\./g, '\\.')}/by-us/app@sha256:[0-9a-f]{64}$`));
      expect(await readFile(join(out, 'config.yml'), 'utf8')).toBe('replicas: 1\n');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
