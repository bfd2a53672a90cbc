import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromotionEngine, type PlanRequest, type PromotionOptions, type PromotionResult } from '../../../src/promote/index.js';
import { RegistryClient, type Descriptor, type RawManifest, type Reference, type Registry, type Repository } from '../../../src/oci/index.js';
import { loadPolicy, SignatureVerifier } from '../../../src/cosign/index.js';
import { silentLogger } from '../../../src/log.js';
import { rejectionOf } from '../../support/failure.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { RewritingProxy } from '../../support/rewriting-proxy.js';
import { Fixtures, cosignTag, generateSigningKey, imgpkgTag, keySignedSigstoreBundle, locationsTag, randomLayer, referrersTag, type PushedBundle, type PushedImage } from '../../support/fixtures.js';

// Guarantees of a promotion that a plausible bug in plan.ts or executor.ts would break (issue #11). Each test
// names the rule; each was checked to fail with the bug put back by hand.

const SIGNATURES_ONLY = { signatures: true, attestations: false, sboms: false, referrers: false };

function client(hosts: readonly string[]): RegistryClient {
  return new RegistryClient({ insecure: hosts, retry: { baseDelayMs: 10, maxDelayMs: 200 }, logger: silentLogger() });
}

function request(src: { host: string }, srcRepo: string, tag: string, dst: { host: string }, dstRepo: string): PlanRequest {
  return { source: { registry: src.host, repository: srcRepo, tag }, target: { registry: dst.host, repository: dstRepo }, attached: SIGNATURES_ONLY };
}

async function promote(registry: Registry, req: PlanRequest, options: PromotionOptions = {}): Promise<PromotionResult> {
  return new PromotionEngine({ registry, log: silentLogger() }).promote(req, options);
}

describe('promotion guarantees', () => {
  let reg: TestRegistry;
  let fx: Fixtures;
  let raw: RawClient;

  beforeAll(async () => {
    reg = await startRegistry();
    raw = RawClient.for(reg);
    fx = new Fixtures(raw);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  describe('when the test copy gains a signature after its first promotion (the seed case)', () => {
    it('re-promoting replaces the stale .sig in prod with the test copy\'s, by digest not by tag name', async () => {
      const key = generateSigningKey();
      const image = await fx.pushImage('seed-dev/app', { layers: [await randomLayer(1024, 'seed-image')] });
      const bundle = await fx.pushBundle('seed-dev/app', { images: [image.ref], tag: 'v1' });
      await fx.signLegacy('seed-dev/app', bundle.digest, key);
      const registry = client([reg.host]);
      try {
        await promote(registry, request(reg, 'seed-dev/app', 'v1', reg, 'seed-test/app'));
        await promote(registry, request(reg, 'seed-test/app', 'v1', reg, 'seed-prod/app'));
        const sigTag = cosignTag(bundle.digest, 'sig');
        const first = await raw.getManifest('seed-prod/app', sigTag);
        expect(JSON.parse(first.bytes.toString()).layers).toHaveLength(1);

        // The e2e tests pass against the test copy, and CI signs it there.
        const e2e = await fx.signLegacy('seed-test/app', bundle.digest, key, { annotations: { 'e2e-tests-passed': 'True' } });
        expect(e2e.appended).toBe(true);
        await promote(registry, request(reg, 'seed-test/app', 'v1', reg, 'seed-prod/app'));

        const prod = await raw.getManifest('seed-prod/app', sigTag);
        expect(prod.digest).not.toBe(first.digest);
        expect(prod.digest).toBe(e2e.digest);
        expect(JSON.parse(prod.bytes.toString()).layers).toHaveLength(2);
        // And what the policy of the prod gate asks for now verifies in prod.
        const policy = await loadPolicy({ authorities: [{ keys: [key.publicKeyPem], tlog: 'ignore' }], annotations: { 'e2e-tests-passed': 'True' } }, { baseDir: '.' });
        const verdict = await new SignatureVerifier({ registry, log: silentLogger() }).verify({ repo: { registry: reg.host, repository: 'seed-prod/app' }, digest: bundle.digest }, policy);
        expect(verdict.passed).toBe(true);
      } finally {
        await registry.close();
      }
    });
  });

  describe('when the target already lists referrers of the bundle that the source does not have', () => {
    it('merges the source\'s new referrers into the target\'s fallback index, keeping the target\'s own entries as they were', async () => {
      const key = generateSigningKey();
      const image = await fx.pushImage('merge-dev/app', { layers: [await randomLayer(512, 'merge-image')] });
      const bundle = await fx.pushBundle('merge-dev/app', { images: [image.ref], tag: 'v1' });
      const a = await fx.attachSigstoreBundleReferrer('merge-dev/app', bundle.digest, keySignedSigstoreBundle(bundle.digest, key));
      const registry = client([reg.host]);
      try {
        await promote(registry, request(reg, 'merge-dev/app', 'v1', reg, 'merge-prod/app'));
        // prod gains a referrer of its own (another signer), the source a new one (a later signature).
        const b = await fx.attachSigstoreBundleReferrer('merge-prod/app', bundle.digest, keySignedSigstoreBundle(bundle.digest, generateSigningKey()), { created: '2025-02-02T00:00:00Z' });
        const c = await fx.attachSigstoreBundleReferrer('merge-dev/app', bundle.digest, keySignedSigstoreBundle(bundle.digest, key), { created: '2025-03-03T00:00:00Z' });
        const entriesOf = async (repo: string) => (JSON.parse((await raw.getManifest(repo, referrersTag(bundle.digest))).bytes.toString()) as { manifests: { digest: string }[] }).manifests;
        const prodBefore = await entriesOf('merge-prod/app');
        await promote(registry, request(reg, 'merge-dev/app', 'v1', reg, 'merge-prod/app'));
        const after = await entriesOf('merge-prod/app');
        expect(after.map((e) => e.digest).sort()).toEqual([a.digest, b.digest, c.digest].sort());
        expect(after.find((e) => e.digest === b.digest)).toEqual(prodBefore.find((e) => e.digest === b.digest));
        expect(await raw.manifestExists('merge-prod/app', c.digest)).toBe(true);
        // A third run finds every referrer listed and writes no index.
        const indexDigest = (await raw.headManifest('merge-prod/app', referrersTag(bundle.digest)))!.digest;
        await promote(registry, request(reg, 'merge-dev/app', 'v1', reg, 'merge-prod/app'));
        expect((await raw.headManifest('merge-prod/app', referrersTag(bundle.digest)))!.digest).toBe(indexDigest);
      } finally {
        await registry.close();
      }
    });
  });

  describe('when the target registry stores other bytes than were PUT', () => {
    let image: PushedImage;
    let bundle: PushedBundle;
    beforeAll(async () => {
      image = await fx.pushImage('rewrite-dev/app', { layers: [await randomLayer(1024, 'rewrite-image')] });
      bundle = await fx.pushBundle('rewrite-dev/app', { images: [image.ref], tag: 'v1' });
    });

    it.each(['reformat', 'lie-about-digest'] as const)('(%s) fails with DIGEST_MISMATCH naming the manifest, and writes no bundle tag', async (rewrite) => {
      const proxy = await RewritingProxy.start(reg, { match: (path) => path.endsWith(`/manifests/${imgpkgTag(image.digest)}`), rewrite });
      const registry = client([reg.host, proxy.host]);
      try {
        const target = `rewrite-${rewrite}/app`;
        const f = await rejectionOf(promote(registry, request(reg, 'rewrite-dev/app', 'v1', proxy, target)));
        expect(proxy.rewritten).toEqual([`/v2/${target}/manifests/${imgpkgTag(image.digest)}`]);
        expect(f.code).toBe('DIGEST_MISMATCH');
        expect(f.message).toContain(image.digest);
        const tags = await raw.listTags(target);
        expect(tags).not.toContain('v1');
        // Manifests of one level go up in parallel, so the bundle's own manifest may be there; the locations image,
        // which tells a re-run that the bundle is complete, must not be.
        expect(tags).not.toContain(locationsTag(bundle.digest));
      } finally {
        await registry.close();
        await proxy.stop();
      }
    });
  });

  describe('when bundles are nested', () => {
    /** root → b(n-1) → … → b1 → image: `levels` bundles under the root. */
    async function chain(repo: string, levels: number): Promise<PushedBundle> {
      const image = await fx.pushImage(repo, { layers: [await randomLayer(256, `${repo}/leaf`)] });
      let inner: { ref: string } = image;
      for (let i = 1; i <= levels; i++) inner = await fx.pushBundle(repo, { images: [inner.ref], tag: `b${i}` });
      return fx.pushBundle(repo, { images: [inner.ref], tag: 'v1' });
    }

    it('accepts nesting exactly maxDepth deep, and refuses one level more with BUNDLE_TOO_DEEP, writing no tag', async () => {
      await chain('deep/app', 3); // the innermost bundle is at depth 3
      const registry = client([reg.host]);
      try {
        const ok = await promote(registry, request(reg, 'deep/app', 'v1', reg, 'deep-ok/app'), { maxDepth: 3 });
        expect(ok.counts.bundles).toBe(4);
        const f = await rejectionOf(promote(registry, request(reg, 'deep/app', 'v1', reg, 'deep-refused/app'), { maxDepth: 2 }));
        expect(f.code).toBe('BUNDLE_TOO_DEEP');
        expect(f.message).toContain('more than 2 levels');
        expect(await raw.listTags('deep-refused/app')).not.toContain('v1');
      } finally {
        await registry.close();
      }
    });

    it('by default refuses nesting deeper than 16 levels', async () => {
      await chain('deeper/app', 17);
      const registry = client([reg.host]);
      try {
        const f = await rejectionOf(promote(registry, request(reg, 'deeper/app', 'v1', reg, 'deeper-refused/app')));
        expect(f.code).toBe('BUNDLE_TOO_DEEP');
        expect(f.message).toContain('more than 16 levels');
      } finally {
        await registry.close();
      }
    });

    it('refuses a bundle that contains itself with BUNDLE_INVALID instead of looping or hanging', async () => {
      // Content addressing makes a real cycle impossible; a registry that answers a digest with another manifest
      // (here: the bundle's own) makes one. The planner must still end, with a clear error.
      const image = await fx.pushImage('cycle/app', { layers: [await randomLayer(256, 'cycle/leaf')] });
      const ghost = `sha256:${createHash('sha256').update('ghost').digest('hex')}`;
      const bundle = await fx.pushBundle('cycle/app', { images: [image.ref, `${reg.host}/cycle/app@${ghost}`], tag: 'v1' });
      const inner = client([reg.host]);
      const registry = new RedirectingRegistry(inner, new Map([[ghost, bundle.digest]]));
      try {
        const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the planner did not finish within 15 s (a cycle it does not detect)')), 15_000).unref());
        const f = await rejectionOf(Promise.race([promote(registry, request(reg, 'cycle/app', 'v1', reg, 'cycle-refused/app')), deadline]));
        expect(f.code).toBe('BUNDLE_INVALID');
        expect(f.message).toContain('contains itself');
        expect(f.message).toContain(bundle.digest);
        expect(await raw.listTags('cycle-refused/app')).toEqual([]);
      } finally {
        await inner.close();
      }
    });
  });
});

/** A Registry that answers manifest reads of some digests with another digest's manifest; otherwise `inner`. */
class RedirectingRegistry implements Registry {
  readonly #inner: RegistryClient;
  readonly #redirect: ReadonlyMap<string, string>;

  constructor(inner: RegistryClient, redirect: ReadonlyMap<string, string>) {
    this.#inner = inner;
    this.#redirect = redirect;
  }

  get stats(): Registry['stats'] {
    return this.#inner.stats;
  }

  #ref(ref: Reference): Reference {
    const to = ref.digest === undefined ? undefined : this.#redirect.get(ref.digest);
    return to === undefined ? ref : { ...ref, digest: to };
  }

  headManifest(ref: Reference, signal?: AbortSignal): Promise<Descriptor | undefined> {
    return this.#inner.headManifest(this.#ref(ref), signal);
  }
  getManifest(ref: Reference, signal?: AbortSignal): Promise<RawManifest> {
    return this.#inner.getManifest(this.#ref(ref), signal);
  }
  findManifest(ref: Reference, options?: { absentIfDenied?: boolean }, signal?: AbortSignal): Promise<RawManifest | undefined> {
    return this.#inner.findManifest(this.#ref(ref), options, signal);
  }
  putManifest(ref: Reference, manifest: { mediaType: string; bytes: Buffer }, signal?: AbortSignal): Promise<string> {
    return this.#inner.putManifest(ref, manifest, signal);
  }
  readBlob(repo: Repository, digest: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    return this.#inner.readBlob(repo, digest, maxBytes, signal);
  }
  openBlob(repo: Repository, descriptor: Descriptor, signal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    return this.#inner.openBlob(repo, descriptor, signal);
  }
  pushBlob(repo: Repository, bytes: Buffer, mediaType?: string, signal?: AbortSignal): ReturnType<Registry['pushBlob']> {
    return this.#inner.pushBlob(repo, bytes, mediaType, signal);
  }
  copyBlob(...args: Parameters<Registry['copyBlob']>): ReturnType<Registry['copyBlob']> {
    return this.#inner.copyBlob(...args);
  }
  listTags(...args: Parameters<Registry['listTags']>): ReturnType<Registry['listTags']> {
    return this.#inner.listTags(...args);
  }
  listReferrers(repo: Repository, digest: string, signal?: AbortSignal): Promise<Descriptor[]> {
    return this.#inner.listReferrers(repo, digest, signal);
  }
  indexReferrers(...args: Parameters<Registry['indexReferrers']>): ReturnType<Registry['indexReferrers']> {
    return this.#inner.indexReferrers(...args);
  }
  referrersApi(registry: string): 'supported' | 'unsupported' | 'unknown' {
    return this.#inner.referrersApi(registry);
  }
}
