import { createHash } from 'node:crypto';
import { gzipSync, constants as zlib } from 'node:zlib';
import tar from 'tar-stream';
import { parse as parseYaml } from 'yaml';
import { PromoteError } from '../errors.js';
import { MediaTypes } from '../oci/index.js';

/** One entry of imgpkg's ImageLocations: the image as `images.yml` names it, and whether it is a bundle. */
export interface ImageLocation {
  readonly image: string;
  readonly isBundle: boolean;
}

/** A small image ready to push: its blobs and its manifest bytes. */
export interface BuiltImage {
  readonly manifest: { readonly mediaType: string; readonly bytes: Buffer; readonly digest: string };
  readonly blobs: readonly { readonly digest: string; readonly bytes: Buffer; readonly mediaType: string }[];
}

/** imgpkg's tag for the locations image of a bundle: `sha256-<hex>.image-locations.imgpkg`. */
export function imageLocationsTag(bundleDigest: string): string {
  return `${bundleDigest.replace(':', '-')}.image-locations.imgpkg`;
}

/** The YAML imgpkg writes: `---` prefix, sorted keys, images sorted by image, `images: null` when empty. */
export function imageLocationsYaml(images: readonly ImageLocation[]): string {
  const sorted = [...images].sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));
  const list = sorted.length === 0
    ? ' null\n'
    : '\n' + sorted.map((i) => `- image: ${i.image}\n  isBundle: ${i.isBundle}\n`).join('');
  return `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:${list}kind: ImageLocations\n`;
}

export function parseImageLocationsYaml(text: string, where: string): ImageLocation[] {
  const fail = (m: string) => new PromoteError('BUNDLE_INVALID', `${where}: image-locations.yml ${m}`);
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 0 });
  } catch (err) {
    throw new PromoteError('BUNDLE_INVALID', `${where}: image-locations.yml is not valid YAML`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null) throw fail('is not a mapping');
  const d = doc as Record<string, unknown>;
  if (d['apiVersion'] !== 'imgpkg.carvel.dev/v1alpha1' || d['kind'] !== 'ImageLocations') throw fail('has the wrong apiVersion or kind');
  const images = d['images'] ?? [];
  if (!Array.isArray(images)) throw fail('field images is not a list');
  return images.map((i: unknown, n) => {
    const e = i as Record<string, unknown> | null;
    if (typeof e?.['image'] !== 'string' || typeof e['isBundle'] !== 'boolean') throw fail(`images[${n}] needs image and isBundle`);
    return { image: e['image'], isBundle: e['isBundle'] };
  });
}

/**
 * Builds the locations image as `imgpkg push` would: Docker v2 manifest, a config without labels, one
 * gzip tar layer holding `.` and `image-locations.yml`, zero timestamps. Deterministic, so a re-run
 * produces the same digest and costs one HEAD.
 */
export async function buildImageLocationsImage(images: readonly ImageLocation[]): Promise<BuiltImage> {
  const content = Buffer.from(imageLocationsYaml(images));
  const tarBytes = await packTar([
    { name: '.', type: 'directory', mode: 0o700 },
    { name: 'image-locations.yml', type: 'file', mode: 0o600, content },
  ]);
  const layer = gzipSync(tarBytes, { level: zlib.Z_BEST_SPEED });
  const diffId = sha256(tarBytes);
  const zero = '0001-01-01T00:00:00Z';
  // ggcr's ConfigFile field order, so that the bytes look like imgpkg's.
  const config = Buffer.from(JSON.stringify({
    architecture: '',
    created: zero,
    history: [{ author: 'imgpkg', created: zero, created_by: 'imgpkg' }],
    os: '',
    rootfs: { type: 'layers', diff_ids: [diffId] },
    config: {},
  }));
  const layerDigest = sha256(layer);
  const configDigest = sha256(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifest,
    config: { mediaType: MediaTypes.dockerConfig, size: config.length, digest: configDigest },
    layers: [{ mediaType: MediaTypes.dockerLayer, size: layer.length, digest: layerDigest }],
  }));
  return {
    manifest: { mediaType: MediaTypes.dockerManifest, bytes: manifest, digest: sha256(manifest) },
    blobs: [
      { digest: configDigest, bytes: config, mediaType: MediaTypes.dockerConfig },
      { digest: layerDigest, bytes: layer, mediaType: MediaTypes.dockerLayer },
    ],
  };
}

interface TarEntry { name: string; type: 'file' | 'directory'; mode: number; content?: Buffer }

async function packTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    pack.entry({ name: e.name, type: e.type, mode: e.mode, mtime: new Date(0), uid: 0, gid: 0 }, e.content ?? Buffer.alloc(0));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
