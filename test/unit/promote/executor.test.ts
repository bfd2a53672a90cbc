import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PromoteError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { PlanExecutor, type PlannedArtifact, type PromotionPlan } from '../../../src/promote/index.js';
import { limiter } from '../../../src/promote/limiter.js';
import type { BlobCopyOutcome, BlobSource, Descriptor, RawManifest, Registry, Repository, RequestStats } from '../../../src/oci/index.js';

const digestOf = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const source: Repository = { registry: 'src.example', repository: 'dev/app' };
const target: Repository = { registry: 'dst.example', repository: 'prod/app' };

/** A copy in flight: the test decides when and how it ends. */
interface PendingCopy {
  readonly digest: string;
  readonly signal: AbortSignal | undefined;
  resolve(outcome: BlobCopyOutcome): void;
  reject(e: unknown): void;
}

/** A Registry whose blob copies wait for the test; manifests are accepted as given. Nothing else is expected. */
class ScriptedRegistry implements Registry {
  readonly stats: RequestStats = { requests: 0, byKind: {}, bytesUploaded: 0, bytesDownloaded: 0 };
  readonly copies: PendingCopy[] = [];
  readonly puts: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  #waiters: (() => void)[] = [];

  copyBlob(src: BlobSource, _target: Repository, signal?: AbortSignal): Promise<BlobCopyOutcome> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<BlobCopyOutcome>((resolve, reject) => {
      const done = () => this.inFlight--;
      this.copies.push({ digest: src.descriptor.digest, signal, resolve: (o) => (done(), resolve(o)), reject: (e) => (done(), reject(e)) });
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Resolves once `n` manifests have been written (never sleeps: woken by putManifest). */
  async written(n: number): Promise<void> {
    while (this.puts.length < n) await new Promise<void>((r) => this.#waiters.push(r));
  }

  /** Resolves once `n` copies have started (never sleeps: woken by copyBlob). */
  async started(n: number): Promise<void> {
    while (this.copies.length < n) await new Promise<void>((r) => this.#waiters.push(r));
  }

  async putManifest(ref: { tag?: string; digest?: string }, manifest: { mediaType: string; bytes: Buffer }): Promise<string> {
    this.puts.push(ref.tag ?? ref.digest ?? '');
    for (const w of this.#waiters.splice(0)) w();
    return digestOf(manifest.bytes);
  }

  headManifest(): Promise<Descriptor | undefined> { return Promise.resolve(undefined); }
  getManifest(): Promise<RawManifest> { throw new Error('not expected'); }
  findManifest(): Promise<RawManifest | undefined> { throw new Error('not expected'); }
  readBlob(): Promise<Buffer> { throw new Error('not expected'); }
  openBlob(): Promise<NodeJS.ReadableStream> { throw new Error('not expected'); }
  pushBlob(): Promise<{ digest: string; outcome: BlobCopyOutcome }> { throw new Error('not expected'); }
  listTags(): Promise<string[] | undefined> { throw new Error('not expected'); }
  listReferrers(): Promise<Descriptor[]> { throw new Error('not expected'); }
  indexReferrers(): Promise<boolean> { throw new Error('not expected'); }
}

/** `p`, or a failure naming `what` after 5 s (an event that never comes fails fast, not at the test timeout). */
function withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5_000)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** A plan of one image manifest over `n` blobs, nothing in the target yet. */
function planOf(n: number): PromotionPlan {
  const blobs = Array.from({ length: n }, (_, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(`blob ${i}`), size: 100 + i }));
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: blobs[0], layers: blobs.slice(1) }));
  const root: RawManifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(bytes), bytes };
  return {
    source: { ...source, tag: 'v1' },
    rootDigest: root.digest,
    root,
    target,
    targetTags: ['v1'],
    targetExisted: true,
    artifacts: [{ digest: root.digest, kind: 'image', source, manifest: root, children: [], blobs: blobs.map((b) => b.digest), uploadTag: `${root.digest.replace(':', '-')}.imgpkg`, presentInTarget: false }],
    blobs: new Map(blobs.map((d) => [d.digest, { descriptor: d, source, nonDistributable: false }])),
    bundles: [],
    signatureTags: [],
    referrers: [],
    nonDistributable: [],
  };
}

/** An image manifest over `blobs`, missing from the target, written by its `.imgpkg` tag. */
function imageArtifact(blobs: readonly Descriptor[], name: string): PlannedArtifact {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: blobs[0], layers: blobs.slice(1), annotations: { name } }));
  const digest = digestOf(bytes);
  return { digest, kind: 'image', source, manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, bytes }, children: [], blobs: blobs.map((b) => b.digest), uploadTag: `${digest.replace(':', '-')}.imgpkg`, presentInTarget: false };
}

describe('PlanExecutor', () => {
  describe('when one image\'s blobs are in while another\'s are still copying', () => {
    it('writes that image\'s manifest and then its signature tag at once, without waiting for the other', async () => {
      const reg = new ScriptedRegistry();
      const blob = (i: number): Descriptor => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(`layer ${i}`), size: 10 });
      const [a1, a2, b1, b2] = [blob(1), blob(2), blob(3), blob(4)];
      const a = imageArtifact([a1!, a2!], 'a');
      const b = imageArtifact([b1!, b2!], 'b');
      const sigTag = `${a.digest.replace(':', '-')}.sig`;
      const plan: PromotionPlan = {
        ...planOf(1), artifacts: [a, b], signatureTags: [{ tag: sigTag, digest: a.digest, presentInTarget: false }],
        blobs: new Map([a1!, a2!, b1!, b2!].map((d) => [d.digest, { descriptor: d, source, nonDistributable: false }])),
      };
      const done = new PlanExecutor({ registry: reg, log: silentLogger() }).copyContent(plan, { concurrency: 4 });
      await reg.started(4);
      for (const c of reg.copies.filter((c) => a.blobs.includes(c.digest))) c.resolve('uploaded');
      await withDeadline(reg.written(2), 'a\'s manifest and its signature tag');
      expect(reg.puts).toEqual([a.uploadTag, sigTag]);
      for (const c of reg.copies.filter((c) => b.blobs.includes(c.digest))) c.resolve('uploaded');
      const counts = await done;
      expect(reg.puts).toEqual([a.uploadTag, sigTag, b.uploadTag]);
      expect(counts).toMatchObject({ artifactsCopied: 2, tagsWritten: 1, blobs: { uploaded: 4 } });
    });

    it('writes an index only after every child it needs', async () => {
      const reg = new ScriptedRegistry();
      const layer: Descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf('child layer'), size: 10 };
      const child = { ...imageArtifact([layer], 'child'), kind: 'index-child' as const, uploadTag: undefined };
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ digest: child.digest }] }));
      const index: PlannedArtifact = { digest: digestOf(bytes), kind: 'index', source, manifest: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: digestOf(bytes), bytes }, children: [child.digest], blobs: [], uploadTag: 'index.imgpkg', presentInTarget: false };
      const plan: PromotionPlan = { ...planOf(1), artifacts: [index, child], blobs: new Map([[layer.digest, { descriptor: layer, source, nonDistributable: false }]]) };
      const done = new PlanExecutor({ registry: reg, log: silentLogger() }).copyContent(plan);
      await reg.started(1);
      expect(reg.puts).toEqual([]);
      reg.copies[0]!.resolve('uploaded');
      await done;
      expect(reg.puts).toEqual([child.digest, 'index.imgpkg']);
    });
  });


  describe('when copying more blobs than its concurrency', () => {
    it('never has more than `concurrency` copies in flight, and copies every blob once', async () => {
      const reg = new ScriptedRegistry();
      const plan = planOf(7);
      const done = new PlanExecutor({ registry: reg, log: silentLogger() }).copyContent(plan, { concurrency: 3 });
      for (let finished = 0; finished < 7; finished++) {
        await reg.started(Math.min(7, finished + 3));
        expect(reg.inFlight).toBeLessThanOrEqual(3);
        reg.copies[finished]!.resolve('uploaded');
      }
      const counts = await done;
      expect(reg.maxInFlight).toBe(3);
      expect(reg.copies.map((c) => c.digest).sort()).toEqual([...plan.blobs.keys()].sort());
      expect(counts.blobs.uploaded).toBe(7);
      expect(reg.puts).toEqual([plan.artifacts[0]!.uploadTag]);
    });
  });

  describe('when one blob copy fails', () => {
    it('aborts the siblings in flight, starts no queued copy, writes no manifest, and rejects with that failure', async () => {
      const reg = new ScriptedRegistry();
      const done = new PlanExecutor({ registry: reg, log: silentLogger() }).copyContent(planOf(6), { concurrency: 2 });
      const failure = done.catch((e: unknown) => e);
      await reg.started(2);
      const [first, second] = reg.copies;
      expect(second!.signal?.aborted).toBe(false);
      const boom = new PromoteError('REGISTRY_UNAVAILABLE', 'injected');
      first!.reject(boom);
      // The sibling sees its signal fire (a real copy would stop its upload) and ends as an abort would.
      await withDeadline(new Promise<void>((resolve) => (second!.signal!.aborted ? resolve() : second!.signal!.addEventListener('abort', () => resolve(), { once: true }))), 'the sibling\'s signal to abort');
      second!.reject(second!.signal!.reason);
      expect(await failure).toBe(boom);
      // Any copy that did start after the failure was handed an already aborted signal.
      for (const late of reg.copies.slice(2)) expect(late.signal?.aborted, late.digest).toBe(true);
      expect(reg.puts).toEqual([]);
    });

    it('aborts the siblings when the caller\'s signal aborts, too', async () => {
      const reg = new ScriptedRegistry();
      const caller = new AbortController();
      const done = new PlanExecutor({ registry: reg, log: silentLogger() }).copyContent(planOf(4), { concurrency: 2 }, caller.signal);
      const failure = done.catch((e: unknown) => e);
      await reg.started(2);
      caller.abort(new PromoteError('ABORTED', 'stopped'));
      for (const c of reg.copies) expect(c.signal?.aborted).toBe(true);
      for (const c of reg.copies) c.reject(c.signal!.reason);
      expect(await failure).toMatchObject({ code: 'ABORTED' });
      expect(reg.puts).toEqual([]);
    });
  });
});

describe('limiter', () => {
  it('runs at most n tasks at once, the rest in arrival order', async () => {
    const limit = limiter(2);
    const gates: (() => void)[] = [];
    const order: number[] = [];
    let active = 0;
    let peak = 0;
    const tasks = [0, 1, 2, 3, 4].map((i) => limit(async () => {
      active++;
      peak = Math.max(peak, active);
      order.push(i);
      await new Promise<void>((r) => gates.push(r));
      active--;
      return i;
    }));
    while (gates.length < 2) await Promise.resolve();
    expect(order).toEqual([0, 1]);
    for (let i = 0; i < 5; i++) {
      while (gates.length <= i) await new Promise((r) => setImmediate(r));
      gates[i]!();
    }
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('frees the slot of a task that throws', async () => {
    const limit = limiter(1);
    await expect(limit(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(await limit(() => Promise.resolve('next'))).toBe('next');
  });

  it('refuses a concurrency that is not a positive integer', () => {
    for (const n of [0, -1, 1.5, Number.NaN]) expect(() => limiter(n), String(n)).toThrow(RangeError);
  });
});
