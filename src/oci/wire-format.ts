/**
 * Byte layouts as go-containerregistry writes them (Go `encoding/json`, Go struct field order), for the
 * objects we build ourselves: signature images, referrer manifests, referrers fallback indexes. Copied
 * manifests are never re-serialised; these are only for what we create.
 */
import { PromoteError } from '../errors.js';
import { MediaTypes } from './media-types.js';

/**
 * JSON exactly as Go's `encoding/json` writes it: compact, `<`, `>`, `&`, U+2028 and U+2029 escaped
 * (they can only occur inside string literals, so a global replace is safe). Object keys keep the
 * order of the JS object: build objects in Go struct order and sort map keys with {@link sortGoKeys}.
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A copy of `map` with keys in Go's map order (bytewise UTF-8), as `encoding/json` writes maps. */
export function sortGoKeys<T>(map: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  const keys = Object.keys(map).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  for (const k of keys) out[k] = map[k] as T;
  return out;
}

/** A descriptor as ggcr serialises it. */
export interface WireDescriptor {
  readonly mediaType: string;
  readonly size: number;
  readonly digest: string;
  readonly data?: string;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Readonly<Record<string, unknown>>;
  readonly artifactType?: string;
}

/** ggcr `v1.Descriptor` field order: mediaType, size, digest, data, urls, annotations (sorted), platform, artifactType. */
export function wireDescriptor(d: WireDescriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, size: d.size, digest: d.digest };
  if (d.data !== undefined) out['data'] = d.data;
  if (d.urls !== undefined && d.urls.length > 0) out['urls'] = d.urls;
  if (d.annotations !== undefined && Object.keys(d.annotations).length > 0) out['annotations'] = sortGoKeys(d.annotations);
  if (d.platform !== undefined) out['platform'] = d.platform;
  if (d.artifactType !== undefined && d.artifactType !== '') out['artifactType'] = d.artifactType;
  return out;
}

/** ggcr `v1.Manifest` order: schemaVersion, mediaType, config, layers, annotations, subject, artifactType. */
export function serializeImageManifest(m: {
  mediaType: string;
  config: WireDescriptor;
  layers: readonly WireDescriptor[];
  annotations?: Readonly<Record<string, string>>;
  subject?: WireDescriptor;
  artifactType?: string;
}): Buffer {
  const out: Record<string, unknown> = { schemaVersion: 2, mediaType: m.mediaType, config: wireDescriptor(m.config), layers: m.layers.map(wireDescriptor) };
  if (m.annotations !== undefined && Object.keys(m.annotations).length > 0) out['annotations'] = sortGoKeys(m.annotations);
  if (m.subject !== undefined) out['subject'] = wireDescriptor(m.subject);
  if (m.artifactType !== undefined) out['artifactType'] = m.artifactType;
  return Buffer.from(goJson(out), 'utf8');
}

/** ggcr `v1.IndexManifest` order: schemaVersion, mediaType, manifests, annotations. */
export function serializeIndex(manifests: readonly WireDescriptor[], annotations?: Readonly<Record<string, string>>): Buffer {
  const out: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: manifests.map(wireDescriptor) };
  if (annotations !== undefined && Object.keys(annotations).length > 0) out['annotations'] = sortGoKeys(annotations);
  return Buffer.from(goJson(out), 'utf8');
}


/** Reads one descriptor of a JSON manifest or index permissively (unknown fields dropped). */
export function parseWireDescriptor(v: unknown, where: string): WireDescriptor {
  const d = v as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null || typeof d['mediaType'] !== 'string' || typeof d['digest'] !== 'string' || !Number.isSafeInteger(d['size'])) {
    throw new PromoteError('MANIFEST_INVALID', `${where}: malformed descriptor`);
  }
  const out: { -readonly [K in keyof WireDescriptor]: WireDescriptor[K] } = { mediaType: d['mediaType'], size: d['size'] as number, digest: d['digest'] };
  if (typeof d['data'] === 'string') out.data = d['data'];
  if (Array.isArray(d['urls'])) out.urls = d['urls'].filter((u): u is string => typeof u === 'string');
  if (isStringRecord(d['annotations'])) out.annotations = stringsOf(d['annotations']);
  if (typeof d['platform'] === 'object' && d['platform'] !== null && !Array.isArray(d['platform'])) out.platform = d['platform'] as Record<string, unknown>;
  if (typeof d['artifactType'] === 'string') out.artifactType = d['artifactType'];
  return out;
}

/**
 * The referrers fallback index (`sha256-<hex>` tag) with `add` merged into `existing`: one entry per
 * digest, sorted by digest as ggcr writes it, the existing index's annotations kept. `undefined` when
 * every descriptor is listed already.
 */
export function mergeReferrersIndex(existing: Buffer | undefined, add: readonly WireDescriptor[], where: string): Buffer | undefined {
  let entries: WireDescriptor[] = [];
  let annotations: Record<string, string> | undefined;
  if (existing !== undefined) {
    let doc: unknown;
    try {
      doc = JSON.parse(existing.toString('utf8'));
    } catch (err) {
      throw new PromoteError('MANIFEST_INVALID', `${where} exists but is not JSON (referrers fallback index)`, { cause: err });
    }
    const m = doc as Record<string, unknown> | null;
    if (typeof m !== 'object' || m === null || !Array.isArray(m['manifests']) || (m['mediaType'] !== undefined && m['mediaType'] !== MediaTypes.ociIndex)) {
      throw new PromoteError('MANIFEST_INVALID', `${where} exists but is not an OCI image index (referrers fallback index)`);
    }
    entries = (m['manifests'] as unknown[]).map((d, i) => parseWireDescriptor(d, `${where} entry ${i}`));
    if (isStringRecord(m['annotations'])) annotations = stringsOf(m['annotations']);
  }
  const known = new Set(entries.map((e) => e.digest));
  const fresh = add.filter((d) => !known.has(d.digest));
  if (fresh.length === 0) return undefined;
  const merged = [...entries, ...fresh].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  return serializeIndex(merged, annotations);
}

function isStringRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringsOf(v: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, a] of Object.entries(v)) if (typeof a === 'string') out[k] = a;
  return out;
}
