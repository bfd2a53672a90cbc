import { PromoteError } from '../errors.js';
import { checkDigest } from './digest.js';
import { MediaTypes, isImageManifest, isIndex, isSchema1 } from './media-types.js';
import type { Descriptor, RawManifest } from './types.js';

interface ManifestCommon {
  readonly mediaType: string;
  readonly subject?: Descriptor;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** The bytes as served; copy these, never a re-serialisation of this model. */
  readonly raw: RawManifest;
}

export interface ImageManifest extends ManifestCommon {
  readonly kind: 'image';
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export interface IndexManifest extends ManifestCommon {
  readonly kind: 'index';
  readonly manifests: readonly Descriptor[];
}

export type Manifest = ImageManifest | IndexManifest;

/** Content types that say nothing about the manifest (some registries and files serve these). */
const GENERIC = new Set(['', 'application/json', 'text/plain', 'application/octet-stream']);

/**
 * Parses and validates a manifest or index. The media type comes from the body and the Content-Type
 * (`raw.mediaType`); when both are specific they must agree. Schema 1 and unknown types are refused.
 */
export function parseManifest(raw: RawManifest): Manifest {
  const where = `manifest ${raw.digest}`;
  const bad = (why: string): PromoteError => new PromoteError('MANIFEST_INVALID', `${where}: ${why}`);

  let body: unknown;
  try {
    body = JSON.parse(raw.bytes.toString('utf8'));
  } catch (e) {
    throw new PromoteError('MANIFEST_INVALID', `${where}: not valid JSON`, { cause: e });
  }
  if (!isObject(body)) throw bad('not a JSON object');

  const header = GENERIC.has(raw.mediaType) ? undefined : raw.mediaType;
  const declared = optionalString(body, 'mediaType', bad);
  if (body['schemaVersion'] === 1 || (header !== undefined && isSchema1(header)) || (declared !== undefined && isSchema1(declared))) {
    throw new PromoteError('UNSUPPORTED_MEDIA_TYPE', `${where}: Docker schema 1 manifests are not supported`);
  }
  if (body['schemaVersion'] !== 2) throw bad(`schemaVersion must be 2, got ${JSON.stringify(body['schemaVersion'])}`);
  if (declared !== undefined && header !== undefined && declared !== header) {
    throw bad(`mediaType "${declared}" in the body disagrees with the Content-Type "${header}"`);
  }
  // OCI makes the body's mediaType optional; the shape then tells an index from an image manifest.
  const mediaType = declared ?? header ?? ('manifests' in body ? MediaTypes.ociIndex : MediaTypes.ociManifest);

  const common = {
    mediaType,
    raw,
    ...optionalField('subject', body['subject'] === undefined ? undefined : descriptor(body['subject'], 'subject', bad, where)),
    ...optionalField('artifactType', optionalString(body, 'artifactType', bad)),
    ...optionalField('annotations', stringMap(body['annotations'], 'annotations', bad)),
  };

  if (isIndex(mediaType)) {
    const manifests = body['manifests'];
    if (!Array.isArray(manifests)) throw bad('an index needs a "manifests" array');
    return { kind: 'index', ...common, manifests: manifests.map((d, i) => descriptor(d, `manifests[${i}]`, bad, where)) };
  }
  if (isImageManifest(mediaType)) {
    const layers = body['layers'];
    if (body['config'] === undefined) throw bad('an image manifest needs a "config" descriptor');
    if (!Array.isArray(layers)) throw bad('an image manifest needs a "layers" array');
    return {
      kind: 'image',
      ...common,
      config: descriptor(body['config'], 'config', bad, where),
      layers: layers.map((d, i) => descriptor(d, `layers[${i}]`, bad, where)),
    };
  }
  throw new PromoteError('UNSUPPORTED_MEDIA_TYPE', `${where}: unsupported manifest media type "${mediaType}"`);
}

type Bad = (why: string) => PromoteError;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalField<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function optionalString(o: Record<string, unknown>, key: string, bad: Bad, at = ''): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`${at}${key} must be a string`);
  return v;
}

function stringMap(v: unknown, at: string, bad: Bad): Readonly<Record<string, string>> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw bad(`${at} must map strings to strings`);
  return v as Record<string, string>;
}

function descriptor(v: unknown, at: string, bad: Bad, where: string): Descriptor {
  if (!isObject(v)) throw bad(`${at} must be a descriptor object`);
  const mediaType = v['mediaType'];
  if (typeof mediaType !== 'string' || mediaType === '') throw bad(`${at}.mediaType must be a non-empty string`);
  const digest = v['digest'];
  if (typeof digest !== 'string') throw bad(`${at}.digest must be a string`);
  checkDigest(digest, `${where}: ${at}.digest`, 'MANIFEST_INVALID');
  const size = v['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`${at}.size must be a non-negative integer`);
  const urls = v['urls'];
  if (urls !== undefined && !(Array.isArray(urls) && urls.every((u) => typeof u === 'string'))) throw bad(`${at}.urls must be an array of strings`);
  const platform = v['platform'];
  if (platform !== undefined && !isObject(platform)) throw bad(`${at}.platform must be an object`);
  return {
    mediaType,
    digest,
    size,
    ...optionalField('annotations', stringMap(v['annotations'], `${at}.annotations`, bad)),
    ...optionalField('artifactType', optionalString(v, 'artifactType', bad, `${at}.`)),
    ...optionalField('urls', urls as string[] | undefined),
    ...optionalField('platform', platform),
  };
}
