/**
 * The adapter around @sigstore/verify and @sigstore/bundle: parse a bundle, build trust material from our
 * {@link TrustRoot}, run the `Verifier`, and turn its exceptions into values. Nothing outside src/cosign
 * sees a sigstore type.
 */
import type { KeyObject } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { X509Certificate } from '@sigstore/core';
import { PolicyError, toSignedEntity, VerificationError, Verifier, type TrustMaterial, type VerificationPolicy } from '@sigstore/verify';
import { decodeBase64Lenient, encodeBase64, isRecord, sha256 } from './encoding.js';
import { pemBlocks } from './public-key.js';
import { parseRekorBundle } from './rekor-bundle.js';
import { parseStrictJson } from './strict-json.js';
import type { TrustRoot } from './trust-root.js';

export type SigstoreBundle = Bundle;

export const BUNDLE_MEDIA_TYPE_PREFIX = 'application/vnd.dev.sigstore.bundle';
export const BUNDLE_V03_MEDIA_TYPES: readonly string[] = [
  'application/vnd.dev.sigstore.bundle.v0.3+json',
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
];

export type BundleParse = { ok: true; bundle: SigstoreBundle } | { ok: false; detail: string };

/** Parses bundle JSON (`bundleFromJSON` enforces the per-version rules); throws nothing. */
export function parseSigstoreBundle(json: unknown): BundleParse {
  if (!isRecord(json)) return { ok: false, detail: 'bundle is not a JSON object' };
  try {
    return { ok: true, bundle: bundleFromJSON(json) };
  } catch (e) {
    const fields = (e as { fields?: unknown }).fields;
    return { ok: false, detail: `invalid sigstore bundle: ${(e as Error).message}${Array.isArray(fields) ? ` (${fields.join(', ')})` : ''}` };
  }
}

/** Parses bundle bytes from a registry blob: strict JSON, then {@link parseSigstoreBundle}. */
export function parseSigstoreBundleBytes(bytes: Buffer): BundleParse {
  const parsed = parseStrictJson(bytes.toString('utf8'));
  if (!parsed.ok) return { ok: false, detail: `bundle: ${parsed.error}` };
  return parseSigstoreBundle(parsed.value);
}

export interface BundleCheckOptions {
  readonly trust: TrustRoot;
  /** The key for public-key bundles; the bundle's key hint is ignored, as cosign does. */
  readonly key?: KeyObject;
  /** @defaultValue the library's: 1 tlog entry, 1 SCT, 1 timestamp */
  readonly thresholds?: { readonly tlog?: number; readonly ctlog?: number; readonly timestamp?: number };
  /** Certificate identity policy handed to the verifier. */
  readonly policy?: { readonly subjectAlternativeName?: string | RegExp; readonly issuer?: string };
  /** The artifact bytes, required for message-signature bundles. */
  readonly artifact?: Buffer;
}

export interface BundleSigner {
  readonly subjectAlternativeName?: string;
  readonly issuer?: string;
}

export type BundleCheck = { ok: true; signer: BundleSigner } | { ok: false; code: string; message: string };

/** Runs `@sigstore/verify`'s `Verifier` over a bundle; failures are values carrying the library's code. */
export function checkBundle(bundle: SigstoreBundle, options: BundleCheckOptions): BundleCheck {
  try {
    const entity = toSignedEntity(bundle, options.artifact);
    const verifier = new Verifier(trustMaterial(options.trust, options.key, checkpointNames(bundle)), {
      tlogThreshold: options.thresholds?.tlog ?? 1,
      ctlogThreshold: options.thresholds?.ctlog ?? 1,
      timestampThreshold: options.thresholds?.timestamp ?? 1,
    });
    let policy: VerificationPolicy | undefined;
    if (options.policy !== undefined) {
      policy = {};
      if (options.policy.subjectAlternativeName !== undefined) policy.subjectAlternativeName = options.policy.subjectAlternativeName;
      if (options.policy.issuer !== undefined) policy.extensions = { issuer: options.policy.issuer };
    }
    const signer = verifier.verify(entity, policy);
    const out: { subjectAlternativeName?: string; issuer?: string } = {};
    if (signer.identity?.subjectAlternativeName !== undefined) out.subjectAlternativeName = signer.identity.subjectAlternativeName;
    if (signer.identity?.extensions?.issuer !== undefined) out.issuer = signer.identity.extensions.issuer;
    return { ok: true, signer: out };
  } catch (e) {
    if (e instanceof VerificationError || e instanceof PolicyError) return { ok: false, code: e.code, message: e.message };
    return { ok: false, code: 'ERROR', message: (e as Error).message };
  }
}

/**
 * Trust material built by hand from our parsed root (spec §10: a plain object), with a hint-ignoring key finder.
 *
 * Decision: a log trusted by its key alone (`rekorKeys`, cosign's SIGSTORE_REKOR_PUBLIC_KEY) has no URL, and
 * @sigstore/verify accepts a checkpoint signature only from a log whose base URL contains the signature's
 * name. With no URL there is no name to bind, so such a log answers to the names in this bundle's
 * checkpoints; the signature must still verify with the trusted key, and the log ID must still match.
 */
function trustMaterial(root: TrustRoot, key: KeyObject | undefined, names: string): TrustMaterial {
  const log = (l: TrustRoot['tlogs'][number]): TrustMaterial['tlogs'][number] => ({ logID: l.logId, baseURL: l.baseUrl === '' ? names : l.baseUrl, publicKey: l.key, validFor: { start: l.validFor.start, end: l.validFor.end } });
  const ca = (c: TrustRoot['certificateAuthorities'][number]): TrustMaterial['certificateAuthorities'][number] => ({ certChain: [...c.certChain], validFor: { start: c.validFor.start, end: c.validFor.end } });
  return {
    certificateAuthorities: root.certificateAuthorities.map(ca),
    timestampAuthorities: root.timestampAuthorities.map(ca),
    tlogs: root.tlogs.map(log),
    ctlogs: root.ctlogs.map(log),
    publicKey: () => {
      if (key === undefined) throw new VerificationError({ code: 'PUBLIC_KEY_ERROR', message: 'no public key configured' });
      return { publicKey: key, validFor: () => true };
    },
  };
}

/** The signer names of every checkpoint in the bundle's log entries (`— <name> <signature>` lines), one per line. */
function checkpointNames(bundle: SigstoreBundle): string {
  const names = bundle.verificationMaterial.tlogEntries.flatMap((e) =>
    [...(e.inclusionProof?.checkpoint?.envelope ?? '').matchAll(/\u2014 (\S+) \S+\n/g)].map((m) => m[1]!));
  return [...new Set(names)].join('\n');
}

/** What the bundle is signed with. */
export type BundleMaterial = { kind: 'key'; hint: string } | { kind: 'certificate'; leaf: X509Certificate; leafDer: Buffer };

export function bundleMaterial(bundle: SigstoreBundle): BundleMaterial {
  const c = bundle.verificationMaterial.content;
  switch (c.$case) {
    case 'publicKey':
      return { kind: 'key', hint: c.publicKey.hint };
    case 'certificate':
      return { kind: 'certificate', leaf: X509Certificate.parse(Buffer.from(c.certificate.rawBytes)), leafDer: Buffer.from(c.certificate.rawBytes) };
    case 'x509CertificateChain': {
      const first = c.x509CertificateChain.certificates[0];
      if (first === undefined) throw new Error('empty certificate chain');
      return { kind: 'certificate', leaf: X509Certificate.parse(Buffer.from(first.rawBytes)), leafDer: Buffer.from(first.rawBytes) };
    }
  }
}

/** The signature over the content, for a pre-check that tells "wrong key" from later failures. */
export function bundleSignatureVerifies(bundle: SigstoreBundle, key: KeyObject, artifact?: Buffer): boolean {
  try {
    return toSignedEntity(bundle, artifact).signature.verifySignature(key);
  } catch {
    return false;
  }
}

/** Canonicalized tlog entry bodies, for the key-in-body check the library skips. */
export function bundleTlogBodies(bundle: SigstoreBundle): Buffer[] {
  return bundle.verificationMaterial.tlogEntries.map((e) => Buffer.from(e.canonicalizedBody));
}

export function bundleIntegratedTime(bundle: SigstoreBundle): number | undefined {
  for (const e of bundle.verificationMaterial.tlogEntries) {
    const t = Number(e.integratedTime);
    if (Number.isSafeInteger(t) && t > 0) return t;
  }
  return undefined;
}

/** A copy without transparency-log entries and/or RFC 3161 timestamps (evidence a policy says to ignore). */
export function withoutEvidence(bundle: SigstoreBundle, drop: { tlog: boolean; timestamps: boolean }): SigstoreBundle {
  const vm = { ...bundle.verificationMaterial };
  if (drop.tlog) vm.tlogEntries = [];
  if (drop.timestamps) vm.timestampVerificationData = undefined;
  return { ...bundle, verificationMaterial: vm };
}

export function bundleHasTimestamps(bundle: SigstoreBundle): boolean {
  return (bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0) > 0;
}

/** The in-toto payload of a DSSE bundle, or `undefined` for message-signature bundles. */
export function bundleEnvelope(bundle: SigstoreBundle): { payloadType: string; payload: Buffer } | undefined {
  if (bundle.content.$case !== 'dsseEnvelope') return undefined;
  return { payloadType: bundle.content.dsseEnvelope.payloadType, payload: Buffer.from(bundle.content.dsseEnvelope.payload) };
}

/** The layer annotations of a legacy `.sig`/`.att` layer that matter for the conversion. */
export interface LegacyLayerEvidence {
  /** The layer's `dev.sigstore.cosign/certificate` PEM, if any. */
  readonly certificate?: string;
  /** `dev.sigstore.cosign/chain` PEM (intermediates … root), if any. */
  readonly chain?: string;
  /** `dev.sigstore.cosign/bundle` JSON string, if any. */
  readonly rekorBundle?: string;
  /** `dev.sigstore.cosign/rfc3161timestamp` JSON string, if any. */
  readonly rfc3161Timestamp?: string;
}

export type LegacyContent =
  | { readonly kind: 'message'; readonly payload: Buffer; readonly signature: Buffer }
  | { readonly kind: 'dsse'; readonly payloadType: string; readonly payload: Buffer; readonly signature: Buffer };

/**
 * Repackages a legacy layer as a v0.1 sigstore bundle JSON (cosign-signatures.md §10): the SET becomes an
 * inclusion promise, the certificate (plus chain) or the key hint the verification material.
 */
export function legacyLayerToBundleJson(content: LegacyContent, evidence: LegacyLayerEvidence, keyHint: string): Record<string, unknown> | string {
  const verificationMaterial: Record<string, unknown> = {};
  if (evidence.certificate !== undefined && evidence.certificate !== '') {
    const leaf = pemBlocks(evidence.certificate).filter((b) => b.type === 'CERTIFICATE');
    if (leaf.length !== 1) return 'certificate annotation does not hold one PEM certificate';
    const chain = pemBlocks(evidence.chain ?? '').filter((b) => b.type === 'CERTIFICATE');
    verificationMaterial['x509CertificateChain'] = { certificates: [...leaf, ...chain].map((b) => ({ rawBytes: encodeBase64(b.der) })) };
  } else {
    verificationMaterial['publicKey'] = { hint: keyHint };
  }
  const tlogEntries: unknown[] = [];
  if (evidence.rekorBundle !== undefined) {
    const rb = parseRekorBundle(evidence.rekorBundle);
    if (typeof rb === 'string') return rb;
    const body = decodeBase64Lenient(rb.body);
    const parsedBody = body === undefined ? undefined : parseStrictJson(body.toString('utf8'));
    if (body === undefined || parsedBody === undefined || !parsedBody.ok || !isRecord(parsedBody.value)) return 'tlog body is not base64 JSON';
    tlogEntries.push({
      logIndex: String(rb.logIndex),
      logId: { keyId: Buffer.from(rb.logId, 'hex').toString('base64') },
      kindVersion: { kind: String(parsedBody.value['kind']), version: String(parsedBody.value['apiVersion']) },
      integratedTime: String(rb.integratedTime),
      inclusionPromise: { signedEntryTimestamp: encodeBase64(rb.signedEntryTimestamp) },
      canonicalizedBody: encodeBase64(body),
    });
  }
  verificationMaterial['tlogEntries'] = tlogEntries;
  if (evidence.rfc3161Timestamp !== undefined && evidence.rfc3161Timestamp !== '') {
    const ts = parseStrictJson(evidence.rfc3161Timestamp);
    const b64 = ts.ok && isRecord(ts.value) ? ts.value['SignedRFC3161Timestamp'] : undefined;
    if (typeof b64 !== 'string') return 'rfc3161timestamp annotation has no SignedRFC3161Timestamp';
    verificationMaterial['timestampVerificationData'] = { rfc3161Timestamps: [{ signedTimestamp: b64 }] };
  }
  const out: Record<string, unknown> = { mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1', verificationMaterial };
  if (content.kind === 'message') {
    out['messageSignature'] = { messageDigest: { algorithm: 'SHA2_256', digest: encodeBase64(sha256(content.payload)) }, signature: encodeBase64(content.signature) };
  } else {
    out['dsseEnvelope'] = { payload: encodeBase64(content.payload), payloadType: content.payloadType, signatures: [{ sig: encodeBase64(content.signature), keyid: '' }] };
  }
  return out;
}
