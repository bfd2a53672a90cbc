/** Byte layouts of the registry objects cosign writes (ggcr key order), for our signer. */
import { goJson, sortGoKeys } from './encoding.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** `{}`: the empty config of artifact manifests. */
export const EMPTY_CONFIG_BYTES = Buffer.from('{}', 'utf8');
export const EMPTY_CONFIG_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

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
  const out: Record<string, unknown> = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: manifests.map(wireDescriptor) };
  if (annotations !== undefined && Object.keys(annotations).length > 0) out['annotations'] = sortGoKeys(annotations);
  return Buffer.from(goJson(out), 'utf8');
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * The config blob of a signature image with these layer diff ids (cosign-signatures.md §2.2): what ggcr's
 * `mutate.Append` produces from the empty image, one empty history entry per layer. One layer ⇒ 233 bytes.
 */
export function signatureConfigBytes(diffIds: readonly string[]): Buffer {
  const config = {
    architecture: '',
    created: ZERO_TIME,
    history: diffIds.map(() => ({ created: ZERO_TIME })),
    os: '',
    rootfs: { type: 'layers', diff_ids: diffIds },
    config: {},
  };
  return Buffer.from(goJson(config), 'utf8');
}
