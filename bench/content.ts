/** Benchmark content: images with shared and unique layers, cosign-format signatures, an imgpkg bundle. */
import { createHash, createSign, generateKeyPairSync } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { TestRegistry } from '../test/support/registry.js';
import { RawClient } from '../test/support/raw-client.js';
import { packTar } from '../test/support/tar.js';

const MiB = 1024 * 1024;
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface Pushed { digest: string; tag?: string }
export interface Content { bundle: Pushed; refs: string[]; blobSizes: Map<string, number>; manifests: number; blobs: number; bytes: number }

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function deterministic(size: number, seed: string): Buffer {
  // Cheap incompressible bytes: SHA-256 in counter mode is far faster than a CSPRNG for hundreds of MiB.
  const out = Buffer.allocUnsafe(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += 32) {
    block = createHash('sha256').update(block).digest();
    block.copy(out, off, 0, Math.min(32, size - off));
  }
  return out;
}

export async function pushImage(client: RawClient, repo: string, layers: Buffer[], sizes: Map<string, number>, tag?: string): Promise<Pushed> {
  const layerDescs = [];
  for (const layer of layers) {
    const digest = sha(layer);
    if (!sizes.has(digest)) { await client.pushBlob(repo, layer); sizes.set(digest, layer.length); }
    layerDescs.push({ mediaType: DOCKER_LAYER, size: layer.length, digest });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.digest) }, config: {} }));
  await client.pushBlob(repo, config);
  sizes.set(sha(config), config.length);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { mediaType: DOCKER_CONFIG, size: config.length, digest: sha(config) }, layers: layerDescs }));
  const digest = sha(manifest);
  await client.pushManifest(repo, tag ?? digest, manifest, DOCKER_MANIFEST);
  return { digest, ...(tag ? { tag } : {}) };
}

/** A cosign-format `.sig` image (simple-signing payload, ECDSA P-256 DER signature). */
async function pushSignature(client: RawClient, repo: string, host: string, subject: string, key: ReturnType<typeof generateKeyPairSync>['privateKey'], sizes: Map<string, number>): Promise<void> {
  const payload = Buffer.from(`{"critical":{"identity":{"docker-reference":"${host}/${repo}"},"image":{"docker-manifest-digest":"${subject}"},"type":"cosign container image signature"},"optional":null}`);
  const signature = createSign('sha256').update(payload).sign(key).toString('base64');
  await client.pushBlob(repo, payload);
  const config = Buffer.from(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${sha(payload)}"]},"config":{}}`);
  await client.pushBlob(repo, config);
  sizes.set(sha(payload), payload.length);
  sizes.set(sha(config), config.length);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: sha(config) }, layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', size: payload.length, digest: sha(payload), annotations: { 'dev.cosignproject.cosign/signature': signature } }] }));
  await client.pushManifest(repo, `${subject.replace(':', '-')}.sig`, manifest, OCI_MANIFEST);
}

export async function pushBundle(client: RawClient, host: string, repo: string, imageDigests: string[], sizes: Map<string, number>, tag: string): Promise<Pushed> {
  const lock = `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n${imageDigests.map((d) => `- image: ${host}/${repo}@${d}\n`).join('')}kind: ImagesLock\n`;
  const layer = gzipSync(await packTar([{ name: '.', type: 'directory' }, { name: '.imgpkg', type: 'directory' }, { name: '.imgpkg/images.yml', content: lock }]), { level: 1 });
  await client.pushBlob(repo, layer);
  sizes.set(sha(layer), layer.length);
  const config = Buffer.from(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', os: '', rootfs: { type: 'layers', diff_ids: [] }, config: { Labels: { 'dev.carvel.imgpkg.bundle': 'true' } } }));
  await client.pushBlob(repo, config);
  sizes.set(sha(config), config.length);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { mediaType: DOCKER_CONFIG, size: config.length, digest: sha(config) }, layers: [{ mediaType: DOCKER_LAYER, size: layer.length, digest: sha(layer) }] }));
  await client.pushManifest(repo, tag, manifest, DOCKER_MANIFEST);
  return { digest: sha(manifest), tag };
}

export async function buildContent(registry: TestRegistry, repo: string, images: number): Promise<Content> {
  const client = RawClient.for(registry);
  const sizes = new Map<string, number>();
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const bases = Array.from({ length: 5 }, (_, i) => deterministic(8 * MiB, `base-${i}`));
  const digests: string[] = [];
  for (let i = 0; i < images; i += 1) {
    const img = await pushImage(client, repo, [bases[i % 5]!, deterministic(MiB, `u1-${i}`), deterministic(MiB, `u2-${i}`)], sizes);
    digests.push(img.digest);
    await pushSignature(client, repo, registry.host, img.digest, privateKey, sizes);
  }
  const bundle = await pushBundle(client, registry.host, repo, digests, sizes, 'v1');
  await pushSignature(client, repo, registry.host, bundle.digest, privateKey, sizes);
  const refs = [`${repo}:v1`, ...[bundle.digest, ...digests].map((d) => `${repo}:${d.replace(':', '-')}.sig`), ...digests.map((d) => `${repo}@${d}`)];
  const bytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  return { bundle, refs, blobSizes: sizes, manifests: 2 * (images + 1), blobs: sizes.size, bytes };
}

