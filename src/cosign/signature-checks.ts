/**
 * Pure checks of one signature (a `.sig` layer, a `.att` layer, a sigstore bundle) against a policy: no
 * I/O, so the fixtures can be verified offline. The registry walk is in `signature-verifier.ts`.
 */
import type { Repository } from '../oci/index.js';
import { annotationMismatches } from './annotations.js';
import { checkLegacyLayer, checkSigstoreBundle, type AuthorityOutcome } from './authority-check.js';
import { decodeBase64Lenient, isRecord, sha256Hex, sha256HexOf } from './encoding.js';
import { IN_TOTO_PAYLOAD_TYPE, parseEnvelope, parseStatement, type Statement } from './in-toto.js';
import type { Authority, Policy } from './policy.js';
import { parseSimpleSigningPayload, SIMPLE_SIGNING_TYPE } from './simple-signing.js';
import { BUNDLE_V03_MEDIA_TYPES, bundleEnvelope, parseSigstoreBundle, type LegacyLayerEvidence } from './sigstore-verification.js';
import { parseStrictJson } from './strict-json.js';
import { REASON_STAGE, type FailureReason, type LimitCode } from './verification-result.js';

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
export const RFC3161_ANNOTATION = 'dev.sigstore.cosign/rfc3161timestamp';

/** The outcome for one signature. */
export interface SignatureVerdict {
  readonly passed: boolean;
  readonly authorities: string[];
  readonly reason?: FailureReason;
  readonly detail?: string;
  readonly limit?: LimitCode;
  readonly keyId?: string;
  readonly signer?: string;
  readonly identity?: { subjectAlternativeName?: string; issuer?: string };
  readonly integratedTime?: number;
  readonly predicateType?: string;
  /** Signature (true) or attestation (false) by predicate type; bundles only. */
  readonly isSignature?: boolean;
  readonly payload?: Readonly<Record<string, unknown>>;
}

/** Caps checked before any signature or log entry reaches the crypto or the library. */
export interface ContentLimits {
  /** Transparency-log entries per sigstore bundle. @defaultValue 32 */
  readonly maxTlogEntries: number;
  /** Signatures per DSSE envelope (`.att` layers and bundles). @defaultValue 16 */
  readonly maxDsseSignatures: number;
}

export const DEFAULT_CONTENT_LIMITS: ContentLimits = { maxTlogEntries: 32, maxDsseSignatures: 16 };

/** What the signature must be about. */
export interface SubjectContext {
  readonly repo: Repository;
  /** `sha256:<hex>`. */
  readonly digest: string;
  readonly policy: Policy;
  /** @defaultValue {@link DEFAULT_CONTENT_LIMITS} */
  readonly limits?: ContentLimits;
}

function failed(reason: FailureReason, detail: string, extra: Partial<SignatureVerdict> = {}): SignatureVerdict {
  return { passed: false, authorities: [], reason, detail, ...extra };
}

function evidenceOf(annotations: Readonly<Record<string, string>>): LegacyLayerEvidence {
  const out: { certificate?: string; chain?: string; rekorBundle?: string; rfc3161Timestamp?: string } = {};
  if (annotations[CERTIFICATE_ANNOTATION] !== undefined) out.certificate = annotations[CERTIFICATE_ANNOTATION];
  if (annotations[CHAIN_ANNOTATION] !== undefined) out.chain = annotations[CHAIN_ANNOTATION];
  if (annotations[BUNDLE_ANNOTATION] !== undefined) out.rekorBundle = annotations[BUNDLE_ANNOTATION];
  if (annotations[RFC3161_ANNOTATION] !== undefined) out.rfc3161Timestamp = annotations[RFC3161_ANNOTATION];
  return out;
}

/**
 * Runs every authority, then (only when one passed) the authority-independent claims. When all fail,
 * the reason that got furthest wins: a wrong key is less telling than missing tlog evidence.
 */
function combine(
  outcomes: readonly (readonly [Authority, AuthorityOutcome])[],
  claims: () => SignatureVerdict | undefined,
  extra: Partial<SignatureVerdict> = {},
): SignatureVerdict {
  const passed = outcomes.filter((o): o is readonly [Authority, AuthorityOutcome & { ok: true }] => o[1].ok);
  if (passed.length === 0) {
    // The payload is not authenticated: keep it out of the result.
    const { payload: _unverified, ...meta } = extra;
    let best: (AuthorityOutcome & { ok: false }) | undefined;
    for (const [, o] of outcomes) {
      if (!o.ok && (best === undefined || REASON_STAGE[o.reason] > REASON_STAGE[best.reason])) best = o;
    }
    if (best === undefined) return failed('signature invalid', 'the policy has no authorities', meta);
    return failed(best.reason, best.detail, meta);
  }
  const claimFailure = claims();
  if (claimFailure !== undefined) return { ...claimFailure, ...extra, passed: false, authorities: [] };
  const first = passed[0]?.[1];
  const signer = first === undefined ? undefined : signerOf(first);
  return {
    passed: true,
    authorities: passed.map(([a]) => a.name),
    ...(signer === undefined ? {} : { signer }),
    ...(first?.keyId === undefined ? {} : { keyId: first.keyId }),
    ...(first?.identity === undefined ? {} : { identity: first.identity }),
    ...(first?.integratedTime === undefined ? {} : { integratedTime: first.integratedTime }),
    ...extra,
  };
}

/** The signer for the threshold: the verifying key's fingerprint, or the certificate's issuer and SAN. */
function signerOf(o: AuthorityOutcome & { ok: true }): string | undefined {
  if (o.keyId !== undefined) return `key:${o.keyId}`;
  if (o.identity !== undefined) return `certificate:${o.identity.issuer ?? ''} ${o.identity.subjectAlternativeName ?? ''}`;
  return undefined;
}

/** Verifies one simple-signing layer of a `.sig` image (cosign-signatures.md §4). */
export function verifySimpleSigningLayer(payload: Buffer, annotations: Readonly<Record<string, string>>, ctx: SubjectContext): SignatureVerdict {
  const b64 = annotations[SIGNATURE_ANNOTATION];
  if (b64 === undefined) return failed('signature invalid', `layer has no ${SIGNATURE_ANNOTATION} annotation`);
  const signature = decodeBase64Lenient(b64);
  if (signature === undefined || signature.length === 0) return failed('signature invalid', `${SIGNATURE_ANNOTATION} is not valid base64`);
  const layer = {
    content: { kind: 'message' as const, payload, signature },
    signatures: [signature],
    evidence: evidenceOf(annotations),
    tlogHashHex: sha256Hex(payload),
  };
  const outcomes = ctx.policy.authorities.map((a) => [a, checkLegacyLayer(layer, a)] as const);
  const parsed = parseSimpleSigningPayload(payload);
  return combine(outcomes, () => {
    if (!parsed.ok) return failed('signature invalid', parsed.detail);
    const c = parsed.value;
    if (c.digest !== ctx.digest) return failed('digest mismatch', `payload claims ${JSON.stringify(c.digest)}, verifying ${ctx.digest}`);
    if (ctx.policy.checkType && c.type !== SIMPLE_SIGNING_TYPE) return failed('signature invalid', `critical.type is ${JSON.stringify(c.type)}, not ${JSON.stringify(SIMPLE_SIGNING_TYPE)}`);
    const ref = dockerReferenceProblem(c.dockerReference, ctx);
    if (ref !== undefined) return failed('untrusted identity', ref);
    const bad = annotationMismatches(ctx.policy.annotations, c.optional);
    if (bad.length > 0) return failed('missing or incorrect annotation', describeMismatches(bad, ctx.policy.annotations, c.optional));
    return undefined;
  }, parsed.ok ? { payload: parsed.value.document } : {});
}

/** Verifies one DSSE layer of a `.att` image (cosign-signatures.md §8). */
export function verifyAttestationLayer(blob: Buffer, annotations: Readonly<Record<string, string>>, ctx: SubjectContext): SignatureVerdict {
  const env = parseEnvelope(blob);
  if (!env.ok) return failed('signature invalid', env.detail);
  if (env.value.payloadType !== IN_TOTO_PAYLOAD_TYPE) return failed('signature invalid', `DSSE payloadType is ${JSON.stringify(env.value.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  const max = (ctx.limits ?? DEFAULT_CONTENT_LIMITS).maxDsseSignatures;
  if (env.value.signatures.length > max) return overLimit('SIG_TOO_MANY_DSSE_SIGNATURES', `DSSE envelope has ${env.value.signatures.length} signatures; more than ${max} are refused unchecked`);
  const statement = parseStatement(env.value.payload);
  if (!statement.ok) return failed('signature invalid', statement.detail);
  // Decision (docs/verification.md#predicate-types): the layer's `predicateType` annotation is not signed;
  // only the verified statement says what an attestation is.
  const predicateType = statement.value.predicateType;
  const extra = { payload: statement.value.document, ...(predicateType === undefined ? {} : { predicateType }) };
  const first = env.value.signatures[0];
  if (first === undefined) return failed('signature invalid', 'DSSE envelope has no signatures', extra);
  const layer = {
    content: { kind: 'dsse' as const, payloadType: env.value.payloadType, payload: env.value.payload, signature: first.sig },
    signatures: env.value.signatures.map((s) => s.sig),
    evidence: evidenceOf(annotations),
    tlogHashHex: sha256Hex(blob),
    tlogPayloadHashHex: sha256Hex(env.value.payload),
  };
  const outcomes = ctx.policy.authorities.map((a) => [a, checkLegacyLayer(layer, a)] as const);
  return combine(outcomes, () => subjectProblem(statement.value, ctx, false), extra);
}

/**
 * Verifies one sigstore bundle found as a referrer (cosign-signatures.md §9.4, §12.2): v0.3 only, DSSE
 * with an in-toto statement, a subject naming the digest; signatures (by predicate type) also carry the
 * required annotations in that subject.
 */
export function verifyBundleBlob(blob: Buffer, ctx: SubjectContext): SignatureVerdict {
  const json = parseStrictJson(blob.toString('utf8'));
  if (!json.ok) return failed('signature invalid', `bundle: ${json.error}`);
  const over = bundleLimitProblem(json.value, ctx.limits ?? DEFAULT_CONTENT_LIMITS);
  if (over !== undefined) return over;
  const parsed = parseSigstoreBundle(json.value);
  if (!parsed.ok) return failed('signature invalid', parsed.detail);
  const bundle = parsed.bundle;
  if (!BUNDLE_V03_MEDIA_TYPES.includes(bundle.mediaType)) return failed('signature invalid', `unsupported bundle media type ${bundle.mediaType} (v0.3 expected)`);
  const envelope = bundleEnvelope(bundle);
  if (envelope === undefined) return failed('signature invalid', 'bundle content is not a DSSE envelope');
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return failed('signature invalid', `DSSE payloadType is ${JSON.stringify(envelope.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  const statement = parseStatement(envelope.payload);
  if (!statement.ok) return failed('signature invalid', statement.detail);
  const predicateType = statement.value.predicateType;
  const isSignature = predicateType !== undefined && ctx.policy.signaturePredicateTypes.includes(predicateType);
  const extra = { payload: statement.value.document, isSignature, ...(predicateType === undefined ? {} : { predicateType }) };
  const outcomes = ctx.policy.authorities.map((a) => [a, checkSigstoreBundle(bundle, a)] as const);
  return combine(outcomes, () => subjectProblem(statement.value, ctx, isSignature), extra);
}

function overLimit(limit: LimitCode, detail: string): SignatureVerdict {
  return failed('signature invalid', `[${limit}] ${detail}`, { limit });
}

/** Counts in the raw bundle JSON, before the library builds (and later verifies) anything from it. */
function bundleLimitProblem(json: unknown, limits: ContentLimits): SignatureVerdict | undefined {
  if (!isRecord(json)) return undefined;
  const material = json['verificationMaterial'];
  const entries = isRecord(material) ? material['tlogEntries'] : undefined;
  if (Array.isArray(entries) && entries.length > limits.maxTlogEntries) {
    return overLimit('SIG_TOO_MANY_TLOG_ENTRIES', `bundle has ${entries.length} transparency-log entries; more than ${limits.maxTlogEntries} are refused unchecked`);
  }
  const envelope = json['dsseEnvelope'];
  const signatures = isRecord(envelope) ? envelope['signatures'] : undefined;
  if (Array.isArray(signatures) && signatures.length > limits.maxDsseSignatures) {
    return overLimit('SIG_TOO_MANY_DSSE_SIGNATURES', `bundle DSSE envelope has ${signatures.length} signatures; more than ${limits.maxDsseSignatures} are refused unchecked`);
  }
  return undefined;
}

/**
 * A subject must name the digest; with the opt-in docker-reference check its `name` must match too (the
 * statement's signed identity, as `critical.identity.docker-reference` is for `.sig` payloads); for signatures
 * the annotations of such a subject carry the policy's.
 */
function subjectProblem(statement: Statement, ctx: SubjectContext, checkAnnotations: boolean): SignatureVerdict | undefined {
  const hex = sha256HexOf(ctx.digest);
  const forDigest = statement.subjects.filter((s) => s.sha256 === hex);
  if (forDigest.length === 0) {
    const named = statement.subjects.map((s) => s.sha256 ?? '?').join(', ');
    return failed('digest mismatch', `statement subjects [${named}] do not include ${ctx.digest}`);
  }
  // Decision (docs/verification.md#docker-reference): every format carries its signed identity; a statement
  // without a subject name (cosign v3 signatures) cannot satisfy a policy that asks for the check.
  const named = forDigest.filter((s) => dockerReferenceProblem(s.name, ctx) === undefined);
  if (named.length === 0) return failed('untrusted identity', `in-toto subject: ${dockerReferenceProblem(forDigest[0]?.name, ctx) ?? ''}`);
  if (!checkAnnotations) return undefined;
  const problems = named.map((subject) => ({ subject, bad: annotationMismatches(ctx.policy.annotations, subject.annotations) }));
  if (problems.some((p) => p.bad.length === 0)) return undefined;
  const first = problems[0];
  if (first === undefined) return undefined;
  return failed('missing or incorrect annotation', describeMismatches(first.bad, ctx.policy.annotations, first.subject.annotations ?? null));
}

function describeMismatches(keys: readonly string[], want: Readonly<Record<string, string>>, got: Readonly<Record<string, unknown>> | null | undefined): string {
  return keys
    .map((k) => {
      const has = got != null && Object.hasOwn(got, k);
      return `${k}: want ${JSON.stringify(want[k])}, signed ${has ? JSON.stringify(got[k]) : 'nothing'}`;
    })
    .join('; ');
}

/** The opt-in docker-reference check (containers/image semantics), `undefined` when it passes or is off. */
function dockerReferenceProblem(signed: unknown, ctx: SubjectContext): string | undefined {
  const { match, reference } = ctx.policy.dockerReference;
  if (match === 'off') return undefined;
  const expected = reference ?? `${ctx.repo.registry}/${ctx.repo.repository}`;
  if (typeof signed !== 'string') return `no signed docker-reference (policy requires ${match} match with ${expected})`;
  if (match === 'exact') {
    return signed === expected ? undefined : `docker-reference ${JSON.stringify(signed)} is not ${JSON.stringify(expected)}`;
  }
  return normaliseRepository(signed) === normaliseRepository(expected) ? undefined : `docker-reference ${JSON.stringify(signed)} names another repository than ${JSON.stringify(expected)}`;
}

/** `registry/repository` without tag or digest, Docker Hub spelled `index.docker.io/library/…`. */
export function normaliseRepository(ref: string): string {
  let s = ref;
  const at = s.indexOf('@');
  if (at !== -1) s = s.slice(0, at);
  const slash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  if (colon > slash) s = s.slice(0, colon);
  const parts = s.split('/');
  const first = parts[0] ?? '';
  const hasRegistry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'index.docker.io';
  let path = hasRegistry ? parts.slice(1).join('/') : s;
  if (registry === 'docker.io' || registry === 'registry-1.docker.io') registry = 'index.docker.io';
  if (registry === 'index.docker.io' && !path.includes('/')) path = `library/${path}`;
  return `${registry}/${path}`;
}
