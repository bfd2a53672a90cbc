import { bundleToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder, type Signer } from '@sigstore/sign';
import { asAbort, PromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import { digestOf, parseWireDescriptor, serializeImageManifest, type Registry, type Repository, type WireDescriptor } from '../oci/index.js';
import { decodeBase64Lenient, encodeBase64, isRecord, sha256HexOf } from './encoding.js';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, serializeSignStatement } from './in-toto.js';
import type { SigningKey } from './private-key.js';
import { toPem } from './public-key.js';
import { assertSigningKey, signRaw, verifyRawSignature } from './raw-signature.js';
import {
  DOCKER_CONFIG,
  DOCKER_MANIFEST,
  EMPTY_CONFIG_BYTES,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
  signatureConfigBytes,
} from './signature-image.js';
import { referrersTag, signatureTag } from './signature-tags.js';
import { SIGNATURE_ANNOTATION } from './signature-checks.js';
import { serializeSimpleSigningPayload, SIMPLE_SIGNING_MEDIA_TYPE } from './simple-signing.js';
import { parseStrictJson } from './strict-json.js';

export const BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export interface SignOptions {
  /** `-a` annotations, signed into the payload (`optional`) or the statement subject. @defaultValue {} */
  annotations?: Readonly<Record<string, string>>;
  /** Write a cosign v3 sigstore bundle as an OCI referrer instead of a `.sig` layer. @defaultValue false */
  newBundleFormat?: boolean;
  /** Docker media types for a new `.sig` image (`COSIGN_DOCKER_MEDIA_TYPES=1`); an existing image keeps its own. @defaultValue false */
  dockerMediaTypes?: boolean;
  /** The payload's docker-reference. @defaultValue `registry/repository` of the signed image */
  dockerReference?: string;
  /** Clock for `org.opencontainers.image.created` on referrer manifests. @defaultValue `() => new Date()` */
  now?: () => Date;
}

export interface SignResult {
  readonly format: 'legacy' | 'bundle';
  /** `sha256-<hex>.sig` (legacy) or `sha256-<hex>` (the referrers fallback index). */
  readonly tag: string;
  /** Digest of the manifest written: the `.sig` image or the referrer manifest. */
  readonly manifestDigest: string;
  /** False when an identical signature was already there (cosign's dedupe): nothing was written. */
  readonly written: boolean;
  /** Digest of the payload layer or bundle blob. */
  readonly blobDigest: string;
}

export interface ImageSignerDeps {
  registry: Registry;
  log: Logger;
}

/**
 * Signs manifest digests the way cosign does: appends a simple-signing layer to `sha256-<hex>.sig`
 * (read-modify-write, dedupe, config rebuilt), or attaches a key-signed sigstore bundle as a referrer.
 */
export class ImageSigner {
  readonly #registry: Registry;
  readonly #log: Logger;

  constructor(deps: ImageSignerDeps) {
    this.#registry = deps.registry;
    this.#log = deps.log.child({ component: 'image-signer' });
  }

  async sign(subject: { repo: Repository; digest: string }, key: SigningKey, options: SignOptions = {}, signal?: AbortSignal): Promise<SignResult> {
    if (sha256HexOf(subject.digest) === undefined) throw new PromoteError('UNSUPPORTED_DIGEST', `${subject.digest}: only sha256 digests can be signed`);
    assertSigningKey(key.privateKey, key.source);
    const result = options.newBundleFormat === true ? await this.#signBundle(subject, key, options, signal) : await this.#signLegacy(subject, key, options, signal);
    this.#log.info({ repository: `${subject.repo.registry}/${subject.repo.repository}`, digest: subject.digest, format: result.format, written: result.written }, 'signed');
    return result;
  }

  async #signLegacy(subject: { repo: Repository; digest: string }, key: SigningKey, options: SignOptions, signal: AbortSignal | undefined): Promise<SignResult> {
    const { repo, digest } = subject;
    const payload = serializeSimpleSigningPayload({
      dockerReference: options.dockerReference ?? `${repo.registry}/${repo.repository}`,
      digest,
      ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
    });
    const payloadDigest = digestOf(payload);
    const signature = signRaw(key.privateKey, payload, key.source);
    const tag = signatureTag(digest, 'sig');

    throwIfAborted(signal);
    const existing = await this.#registry.findManifest({ ...repo, tag }, {}, signal);
    let manifestType = options.dockerMediaTypes === true ? DOCKER_MANIFEST : OCI_MANIFEST;
    let layers: WireDescriptor[] = [];
    if (existing !== undefined) {
      const parsed = parseExistingImage(existing.bytes, tag);
      manifestType = existing.mediaType === DOCKER_MANIFEST || parsed.mediaType === DOCKER_MANIFEST ? DOCKER_MANIFEST : OCI_MANIFEST;
      layers = parsed.layers;
      // cosign's dedupe: same payload and media type, and the stored signature verifies with our key.
      const dupe = layers.find((l) => {
        if (l.digest !== payloadDigest || l.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) return false;
        const stored = decodeBase64Lenient(l.annotations?.[SIGNATURE_ANNOTATION] ?? '');
        return stored !== undefined && verifyRawSignature(key.publicKey, payload, stored);
      });
      if (dupe !== undefined) return { format: 'legacy', tag, manifestDigest: existing.digest, written: false, blobDigest: payloadDigest };
      if (layers.length >= 1000) throw new PromoteError('MANIFEST_INVALID', `${tag} already has ${layers.length} signatures; another would exceed cosign's 1000-layer limit`);
    }
    layers = [...layers, { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, size: payload.length, digest: payloadDigest, annotations: { [SIGNATURE_ANNOTATION]: encodeBase64(signature) } }];
    // Layers are uncompressed: diff id = layer digest.
    const config = signatureConfigBytes(layers.map((l) => l.digest));
    const configType = manifestType === DOCKER_MANIFEST ? DOCKER_CONFIG : OCI_CONFIG;
    const manifest = serializeImageManifest({ mediaType: manifestType, config: { mediaType: configType, size: config.length, digest: digestOf(config) }, layers });

    await this.#registry.pushBlob(repo, payload, SIMPLE_SIGNING_MEDIA_TYPE, signal);
    await this.#registry.pushBlob(repo, config, configType, signal);
    throwIfAborted(signal);
    const manifestDigest = await this.#registry.putManifest({ ...repo, tag }, { mediaType: manifestType, bytes: manifest }, signal);
    return { format: 'legacy', tag, manifestDigest, written: true, blobDigest: payloadDigest };
  }

  async #signBundle(subject: { repo: Repository; digest: string }, key: SigningKey, options: SignOptions, signal: AbortSignal | undefined): Promise<SignResult> {
    const { repo, digest } = subject;
    const hex = sha256HexOf(digest) as string;
    const target = await this.#registry.headManifest({ ...repo, digest }, signal);
    if (target === undefined) throw new PromoteError('MANIFEST_NOT_FOUND', `${repo.registry}/${repo.repository}@${digest} does not exist; nothing to sign`);

    const statement = serializeSignStatement(hex, options.annotations ?? {});
    const publicKeyPem = toPem('PUBLIC KEY', key.publicKey.spki);
    const signer: Signer = {
      sign: (data) => Promise.resolve({ signature: signRaw(key.privateKey, data, key.source), key: { $case: 'publicKey', publicKey: publicKeyPem, hint: key.publicKey.keyId } }),
    };
    const bundle = await new DSSEBundleBuilder({ signer, witnesses: [] }).create({ data: statement, type: IN_TOTO_PAYLOAD_TYPE });
    const bundleBytes = Buffer.from(JSON.stringify(bundleToJSON(bundle)), 'utf8');
    const bundleDigest = digestOf(bundleBytes);

    const created = (options.now ?? (() => new Date()))().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const annotations = {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE,
      'org.opencontainers.image.created': created,
    };
    const manifest = serializeImageManifest({
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_EMPTY, size: EMPTY_CONFIG_BYTES.length, digest: digestOf(EMPTY_CONFIG_BYTES), artifactType: BUNDLE_V03_MEDIA_TYPE },
      layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, size: bundleBytes.length, digest: bundleDigest }],
      annotations,
      subject: { mediaType: target.mediaType, size: target.size, digest },
      artifactType: BUNDLE_V03_MEDIA_TYPE,
    });
    const manifestDigest = digestOf(manifest);

    await this.#registry.pushBlob(repo, bundleBytes, BUNDLE_V03_MEDIA_TYPE, signal);
    await this.#registry.pushBlob(repo, EMPTY_CONFIG_BYTES, OCI_EMPTY, signal);
    throwIfAborted(signal);
    await this.#registry.putManifest({ ...repo, digest: manifestDigest }, { mediaType: OCI_MANIFEST, bytes: manifest }, signal);

    // Listed as a referrer: through the API where the registry has one, else the fallback index (read-modify-
    // write, no locking, like ggcr).
    const tag = referrersTag(digest);
    await this.#registry.indexReferrers(repo, digest, [{ mediaType: OCI_MANIFEST, size: manifest.length, digest: manifestDigest, annotations, artifactType: BUNDLE_V03_MEDIA_TYPE }], {}, signal);
    return { format: 'bundle', tag, manifestDigest, written: true, blobDigest: bundleDigest };
  }
}

function parseExistingImage(bytes: Buffer, tag: string): { mediaType: string | undefined; layers: WireDescriptor[] } {
  const parsed = parseStrictJson(bytes.toString('utf8'));
  if (!parsed.ok || !isRecord(parsed.value) || !Array.isArray(parsed.value['layers'])) {
    throw new PromoteError('MANIFEST_INVALID', `${tag} exists but is not a signature image manifest`);
  }
  const m = parsed.value;
  return {
    mediaType: typeof m['mediaType'] === 'string' ? m['mediaType'] : undefined,
    layers: (m['layers'] as unknown[]).map((l, i) => parseWireDescriptor(l, `${tag} layer ${i}`)),
  };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  const e = asAbort(signal);
  if (e !== undefined) throw e;
}
