import { parse as parseYaml } from 'yaml';
import { PromoteError } from '../errors.js';
import { formatReference, parseReference, type Reference } from '../oci/index.js';

export interface LockedImage {
  /** Fully qualified digest reference exactly as the lock names it after normalisation. */
  readonly image: string;
  readonly ref: Reference & { readonly digest: string };
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImagesLock {
  readonly images: readonly LockedImage[];
}

const API_VERSION = 'imgpkg.carvel.dev/v1alpha1';

/**
 * Parses `.imgpkg/images.yml` strictly, as imgpkg does: exact apiVersion and kind, no unknown fields, every
 * image pinned by digest. `where` names the bundle in errors.
 */
export function parseImagesLock(text: string, where: string): ImagesLock {
  const fail = (message: string) => new PromoteError('IMAGES_LOCK_INVALID', `${where}: .imgpkg/images.yml ${message}`);
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 0 });
  } catch (err) {
    throw new PromoteError('IMAGES_LOCK_INVALID', `${where}: .imgpkg/images.yml is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(doc)) throw fail('is not a mapping');
  unknownFields(doc, ['apiVersion', 'kind', 'images'], '', fail);
  if (doc['apiVersion'] !== API_VERSION) throw fail(`has apiVersion '${String(doc['apiVersion'])}', expected '${API_VERSION}'`);
  if (doc['kind'] !== 'ImagesLock') throw fail(`has kind '${String(doc['kind'])}', expected 'ImagesLock'`);
  const raw = doc['images'] ?? [];
  if (!Array.isArray(raw)) throw fail('field images is not a list');
  const images = raw.map((item: unknown, i): LockedImage => {
    if (!isObject(item)) throw fail(`images[${i}] is not a mapping`);
    unknownFields(item, ['image', 'annotations'], `images[${i}].`, fail);
    const image = item['image'];
    if (typeof image !== 'string' || image === '') throw fail(`images[${i}].image is missing`);
    let ref: Reference;
    try {
      ref = parseReference(image);
    } catch (err) {
      throw new PromoteError('IMAGES_LOCK_INVALID', `${where}: .imgpkg/images.yml images[${i}].image '${image}': ${(err as Error).message}`, { cause: err });
    }
    if (ref.digest === undefined || ref.tag !== undefined) {
      throw fail(`images[${i}].image: expected ref to be in digest form, got '${image}'`);
    }
    const annotations = item['annotations'];
    if (annotations !== undefined && annotations !== null && !isStringMap(annotations)) {
      throw fail(`images[${i}].annotations must map strings to strings`);
    }
    const digestRef = ref as Reference & { digest: string };
    return {
      image: formatReference(digestRef),
      ref: digestRef,
      ...(isStringMap(annotations) ? { annotations } : {}),
    };
  });
  return { images };
}

function unknownFields(o: Record<string, unknown>, known: string[], prefix: string, fail: (m: string) => Error): void {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw fail(`has unknown field '${prefix}${key}'`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}
