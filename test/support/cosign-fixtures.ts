/**
 * cosign artifacts built the way cosign builds them (cosign-signatures.md §1–3, §8, §9.2–9.3), pushed with the
 * independent {@link RawClient}. Re-exported by `fixtures.ts`; the `Fixtures` class wraps these with its client.
 */
import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { RawClient, sha256Digest } from './raw-client.js';

export const COSIGN_MEDIA_TYPES = {
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
  sigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGN_PREDICATE_TYPE = 'https://sigstore.dev/cosign/sign/v1';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const IN_TOTO = 'application/vnd.in-toto+json';
const EMPTY_JSON = Buffer.from('{}');

/** An ECDSA P-256 key pair, the only key type cosign verifies unambiguously (§7.3). */
export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** `-----BEGIN PUBLIC KEY-----` (SPKI), what `cosign verify --key` reads. */
  readonly publicKeyPem: string;
  /** base64(sha256(SPKI DER)): cosign v3's `publicKey.hint`. */
  readonly hint: string;
}

/** A pushed signature/attestation/SBOM image or referrer manifest. */
export interface PushedArtifact {
  readonly repo: string;
  /** The tag it was written to (`sha256-<hex>.sig`…); `undefined` for a referrer pushed by digest. */
  readonly tag: string | undefined;
  readonly digest: string;
  readonly mediaType: string;
  readonly manifest: Buffer;
  readonly configDigest: string;
  /** Every layer of the manifest, earlier signatures included. */
  readonly layerDigests: readonly string[];
}

/** A legacy `.sig` image after appending one signature. */
export interface LegacySignature extends PushedArtifact {
  readonly tag: string;
  /** The simple-signing payload bytes (the layer blob). */
  readonly payload: Buffer;
  /** Standard base64 of the DER signature, as in the layer annotation. */
  readonly signature: string;
  readonly layerDigest: string;
  /** `false` when an identical signature was already there (cosign's dedupe) and nothing was written. */
  readonly appended: boolean;
}

/** A legacy `.att` image after appending one attestation. */
export interface LegacyAttestation extends PushedArtifact {
  readonly tag: string;
  /** The DSSE envelope bytes (the layer blob). */
  readonly envelope: Buffer;
  /** The in-toto statement (the DSSE payload). */
  readonly statement: Buffer;
  readonly layerDigest: string;
}

/** A referrer manifest plus the fallback index maintained for it. */
export interface PushedReferrer extends PushedArtifact {
  readonly tag: undefined;
  readonly bundleDigest: string;
  /** `sha256-<subject hex>`. */
  readonly indexTag: string;
  readonly indexDigest: string;
  readonly index: Buffer;
}

export interface LegacySignOptions {
  /** Signed into `optional` (sorted keys); omitted ⇒ `"optional":null`. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** `critical.identity.docker-reference`. @defaultValue `<registry host>/<repo>` */
  readonly dockerReference?: string;
  /** Sign these bytes instead of the generated payload (hostile tests: wrong digest claim, odd JSON). */
  readonly payload?: Uint8Array;
  /** Write Docker manifest/config types, as `COSIGN_DOCKER_MEDIA_TYPES=1` (only for a new `.sig`). @defaultValue false */
  readonly dockerMediaTypes?: boolean;
}

/** Generates a fresh ECDSA P-256 signing key. */
export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    hint: createHash('sha256').update(spki).digest('base64'),
  };
}

/** `sha256-<hex>.<suffix>`: where cosign stores signatures, attestations and SBOMs of `digest` (§1). */
export function cosignTag(digest: string, suffix: 'sig' | 'att' | 'sbom'): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

/** `sha256-<hex>`: the referrers fallback tag of `digest` (§9.3). */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/**
 * The simple-signing payload in cosign's exact serialisation (§3): Go struct order, compact, `optional` with sorted
 * keys or `null`, `<>&` escaped as `\u003c` etc., no trailing newline.
 */
export function simpleSigningPayload(
  dockerReference: string,
  digest: string,
  annotations?: Readonly<Record<string, string>>,
): Buffer {
  const payload = {
    critical: {
      identity: { 'docker-reference': dockerReference },
      image: { 'docker-manifest-digest': digest },
      type: 'cosign container image signature',
    },
    optional: annotations === undefined ? null : sortKeys(annotations),
  };
  return Buffer.from(goJson(payload));
}

/** The cosign config blob for N layers (§2.2): zero times, one empty history entry and one diff_id per layer. */
export function cosignConfig(layerDigests: readonly string[]): Buffer {
  const history = layerDigests.map(() => ({ created: '0001-01-01T00:00:00Z' }));
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history,
      os: '',
      rootfs: { type: 'layers', diff_ids: layerDigests },
      config: {},
    }),
  );
}

/** DSSE pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`. */
export function preAuthEncoding(payloadType: string, body: Uint8Array): Buffer {
  const type = Buffer.from(payloadType);
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

/**
 * Appends one simple-signing signature of `digest` to `<repo>:sha256-<hex>.sig` exactly as cosign does (§2, §6):
 * read the tag (404 ⇒ empty image), skip if an equal signature by this key is present, append a layer, rewrite the
 * config (one history entry and diff_id per layer) and PUT the manifest to the tag.
 */
export async function signLegacy(
  client: RawClient,
  repo: string,
  digest: string,
  key: SigningKey,
  options: LegacySignOptions = {},
): Promise<LegacySignature> {
  const payload = Buffer.from(
    options.payload ??
      simpleSigningPayload(options.dockerReference ?? `${client.host}/${repo}`, digest, options.annotations),
  );
  const signature = sign('sha256', payload, key.privateKey).toString('base64');
  const layer: Layer = {
    mediaType: COSIGN_MEDIA_TYPES.simpleSigning,
    size: payload.length,
    digest: sha256Digest(payload),
    annotations: { [SIGNATURE_ANNOTATION]: signature },
  };
  const tag = cosignTag(digest, 'sig');
  const isDuplicate = (existing: Layer): boolean =>
    existing.digest === layer.digest &&
    existing.mediaType === layer.mediaType &&
    sameAnnotationsExceptSignature(existing.annotations, layer.annotations) &&
    verifies(payload, existing.annotations?.[SIGNATURE_ANNOTATION], key.publicKey);
  const pushed = await appendLayer(client, repo, tag, layer, payload, isDuplicate, options.dockerMediaTypes ?? false);
  return { ...pushed, tag, payload, signature, layerDigest: layer.digest };
}

/**
 * Appends one in-toto attestation (Statement v0.1 in a DSSE envelope, §8) of `digest` to `<repo>:sha256-<hex>.att`
 * as cosign's legacy `attest` does (no dedupe).
 */
export async function attestLegacy(
  client: RawClient,
  repo: string,
  digest: string,
  key: SigningKey,
  predicateType: string,
  predicate: unknown,
): Promise<LegacyAttestation> {
  const statement = Buffer.from(
    goJson({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType,
      subject: [{ name: `${client.host}/${repo}`, digest: { sha256: hexOf(digest) } }],
      predicate,
    }),
  );
  const sig = sign('sha256', preAuthEncoding(IN_TOTO, statement), key.privateKey).toString('base64');
  const envelope = Buffer.from(
    JSON.stringify({ payloadType: IN_TOTO, payload: statement.toString('base64'), signatures: [{ keyid: '', sig }] }),
  );
  const layer: Layer = {
    mediaType: COSIGN_MEDIA_TYPES.dsseEnvelope,
    size: envelope.length,
    digest: sha256Digest(envelope),
    annotations: { [SIGNATURE_ANNOTATION]: '', predicateType },
  };
  const tag = cosignTag(digest, 'att');
  const pushed = await appendLayer(client, repo, tag, layer, envelope, () => false, false);
  return { ...pushed, tag, envelope, statement, layerDigest: layer.digest };
}

/** Writes `<repo>:sha256-<hex>.sbom`: a one-layer OCI image whose layer is the SBOM (`cosign attach sbom`, §8). */
export async function attachSbom(
  client: RawClient,
  repo: string,
  digest: string,
  sbom: Uint8Array,
  mediaType: string,
): Promise<PushedArtifact> {
  const layerDigest = await client.pushBlob(repo, sbom);
  const config = cosignConfig([layerDigest]);
  const configDigest = await client.pushBlob(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: configDigest },
      layers: [{ mediaType, size: sbom.length, digest: layerDigest }],
    }),
  );
  const tag = cosignTag(digest, 'sbom');
  const pushedDigest = await client.pushManifest(repo, tag, manifest, OCI_MANIFEST);
  return { repo, tag, digest: pushedDigest, mediaType: OCI_MANIFEST, manifest, configDigest, layerDigests: [layerDigest] };
}

export interface SigstoreBundleOptions {
  /** Statement subject annotations (cosign v3 `-a`). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** @defaultValue {@link COSIGN_SIGN_PREDICATE_TYPE} */
  readonly predicateType?: string;
}

/**
 * A plausible cosign v3 sigstore bundle (v0.3, DSSE over an in-toto Statement v1, key-signed, no tlog entries)
 * built with node:crypto. Good enough as referrer content; real bundles come from @sigstore/sign in src/cosign tests.
 */
export function keySignedSigstoreBundle(digest: string, key: SigningKey, options: SigstoreBundleOptions = {}): Buffer {
  const subject: Record<string, unknown> = { digest: { sha256: hexOf(digest) } };
  if (options.annotations !== undefined) subject['annotations'] = sortKeys(options.annotations);
  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [subject],
      predicateType: options.predicateType ?? COSIGN_SIGN_PREDICATE_TYPE,
      predicate: {},
    }),
  );
  const sig = sign('sha256', preAuthEncoding(IN_TOTO, statement), key.privateKey).toString('base64');
  return Buffer.from(
    JSON.stringify({
      mediaType: COSIGN_MEDIA_TYPES.sigstoreBundle,
      verificationMaterial: { publicKey: { hint: key.hint }, tlogEntries: [] },
      dsseEnvelope: { payload: statement.toString('base64'), payloadType: IN_TOTO, signatures: [{ sig, keyid: key.hint }] },
    }),
  );
}

export interface ReferrerOptions {
  /** `dev.sigstore.bundle.predicateType`. @defaultValue {@link COSIGN_SIGN_PREDICATE_TYPE} */
  readonly predicateType?: string;
  /** `org.opencontainers.image.created`; fixed by default so that fixtures are deterministic. @defaultValue '2025-01-01T00:00:00Z' */
  readonly created?: string;
}

/**
 * Stores a sigstore bundle as cosign v3 does on a registry without the referrers API (§9.2–9.3): pushes `{}` and the
 * bundle blob, PUTs the referrer manifest (with `subject`) BY DIGEST, then read-modify-writes the OCI index at tag
 * `sha256-<subject hex>` (entries sorted by digest, an existing entry for the same digest replaced).
 */
export async function attachSigstoreBundleReferrer(
  client: RawClient,
  repo: string,
  digest: string,
  bundleJson: Uint8Array,
  options: ReferrerOptions = {},
): Promise<PushedReferrer> {
  const subject = await client.headManifest(repo, digest);
  if (subject === undefined) throw new Error(`referrer subject ${repo}@${digest} does not exist`);
  const predicateType = options.predicateType ?? COSIGN_SIGN_PREDICATE_TYPE;
  const configDigest = await client.pushBlob(repo, EMPTY_JSON);
  const bundleDigest = await client.pushBlob(repo, bundleJson);
  const annotations = {
    'dev.sigstore.bundle.content': 'dsse-envelope',
    'dev.sigstore.bundle.predicateType': predicateType,
    'org.opencontainers.image.created': options.created ?? '2025-01-01T00:00:00Z',
  };
  const artifactType = COSIGN_MEDIA_TYPES.sigstoreBundle;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: COSIGN_MEDIA_TYPES.ociEmpty, size: EMPTY_JSON.length, digest: configDigest, artifactType },
      layers: [{ mediaType: artifactType, size: bundleJson.length, digest: bundleDigest }],
      annotations,
      subject: { mediaType: subject.mediaType, size: subject.size, digest },
      artifactType,
    }),
  );
  const referrerDigest = sha256Digest(manifest);
  await client.pushManifest(repo, referrerDigest, manifest, OCI_MANIFEST);

  const indexTag = referrersTag(digest);
  const existing = await client.findManifest(repo, indexTag);
  const entries = existing === undefined ? [] : ((JSON.parse(existing.bytes.toString('utf8')) as { manifests?: unknown[] }).manifests ?? []);
  const entry = { mediaType: OCI_MANIFEST, size: manifest.length, digest: referrerDigest, annotations, artifactType };
  const merged = [...(entries as { digest: string }[]).filter((e) => e.digest !== referrerDigest), entry].sort((a, b) =>
    a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0,
  );
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: merged }));
  const indexDigest = await client.pushManifest(repo, indexTag, index, OCI_INDEX);
  return {
    repo,
    tag: undefined,
    digest: referrerDigest,
    mediaType: OCI_MANIFEST,
    manifest,
    configDigest,
    layerDigests: [bundleDigest],
    bundleDigest,
    indexTag,
    indexDigest,
    index,
  };
}

interface Layer {
  readonly mediaType: string;
  readonly size: number;
  readonly digest: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Read-modify-write of a cosign attachment image: cosign's `mutate.Append` onto the existing tag or the empty image. */
async function appendLayer(
  client: RawClient,
  repo: string,
  tag: string,
  layer: Layer,
  blob: Buffer,
  isDuplicate: (existing: Layer) => boolean,
  dockerMediaTypes: boolean,
): Promise<PushedArtifact & { appended: boolean }> {
  const existing = await client.findManifest(repo, tag);
  let layers: Layer[] = [];
  let manifestType = dockerMediaTypes ? DOCKER_MANIFEST : OCI_MANIFEST;
  let configType = dockerMediaTypes ? DOCKER_CONFIG : OCI_CONFIG;
  if (existing !== undefined) {
    const parsed = JSON.parse(existing.bytes.toString('utf8')) as { mediaType: string; config: Layer; layers: Layer[] };
    layers = parsed.layers;
    manifestType = parsed.mediaType;
    configType = parsed.config.mediaType;
    if (layers.some(isDuplicate)) {
      return {
        repo,
        tag,
        digest: existing.digest,
        mediaType: existing.mediaType,
        manifest: existing.bytes,
        configDigest: parsed.config.digest,
        layerDigests: layers.map((l) => l.digest),
        appended: false,
      };
    }
  }
  await client.pushBlob(repo, blob);
  layers = [...layers, layer];
  const config = cosignConfig(layers.map((l) => l.digest));
  const configDigest = await client.pushBlob(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: configType, size: config.length, digest: configDigest },
      layers: layers.map(descriptor),
    }),
  );
  const digest = await client.pushManifest(repo, tag, manifest, manifestType);
  return { repo, tag, digest, mediaType: manifestType, manifest, configDigest, layerDigests: layers.map((l) => l.digest), appended: true };
}

/** ggcr descriptor key order: mediaType, size, digest, annotations (sorted). */
function descriptor(layer: Layer): Layer {
  return {
    mediaType: layer.mediaType,
    size: layer.size,
    digest: layer.digest,
    ...(layer.annotations === undefined ? {} : { annotations: sortKeys(layer.annotations) }),
  };
}

function sameAnnotationsExceptSignature(a: Layer['annotations'], b: Layer['annotations']): boolean {
  const strip = (x: Layer['annotations']): string =>
    JSON.stringify(sortKeys(Object.fromEntries(Object.entries(x ?? {}).filter(([k]) => k !== SIGNATURE_ANNOTATION))));
  return strip(a) === strip(b);
}

function verifies(payload: Buffer, signature: string | undefined, publicKey: KeyObject): boolean {
  if (signature === undefined) return false;
  return verify('sha256', payload, publicKey, Buffer.from(signature.replace(/\s/g, ''), 'base64'));
}

function sortKeys<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Go's encoding/json output for our plain values: like JSON.stringify, plus HTML-safe escapes. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}
