/**
 * Checks one signature against one authority: key or certificate identity, and transparency-log evidence
 * under the authority's tlog mode. Claims (digest, annotations) are the caller's: they do not depend on
 * the authority.
 */
import { createPublicKey } from 'node:crypto';
import { X509Certificate } from '@sigstore/core';
import { matchKeylessIdentity } from './certificate-identity.js';
import { preAuthEncoding } from './in-toto.js';
import type { Authority } from './policy.js';
import { pemBlocks, type VerificationKey } from './public-key.js';
import { verifyRawSignature } from './raw-signature.js';
import { bodyHasKey, tlogBodyFacts, verifyRekorBundle } from './rekor-bundle.js';
import {
  bundleHasTimestamps,
  bundleIntegratedTime,
  bundleMaterial,
  bundleSignatureVerifies,
  bundleTlogBodies,
  checkBundle,
  legacyLayerToBundleJson,
  parseSigstoreBundle,
  withoutEvidence,
  type LegacyContent,
  type LegacyLayerEvidence,
  type SigstoreBundle,
} from './sigstore-verification.js';
import type { FailureReason } from './verification-result.js';

export type AuthorityOutcome =
  | { readonly ok: true; readonly keyId?: string; readonly identity?: { subjectAlternativeName?: string; issuer?: string }; readonly integratedTime?: number }
  | { readonly ok: false; readonly reason: FailureReason; readonly detail: string };

function fail(reason: FailureReason, detail: string): AuthorityOutcome {
  return { ok: false, reason, detail };
}

export interface LegacySignedLayer {
  /** What the signature covers: the payload (`.sig`) or the DSSE PAE (`.att`). */
  readonly content: LegacyContent;
  /** Signatures to try (one for `.sig` layers; every DSSE signature for `.att`). */
  readonly signatures: readonly Buffer[];
  readonly evidence: LegacyLayerEvidence;
  /** sha256 hex that the tlog entry must record: of the payload (`.sig`) or of the layer bytes (`.att`). */
  readonly tlogHashHex: string;
  /** For `.att`: sha256 hex of the DSSE payload, which `dsse`/`intoto` entries also record. */
  readonly tlogPayloadHashHex?: string;
}

/** Checks a legacy `.sig`/`.att` layer against one authority (cosign-signatures.md §4–5). */
export function checkLegacyLayer(layer: LegacySignedLayer, authority: Authority): AuthorityOutcome {
  if (authority.keyless !== undefined) return checkLegacyKeyless(layer, authority);
  const signed = layer.content.kind === 'message' ? layer.content.payload : preAuthEncoding(layer.content.payloadType, layer.content.payload);
  let match: { key: VerificationKey; signature: Buffer } | undefined;
  for (const key of authority.keys) {
    const signature = layer.signatures.find((s) => verifyRawSignature(key, signed, s));
    if (signature !== undefined) {
      match = { key, signature };
      break;
    }
  }
  if (match === undefined) return fail('signature invalid', `signature does not verify with ${keyNames(authority)}`);
  const base = { ok: true as const, keyId: match.key.keyId };
  if (authority.tlog === 'ignore') return base;
  const annotation = layer.evidence.rekorBundle;
  if (annotation === undefined) {
    return authority.tlog === 'require' ? fail('tlog evidence missing', `no dev.sigstore.cosign/bundle annotation (authority ${authority.name} requires transparency-log evidence)`) : base;
  }
  if (authority.trust.tlogs.length === 0) {
    return fail('tlog evidence invalid', `authority ${authority.name} has no transparency-log keys to check the present Rekor bundle (set trustedRoot or rekorKeys, or tlog: ignore)`);
  }
  const keyDer = [match.key.spki, ...certificateDersFor(layer.evidence.certificate, match.key.spki)];
  const subject = {
    hashHex: layer.tlogHashHex,
    keyDer,
    ...(layer.tlogPayloadHashHex === undefined ? {} : { payloadHashHex: layer.tlogPayloadHashHex }),
    // cosign skips the signature comparison for attestations.
    ...(layer.content.kind === 'message' ? { signature: match.signature } : {}),
  };
  const outcome = verifyRekorBundle(annotation, authority.trust, subject);
  if (!outcome.ok) return fail('tlog evidence invalid', outcome.detail);
  return { ...base, integratedTime: outcome.evidence.integratedTime };
}

/** The layer certificate's DER when its key is `spki` (the tlog body may name the certificate instead of the key). */
function certificateDersFor(pem: string | undefined, spki: Buffer): Buffer[] {
  if (pem === undefined || pem === '') return [];
  return pemBlocks(pem)
    .filter((b) => b.type === 'CERTIFICATE')
    .filter((b) => {
      try {
        return X509Certificate.parse(b.der).publicKey.equals(spki);
      } catch {
        return false;
      }
    })
    .map((b) => b.der);
}

function checkLegacyKeyless(layer: LegacySignedLayer, authority: Authority): AuthorityOutcome {
  if (layer.evidence.certificate === undefined || layer.evidence.certificate === '') {
    return fail('untrusted identity', `not signed with a certificate (authority ${authority.name} is keyless)`);
  }
  const signature = layer.signatures[0];
  if (signature === undefined) return fail('signature invalid', 'no signature');
  const content: LegacyContent = { ...layer.content, signature };
  const json = legacyLayerToBundleJson(content, layer.evidence, '');
  if (typeof json === 'string') return fail('signature invalid', json);
  const parsed = parseSigstoreBundle(json);
  if (!parsed.ok) return fail('signature invalid', parsed.detail);
  return checkSigstoreBundle(parsed.bundle, authority, content.kind === 'message' ? content.payload : undefined);
}

/**
 * Checks a sigstore bundle against one authority with `@sigstore/verify`, plus what the library leaves
 * out: the key (or certificate) in every tlog body must be the verifying one.
 */
export function checkSigstoreBundle(bundle: SigstoreBundle, authority: Authority, artifact?: Buffer): AuthorityOutcome {
  let material;
  try {
    material = bundleMaterial(bundle);
  } catch (e) {
    return fail('signature invalid', `unreadable verification material (${(e as Error).message})`);
  }
  return authority.keyless === undefined ? checkKeyBundle(bundle, material, authority, artifact) : checkKeylessBundle(bundle, material, authority, artifact);
}

function checkKeyBundle(bundle: SigstoreBundle, material: ReturnType<typeof bundleMaterial>, authority: Authority, artifact: Buffer | undefined): AuthorityOutcome {
  if (material.kind !== 'key') return fail('signature invalid', `signed with a certificate; authority ${authority.name} trusts keys`);
  const key = authority.keys.find((k) => bundleSignatureVerifies(bundle, k.key, artifact));
  if (key === undefined) return fail('signature invalid', `signature does not verify with ${keyNames(authority)}`);
  // Timestamps do not bound a key's validity (the key finder accepts every time), so TSA evidence is only
  // checked when the authority has TSAs to check it with.
  const dropTimestamps = authority.tlog === 'ignore' || authority.trust.timestampAuthorities.length === 0;
  const effective = withoutEvidence(bundle, { tlog: authority.tlog === 'ignore', timestamps: dropTimestamps });
  const entries = effective.verificationMaterial.tlogEntries.length;
  if (authority.tlog === 'require' && entries === 0) return fail('tlog evidence missing', `bundle has no transparency-log entry (authority ${authority.name} requires one)`);
  if (entries > 0 && authority.trust.tlogs.length === 0) {
    return fail('tlog evidence invalid', `authority ${authority.name} has no transparency-log keys to check the bundle's entries (set trustedRoot or rekorKeys, or tlog: ignore)`);
  }
  const result = checkBundle(effective, {
    trust: authority.trust,
    key: key.key,
    thresholds: { tlog: authority.tlog === 'require' ? 1 : 0, ctlog: 0, timestamp: 0 },
    ...(artifact === undefined ? {} : { artifact }),
  });
  if (!result.ok) return fail(reasonFor(result.code, result.message), `${result.code}: ${result.message}`);
  const bodies = bundleTlogBodies(effective);
  const bad = keyInBodyProblem(bodies, [key.spki]);
  if (bad !== undefined) return fail('tlog evidence invalid', bad);
  const t = entries > 0 ? bundleIntegratedTime(effective) : undefined;
  return { ok: true, keyId: key.keyId, ...(t === undefined ? {} : { integratedTime: t }) };
}

function checkKeylessBundle(bundle: SigstoreBundle, material: ReturnType<typeof bundleMaterial>, authority: Authority, artifact: Buffer | undefined): AuthorityOutcome {
  const id = authority.keyless;
  if (id === undefined) return fail('untrusted identity', 'internal: not a keyless authority');
  if (material.kind !== 'certificate') return fail('untrusted identity', `signed with a key, not a certificate (authority ${authority.name} is keyless)`);
  let certKey;
  try {
    certKey = createPublicKey({ key: material.leaf.publicKey, format: 'der', type: 'spki' });
  } catch (e) {
    return fail('signature invalid', `unreadable certificate key (${(e as Error).message})`);
  }
  if (!bundleSignatureVerifies(bundle, certKey, artifact)) return fail('signature invalid', 'signature does not verify with the certificate key');
  const entries = bundle.verificationMaterial.tlogEntries.length;
  if (authority.tlog === 'require' && entries === 0) return fail('tlog evidence missing', `bundle has no transparency-log entry (authority ${authority.name} requires one)`);
  if (entries === 0 && !bundleHasTimestamps(bundle)) {
    return fail('tlog evidence missing', 'a certificate signature needs a transparency-log entry or an RFC 3161 timestamp to prove when it was made');
  }
  // Decision (docs/verification.md#keyless): entries are the time evidence for the certificate, so they
  // are verified even under `tlog: ignore`; only their count stops mattering.
  const result = checkBundle(bundle, {
    trust: authority.trust,
    thresholds: { tlog: authority.tlog === 'require' ? 1 : 0, ctlog: 1, timestamp: 1 },
    // The SAN is matched below against every SAN (the library looks at the first URI or email only).
    policy: id.issuer === undefined ? {} : { issuer: id.issuer },
    ...(artifact === undefined ? {} : { artifact }),
  });
  if (!result.ok) return fail(reasonFor(result.code, result.message), `${result.code}: ${result.message}`);
  const matched = matchKeylessIdentity(material.leafDer, id);
  if (!matched.ok) return fail('untrusted identity', matched.detail);
  const san = matched.subjectAlternativeName;
  const issuer = result.signer.issuer;
  if (id.issuer !== undefined && issuer !== id.issuer) return fail('untrusted identity', `certificate issuer ${String(issuer)} is not ${id.issuer}`);
  if (id.issuerRegExp !== undefined && (issuer === undefined || !id.issuerRegExp.test(issuer))) return fail('untrusted identity', `certificate issuer ${String(issuer)} does not match ${String(id.issuerRegExp)}`);
  const bad = keyInBodyProblem(bundleTlogBodies(bundle), [material.leafDer, material.leaf.publicKey]);
  if (bad !== undefined) return fail('tlog evidence invalid', bad);
  const identity: { subjectAlternativeName?: string; issuer?: string } = {};
  if (san !== undefined) identity.subjectAlternativeName = san;
  if (issuer !== undefined) identity.issuer = issuer;
  const t = bundleIntegratedTime(bundle);
  return { ok: true, identity, ...(t === undefined ? {} : { integratedTime: t }) };
}

/** cosign's `comparePublicKey`: every tlog body must name the verifying key or certificate, byte for byte. */
function keyInBodyProblem(bodies: readonly Buffer[], keyDer: readonly Buffer[]): string | undefined {
  for (const body of bodies) {
    const facts = tlogBodyFacts(body);
    if (typeof facts === 'string') return facts;
    if (!bodyHasKey(facts, keyDer)) return `tlog entry (${facts.kind}) names another key than the verifying one`;
  }
  return undefined;
}

/** Maps @sigstore/verify error codes onto our reasons. */
export function reasonFor(code: string, message: string): FailureReason {
  if (code === 'TIMESTAMP_ERROR' || code === 'TLOG_ERROR') return / got 0$/.test(message) ? 'tlog evidence missing' : 'tlog evidence invalid';
  if (code.startsWith('TLOG_')) return 'tlog evidence invalid';
  if (code === 'CERTIFICATE_ERROR' || code === 'UNTRUSTED_SIGNER_ERROR' || code === 'PUBLIC_KEY_ERROR') return 'untrusted identity';
  return 'signature invalid';
}

function keyNames(authority: Authority): string {
  return authority.keys.length === 1 ? `key ${authority.keys[0]?.source ?? ''}` : `any of the ${authority.keys.length} keys of authority ${authority.name}`;
}
