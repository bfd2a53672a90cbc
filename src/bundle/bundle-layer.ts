import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';
import tar from 'tar-stream';
import { PromoteError } from '../errors.js';

/** Hard limits on reading a bundle layer. Every one guards against a hostile or broken bundle. */
export interface BundleLayerLimits {
  /** Decompressed bytes read from the layer before giving up (gzip bombs). @defaultValue 512 MiB */
  maxDecompressedBytes: number;
  /** Tar entries before giving up. @defaultValue 100_000 */
  maxEntries: number;
  /** Size of `.imgpkg/images.yml`. @defaultValue 8 MiB */
  maxImagesYmlBytes: number;
}

export const DEFAULT_BUNDLE_LAYER_LIMITS: BundleLayerLimits = {
  maxDecompressedBytes: 512 * 1024 * 1024,
  maxEntries: 100_000,
  maxImagesYmlBytes: 8 * 1024 * 1024,
};

/**
 * Reads the text of one file out of a gzip tar layer without writing anything to disk: the first entry
 * whose path matches `wanted` wins, as imgpkg does. Every entry name is checked, so a layer that would
 * write outside its extraction root is refused even when the file we want comes first.
 */
export async function readFileFromLayer(
  layer: Buffer | Readable,
  wanted: (path: string) => boolean,
  what: { layer: string; file: string; maxFileBytes: number },
  limits: BundleLayerLimits = DEFAULT_BUNDLE_LAYER_LIMITS,
): Promise<string | undefined> {
  const unsafe = (message: string) => new PromoteError('BUNDLE_LAYER_UNSAFE', `bundle layer ${what.layer}: ${message}`);
  let decompressed = 0;
  let entries = 0;
  let found: string | undefined;
  const gunzip = createGunzip();
  gunzip.on('data', (chunk: Buffer) => {
    decompressed += chunk.length;
    if (decompressed > limits.maxDecompressedBytes) {
      gunzip.destroy(unsafe(`decompresses to more than ${limits.maxDecompressedBytes} bytes (a gzip bomb?)`));
    }
  });
  const extract = tar.extract();
  const scan = (async () => {
    for await (const entry of extract) {
      entries += 1;
      if (entries > limits.maxEntries) throw unsafe(`has more than ${limits.maxEntries} tar entries`);
      const name = entry.header.name;
      const normalised = posix.normalize(name);
      if (name.startsWith('/') || normalised === '..' || normalised.startsWith('../') || name.includes('\0')) {
        throw unsafe(`entry '${name}' points outside the bundle (path traversal)`);
      }
      if ((entry.header.type === 'symlink' || entry.header.type === 'link') && escapes(name, entry.header.linkname ?? '')) {
        throw unsafe(`link '${name}' points outside the bundle (${entry.header.linkname ?? ''})`);
      }
      if (found === undefined && entry.header.type === 'file' && wanted(normalised)) {
        const size = entry.header.size ?? 0;
        if (size > what.maxFileBytes) throw unsafe(`${what.file} is ${size} bytes, more than the ${what.maxFileBytes} allowed`);
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        found = Buffer.concat(chunks).toString('utf8');
      } else {
        entry.resume();
      }
    }
  })();
  const source = Buffer.isBuffer(layer) ? Readable.from([layer]) : layer;
  try {
    await Promise.all([pipeline(source, gunzip, extract), scan]);
  } catch (err) {
    source.destroy();
    extract.destroy();
    if (err instanceof PromoteError) throw err;
    throw new PromoteError('BUNDLE_INVALID', `bundle layer ${what.layer} is not a readable gzip tar: ${(err as Error).message}`, { cause: err });
  }
  return found;
}

function escapes(entry: string, link: string): boolean {
  if (link.startsWith('/')) return true;
  const target = posix.normalize(posix.join(posix.dirname(entry), link));
  return target === '..' || target.startsWith('../');
}

/** `.imgpkg/images.yml`, with or without a leading `./`, as imgpkg's SingleLayerReader accepts it. */
export function isImagesYml(path: string): boolean {
  return path === '.imgpkg/images.yml';
}

/** Any entry whose base name is `image-locations.yml`, as imgpkg's locations reader accepts it. */
export function isImageLocationsYml(path: string): boolean {
  return posix.basename(path) === 'image-locations.yml';
}
