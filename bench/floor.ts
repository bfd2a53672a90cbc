/**
 * The floor lane: the least work the same promotion can be done with, for `copy-bench.ts` to divide by.
 *
 * Given the content (every manifest's digest, media type, blobs and the one tag it needs in the target) —
 * so no planning walk and no tag listings — it reads every unique blob once and writes it with the fewest
 * requests Distribution accepts (POST + monolithic PUT of the streamed GET; one mount POST on the same
 * registry), reads every manifest once and writes it by its tags, the bundle last. No digest hashing, no
 * existence checks, no verification. It writes the same output as the promotion, so it includes what imgpkg's
 * layout adds (the `.imgpkg` tag of signature images and of the bundle, the locations image): a copy without
 * them is not the same promotion (`imgpkg pull` needs the locations image). Every request goes
 * through the project's own HTTP layer (`RegistryTransport`: undici pools, retries, body handling), imported
 * read-only from src/oci, so the floor and bundle-promoter differ only in what they ask, not how.
 *
 * Run as a child process (its wall time and peak RSS are measured like every other lane):
 *   node .bench/build/bench/floor.js SPEC.json
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DEFAULT_RETRY_POLICY, MANIFEST_ACCEPT, anonymousKeychain } from '../src/oci/index.js';
import { RegistryTransport, type Reply } from '../src/oci/registry-transport.js';
import { limiter } from '../src/promote/limiter.js';
import { imgpkgTag } from '../src/promote/plan.js';
import { buildImageLocationsImage, imageLocationsTag } from '../src/bundle/image-locations.js';
import type { Artifact } from './content.js';

export interface FloorSpec {
  readonly src: string;
  readonly srcRepo: string;
  readonly dst: string;
  readonly dstRepo: string;
  readonly concurrency: number;
  readonly artifacts: readonly Artifact[];
  readonly blobSizes: Readonly<Record<string, number>>;
}

async function floor(spec: FloorSpec): Promise<{ requests: number }> {
  const transport = new RegistryTransport({
    keychain: anonymousKeychain,
    insecure: [spec.src, spec.dst],
    caFile: undefined,
    connectionsPerRegistry: spec.concurrency,
    retry: DEFAULT_RETRY_POLICY,
    timeouts: { connectMs: 10_000, headersMs: 30_000, bodyMs: 60_000, commitMs: 600_000 },
    userAgent: 'bundle-promoter-bench-floor',
    logger: undefined,
    onRequest: undefined,
    observer: undefined,
  });
  const limit = limiter(spec.concurrency);
  const same = spec.src === spec.dst;
  const subject = (method: string, what: string) => ({ method, registry: spec.dst, what });

  const copyBlob = async (digest: string): Promise<void> => {
    if (same) {
      // Same registry: one cross-repo mount, 201.
      await transport.request({
        kind: 'POST upload', method: 'POST', registry: spec.dst,
        url: `/v2/${spec.dstRepo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(spec.srcRepo)}`,
        headers: { 'content-length': '0' }, accept: [201], retry: true, subject: subject('POST', digest),
      });
      return;
    }
    const read = async (): Promise<Readable> => {
      const get: Reply = await transport.request({
        kind: 'GET blob', method: 'GET', registry: spec.src, url: `/v2/${spec.srcRepo}/blobs/${digest}`,
        accept: [200], stream: true, follow: true, subject: subject('GET', digest),
      });
      return get.stream!;
    };
    await upload(digest, read, spec.blobSizes[digest] ?? 0);
  };

  /** POST, then one monolithic PUT of what `body` gives: the fewest requests Distribution accepts for a new blob. */
  const upload = async (digest: string, body: () => Promise<Buffer | Readable>, size: number): Promise<void> => {
    const post = await transport.request({
      kind: 'POST upload', method: 'POST', registry: spec.dst, url: `/v2/${spec.dstRepo}/blobs/uploads/`,
      headers: { 'content-length': '0' }, accept: [202], retry: true, subject: subject('POST', digest),
    });
    const location = new URL(String(post.headers['location']), post.url);
    location.searchParams.append('digest', digest);
    await transport.request({
      kind: 'PUT upload', method: 'PUT', registry: spec.dst, url: location,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: await body(), accept: [201], retry: false, commit: true, subject: subject('PUT', digest),
    });
  };

  const putManifest = async (tag: string, mediaType: string, body: Buffer): Promise<void> => {
    await transport.request({
      kind: 'PUT manifest', method: 'PUT', registry: spec.dst, url: `/v2/${spec.dstRepo}/manifests/${tag}`,
      headers: { 'content-type': mediaType }, body, accept: [201], retry: true, subject: subject('PUT', tag),
    });
  };

  /** Every manifest carries imgpkg's `sha256-<hex>.imgpkg` tag; Distribution takes one tag per PUT. */
  const copyManifest = async (a: Artifact): Promise<void> => {
    const got = await transport.request({
      kind: 'GET manifest', method: 'GET', registry: spec.src, url: `/v2/${spec.srcRepo}/manifests/${a.digest}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') }, accept: [200], maxBytes: 4 * 1024 * 1024, subject: subject('GET', a.digest),
    });
    for (const tag of new Set([a.targetTag, imgpkgTag(a.digest)])) await putManifest(tag, a.mediaType, got.body);
  };

  /** The bundle's locations image (imgpkg's, built by the same code as ours): two small blobs, two tags. */
  const writeLocations = async (bundle: Artifact): Promise<void> => {
    const images = spec.artifacts.filter((a) => a.kind === 'image').map((a) => ({ image: `${spec.src}/${spec.srcRepo}@${a.digest}`, isBundle: false }));
    const built = await buildImageLocationsImage(images);
    for (const blob of built.blobs) await upload(blob.digest, async () => blob.bytes, blob.bytes.length);
    for (const tag of [imageLocationsTag(bundle.digest), imgpkgTag(built.manifest.digest)]) {
      await putManifest(tag, built.manifest.mediaType, built.manifest.bytes);
    }
  };

  try {
    // Every blob starts at once (through the limiter); each manifest follows as soon as its own blobs are in,
    // so no phase waits on another; the bundle goes last, as its tag is what consumers follow.
    const blobs = new Map<string, Promise<void>>();
    for (const a of spec.artifacts) for (const d of a.blobs) if (!blobs.has(d)) blobs.set(d, limit(() => copyBlob(d)));
    const writeAfterBlobs = (a: Artifact) => Promise.all(a.blobs.map((d) => blobs.get(d))).then(() => limit(() => copyManifest(a)));
    const bundles = spec.artifacts.filter((a) => a.kind === 'bundle');
    await Promise.all([
      ...spec.artifacts.filter((a) => a.kind !== 'bundle').map(writeAfterBlobs),
      ...bundles.map((b) => limit(() => writeLocations(b))),
    ]);
    for (const b of bundles) await writeAfterBlobs(b);
    return { requests: transport.stats.requests };
  } finally {
    await transport.close();
  }
}

const specFile = process.argv[2];
if (specFile === undefined) throw new Error('usage: floor.js SPEC.json');
const result = await floor(JSON.parse(await readFile(specFile, 'utf8')) as FloorSpec);
process.stdout.write(`${JSON.stringify(result)}\n`);
