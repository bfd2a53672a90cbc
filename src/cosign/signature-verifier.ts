import { asAbort, PromoteError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { formatRepository, type Descriptor, type Registry, type Repository } from '../oci/index.js';
import { isRecord, sha256Hex, sha256HexOf } from './encoding.js';
import { DSSE_MEDIA_TYPE } from './in-toto.js';
import { rulesFor, type Policy } from './policy.js';
import { SIMPLE_SIGNING_MEDIA_TYPE } from './simple-signing.js';
import { signatureTag } from './signature-tags.js';
import { verifyAttestationLayer, verifyBundleBlob, verifySimpleSigningLayer, type SignatureVerdict, type SubjectContext } from './signature-checks.js';
import { BUNDLE_MEDIA_TYPE_PREFIX } from './sigstore-verification.js';
import { parseStrictJson } from './strict-json.js';
import { FAILURE_REASONS, type ArtifactVerification, type FailureReason, type LimitCode, type SignatureCheck, type SignatureFormat } from './verification-result.js';

/** cosign's reader limits (`pkg/oci/remote/signatures.go`). */
export interface VerificationLimits {
  /** Layers read from a `.sig`/`.att` image; more is refused as a whole. @defaultValue 1000 */
  maxLayers?: number;
  /** Largest payload or bundle blob; a bigger descriptor is refused before download. @defaultValue 128 MiB */
  maxPayloadBytes?: number;
  /** Referrers examined per digest. @defaultValue 1000 */
  maxReferrers?: number;
  /** Largest sigstore bundle blob; a bigger descriptor is refused before download. @defaultValue 10 MiB */
  maxBundleBytes?: number;
  /** Transparency-log entries per sigstore bundle, counted before the library sees it. @defaultValue 32 */
  maxTlogEntries?: number;
  /** Signatures per DSSE envelope, counted before any is checked. @defaultValue 16 */
  maxDsseSignatures?: number;
  /**
   * Signatures fetched and checked at once, across every `verify()` call of this verifier (a bounded pool:
   * `scope: all` verifies many artifacts in parallel). @defaultValue 4
   */
  concurrency?: number;
  /** Wall-clock budget for one artifact's signatures; exceeded ⇒ `REGISTRY_TIMEOUT` `[SIG_DEADLINE_EXCEEDED]`. @defaultValue 60 000 ms */
  deadlineMs?: number;
}

export interface SignatureVerifierDeps {
  registry: Registry;
  log: Logger;
  limits?: VerificationLimits;
}

/** What to verify: a manifest digest in a repository; the engine also says what it is and where it came from. */
export interface VerificationSubject {
  readonly repo: Repository;
  readonly digest: string;
  /** Selects the policy's rules: `image` may have its own (`images:`). @defaultValue 'bundle' */
  readonly kind?: 'bundle' | 'image';
  /** The repository the artifact was promoted from, matched by `images[].match`. @defaultValue `repo` */
  readonly origin?: Repository;
}

export const DEFAULT_LIMITS: Required<VerificationLimits> = {
  maxLayers: 1000,
  maxPayloadBytes: 128 * 1024 * 1024,
  maxReferrers: 1000,
  maxBundleBytes: 10 * 1024 * 1024,
  maxTlogEntries: 32,
  maxDsseSignatures: 16,
  concurrency: 4,
  deadlineMs: 60_000,
};

/**
 * Content problems that make one signature fail instead of the whole verification: a registry that serves
 * a missing, oversized or corrupted signature object is hostile input, not an outage.
 */
const CONTENT_ERRORS: readonly ErrorCode[] = ['BLOB_NOT_FOUND', 'DIGEST_MISMATCH', 'BLOB_TOO_LARGE', 'MANIFEST_NOT_FOUND', 'MANIFEST_INVALID', 'MANIFEST_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

function isContentError(e: unknown): e is PromoteError {
  return e instanceof PromoteError && CONTENT_ERRORS.includes(e.code);
}

/**
 * Finds and verifies the cosign signatures of a manifest digest: sigstore bundles among its referrers
 * (cosign v3), layers of `sha256-<hex>.sig` (legacy), and, when the policy asks for attestations, `.att`
 * layers. An artifact passes when `threshold` distinct authorities each have a fully passing signature
 * and every required attestation was verified by one of the authorities.
 */
export class SignatureVerifier {
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #limits: Required<VerificationLimits>;
  readonly #pool: Pool;

  constructor(deps: SignatureVerifierDeps) {
    this.#registry = deps.registry;
    this.#log = deps.log.child({ component: 'signature-verifier' });
    this.#limits = { ...DEFAULT_LIMITS, ...deps.limits };
    this.#pool = new Pool(this.#limits.concurrency);
  }

  /** Verifies the signatures of one manifest digest in `repo` against `policy`. Never throws for a failed verification (that is a result); throws PromoteError only for I/O failures. */
  async verify(subject: VerificationSubject, policy: Policy, signal?: AbortSignal): Promise<ArtifactVerification> {
    const hex = sha256HexOf(subject.digest);
    if (hex === undefined) throw new PromoteError('UNSUPPORTED_DIGEST', `${subject.digest}: only sha256 digests can carry cosign signatures`);
    const origin = formatRepository(subject.origin ?? subject.repo);
    const rules = rulesFor(policy, { ...(subject.kind === undefined ? {} : { kind: subject.kind }), repository: origin });
    if (rules === undefined) {
      // Decision (docs/verification.md#subject-rules): with an images section, an image no rule names fails closed.
      const detail = `no images[] rule of the policy matches ${origin} (rules: ${policy.images.map((r) => r.match).join(', ')})`;
      this.#log.debug({ repository: origin, digest: subject.digest }, detail);
      return { digest: subject.digest, passed: false, authoritiesPassed: [], signersCounted: 0, signatures: [failedCheck('legacy', origin, 'untrusted identity', detail)], reasons: ['untrusted identity'] };
    }
    return this.#verifyWith(subject, rules === policy ? policy : { ...policy, ...rules }, signal);
  }

  async #verifyWith(subject: VerificationSubject, policy: Policy, signal: AbortSignal | undefined): Promise<ArtifactVerification> {
    const limits = { maxTlogEntries: this.#limits.maxTlogEntries, maxDsseSignatures: this.#limits.maxDsseSignatures };
    const ctx: SubjectContext = { repo: subject.repo, digest: subject.digest, policy, limits };
    const deadline = AbortSignal.timeout(this.#limits.deadlineMs);
    const bounded = signal === undefined ? deadline : AbortSignal.any([signal, deadline]);
    const checks: SignatureCheck[] = [];
    try {
      checks.push(...(await this.#bundles(ctx, bounded)));
      checks.push(...(await this.#legacy(ctx, 'sig', bounded)));
      if (policy.attestations.length > 0) checks.push(...(await this.#legacy(ctx, 'att', bounded)));
    } catch (e) {
      if (deadline.aborted && signal?.aborted !== true) {
        throw new PromoteError('REGISTRY_TIMEOUT', `[SIG_DEADLINE_EXCEEDED] verifying the signatures of ${formatRepository(subject.repo)}@${subject.digest} took longer than ${this.#limits.deadlineMs} ms`, { cause: e });
      }
      throw e;
    }
    const result = summarise(subject.digest, checks, policy);
    this.#log.debug(
      { repository: `${subject.repo.registry}/${subject.repo.repository}`, digest: subject.digest, passed: result.passed, signatures: checks.length, reasons: result.reasons },
      'verified signatures',
    );
    return result;
  }

  /** Sigstore bundles among the referrers (API or `sha256-<hex>` fallback index, as the registry client does). */
  async #bundles(ctx: SubjectContext, signal: AbortSignal | undefined): Promise<SignatureCheck[]> {
    let referrers: Descriptor[];
    try {
      referrers = await this.#registry.listReferrers(ctx.repo, ctx.digest, signal);
    } catch (e) {
      // A fallback index that is not an index (or not JSON) is hostile content, not an outage.
      if (isContentError(e)) return [failedCheck('bundle', `referrers of ${ctx.digest}`, 'signature invalid', `referrer list unreadable: ${e.message}`)];
      throw e;
    }
    const candidates = referrers.filter((d) => d.artifactType === undefined || d.artifactType.startsWith(BUNDLE_MEDIA_TYPE_PREFIX));
    if (candidates.length > this.#limits.maxReferrers) {
      return [failedCheck('bundle', `referrers of ${ctx.digest}`, 'signature invalid', `${candidates.length} referrers exceed the limit of ${this.#limits.maxReferrers}; none were read`, undefined, 'SIG_TOO_MANY_REFERRERS')];
    }
    const out = await this.#pool.map(candidates, (d) => this.#bundle(ctx, d, signal));
    return out.filter((c): c is SignatureCheck => c !== undefined);
  }

  async #bundle(ctx: SubjectContext, referrer: Descriptor, signal: AbortSignal | undefined): Promise<SignatureCheck | undefined> {
    throwIfAborted(signal);
    const source = referrer.digest;
    let manifestBytes: Buffer | undefined;
    try {
      manifestBytes = (await this.#registry.findManifest({ ...ctx.repo, digest: referrer.digest }, {}, signal))?.bytes;
    } catch (e) {
      if (isContentError(e)) return failedCheck('bundle', source, 'signature invalid', `referrer manifest unreadable: ${e.message}`);
      throw e;
    }
    if (manifestBytes === undefined) return failedCheck('bundle', source, 'signature invalid', `referrer manifest ${referrer.digest} is listed but not found`);
    const parsed = parseStrictJson(manifestBytes.toString('utf8'));
    if (!parsed.ok || !isRecord(parsed.value)) return failedCheck('bundle', source, 'signature invalid', `referrer manifest is not valid JSON${parsed.ok ? '' : ` (${parsed.error})`}`);
    const m = parsed.value;
    const config = isRecord(m['config']) ? m['config'] : {};
    const type = typeof m['artifactType'] === 'string' ? m['artifactType'] : typeof config['mediaType'] === 'string' ? config['mediaType'] : '';
    // Not a sigstore bundle (an SBOM, an imgpkg artifact…): not a signature at all.
    if (!type.startsWith(BUNDLE_MEDIA_TYPE_PREFIX)) return undefined;
    const layers = (Array.isArray(m['layers']) ? m['layers'] : []).filter((l): l is Record<string, unknown> => isRecord(l) && typeof l['mediaType'] === 'string' && l['mediaType'].startsWith(BUNDLE_MEDIA_TYPE_PREFIX));
    const layer = layers[0];
    if (layers.length !== 1 || layer === undefined) return failedCheck('bundle', source, 'signature invalid', `referrer has ${layers.length} bundle layers, expected exactly one`);
    const desc = layerDescriptor(layer);
    if (desc === undefined) return failedCheck('bundle', source, 'signature invalid', 'bundle layer descriptor is malformed');
    const blob = await this.#readPayload(ctx.repo, desc, signal, this.#limits.maxBundleBytes, 'SIG_BUNDLE_TOO_LARGE');
    if (!Buffer.isBuffer(blob)) return failedCheck('bundle', source, 'signature invalid', blob.detail, desc.digest, blob.limit);
    throwIfAborted(signal);
    const verdict = verifyBundleBlob(blob, ctx);
    return toCheck(verdict.isSignature === false ? 'bundle-attestation' : 'bundle', source, verdict, desc.digest);
  }

  /** The layers of `sha256-<hex>.sig` or `.att`. */
  async #legacy(ctx: SubjectContext, suffix: 'sig' | 'att', signal: AbortSignal | undefined): Promise<SignatureCheck[]> {
    throwIfAborted(signal);
    const tag = signatureTag(ctx.digest, suffix);
    const format: SignatureFormat = suffix === 'sig' ? 'legacy' : 'legacy-attestation';
    let raw;
    try {
      raw = await this.#registry.findManifest({ ...ctx.repo, tag }, {}, signal);
    } catch (e) {
      if (isContentError(e)) return [failedCheck(format, tag, 'signature invalid', `signature image unreadable: ${e.message}`)];
      throw e;
    }
    if (raw === undefined) return [];
    const parsed = parseStrictJson(raw.bytes.toString('utf8'));
    if (!parsed.ok || !isRecord(parsed.value) || !Array.isArray(parsed.value['layers'])) {
      return [failedCheck(format, tag, 'signature invalid', 'signature image manifest has no layer list')];
    }
    const layers = parsed.value['layers'] as unknown[];
    if (layers.length > this.#limits.maxLayers) {
      return [failedCheck(format, tag, 'signature invalid', `signature image has ${layers.length} layers; more than ${this.#limits.maxLayers} are refused`, undefined, 'SIG_TOO_MANY_LAYERS')];
    }
    const wanted = suffix === 'sig' ? SIMPLE_SIGNING_MEDIA_TYPE : DSSE_MEDIA_TYPE;
    return this.#pool.map(layers.map((l, i) => [l, i] as const), async ([l, i]) => {
      const source = `${tag}[${i}]`;
      const desc = isRecord(l) ? layerDescriptor(l) : undefined;
      if (desc === undefined) return failedCheck(format, source, 'signature invalid', 'layer descriptor is malformed');
      if (desc.mediaType !== wanted) return failedCheck(format, source, 'signature invalid', `layer media type ${desc.mediaType} is not ${wanted}`, desc.digest);
      const blob = await this.#readPayload(ctx.repo, desc, signal, this.#limits.maxPayloadBytes, 'SIG_PAYLOAD_TOO_LARGE');
      if (!Buffer.isBuffer(blob)) return failedCheck(format, source, 'signature invalid', blob.detail, desc.digest, blob.limit);
      throwIfAborted(signal);
      const annotations = desc.annotations ?? {};
      const verdict = suffix === 'sig' ? verifySimpleSigningLayer(blob, annotations, ctx) : verifyAttestationLayer(blob, annotations, ctx);
      return toCheck(format, source, verdict, desc.digest);
    });
  }

  /** Reads a payload blob within `max` (refused by descriptor size before any download); a problem is a value. */
  async #readPayload(repo: Repository, desc: Descriptor, signal: AbortSignal | undefined, max: number, limit: LimitCode): Promise<Buffer | { detail: string; limit?: LimitCode }> {
    throwIfAborted(signal);
    if (desc.size > max) {
      return { detail: `[${limit}] payload of ${desc.size} bytes exceeds the limit of ${max}; not downloaded`, limit };
    }
    let blob: Buffer;
    try {
      blob = await this.#registry.readBlob(repo, desc.digest, Math.min(desc.size, max), signal);
    } catch (e) {
      if (isContentError(e)) return { detail: `payload ${desc.digest} unreadable: ${e.message}` };
      throw e;
    }
    // The client verifies digests; checked again because signature trust rests on it.
    if (blob.length !== desc.size || `sha256:${sha256Hex(blob)}` !== desc.digest) return { detail: `payload bytes do not match ${desc.digest}` };
    return blob;
  }
}

function layerDescriptor(l: Record<string, unknown>): (Descriptor & { annotations?: Readonly<Record<string, string>> }) | undefined {
  const { mediaType, digest, size, annotations } = l;
  if (typeof mediaType !== 'string' || typeof digest !== 'string' || !Number.isSafeInteger(size) || (size as number) < 0) return undefined;
  if (sha256HexOf(digest) === undefined) return undefined;
  let ann: Record<string, string> | undefined;
  if (annotations !== undefined) {
    if (!isRecord(annotations) || !Object.values(annotations).every((v) => typeof v === 'string')) return undefined;
    ann = annotations as Record<string, string>;
  }
  return { mediaType, digest, size: size as number, ...(ann === undefined ? {} : { annotations: ann }) };
}

function failedCheck(format: SignatureFormat, source: string, reason: FailureReason, detail: string, blobDigest?: string, limit?: LimitCode): SignatureCheck {
  return {
    format,
    source,
    passed: false,
    authorities: [],
    reason,
    detail: limit === undefined || detail.startsWith('[') ? detail : `[${limit}] ${detail}`,
    ...(blobDigest === undefined ? {} : { blobDigest }),
    ...(limit === undefined ? {} : { limit }),
  };
}

function toCheck(format: SignatureFormat, source: string, v: SignatureVerdict, blobDigest: string): SignatureCheck {
  const { isSignature: _ignored, ...rest } = v;
  return { format, source, blobDigest, ...rest };
}

const SIGNATURE_FORMATS: readonly SignatureFormat[] = ['legacy', 'bundle'];

/**
 * Threshold over distinct signers, each matched to a distinct authority; attestation requirements; reasons
 * in catalogue order.
 */
export function summarise(digest: string, checks: SignatureCheck[], policy: Policy): ArtifactVerification {
  const signatures = checks.filter((c) => SIGNATURE_FORMATS.includes(c.format));
  const passedNames = new Set(signatures.filter((c) => c.passed).flatMap((c) => c.authorities));
  const authoritiesPassed = policy.authorities.map((a) => a.name).filter((n) => passedNames.has(n));
  const signersCounted = countSigners(signatures);
  const attestationsMissing = policy.attestations
    .map((a) => a.predicateType)
    .filter((t) => !checks.some((c) => c.passed && !SIGNATURE_FORMATS.includes(c.format) && c.predicateType === t));
  const enough = signersCounted >= policy.threshold;
  const reasons = new Set<FailureReason>();
  if (!enough) {
    for (const c of signatures) if (!c.passed && c.reason !== undefined) reasons.add(c.reason);
    if (reasons.size === 0) reasons.add('no signatures found');
  }
  if (attestationsMissing.length > 0) reasons.add('attestation missing');
  const ordered = FAILURE_REASONS.filter((r) => reasons.has(r));
  return {
    digest,
    passed: enough && attestationsMissing.length === 0,
    authoritiesPassed,
    signersCounted,
    signatures: checks,
    reasons: ordered,
    ...(attestationsMissing.length > 0 ? { attestationsMissing } : {}),
  };
}

/**
 * Decision (docs/verification.md#threshold): the threshold counts distinct signers (key fingerprint, or
 * certificate issuer + identity), each matched to its own authority: two authorities listing one key let one
 * signature satisfy both, which must count once. A maximum bipartite matching of signers to the authorities
 * they satisfied (a handful of each; augmenting paths).
 */
function countSigners(signatures: readonly SignatureCheck[]): number {
  const bySigner = new Map<string, Set<string>>();
  for (const [i, c] of signatures.entries()) {
    if (!c.passed || c.authorities.length === 0) continue;
    const who = c.signer ?? `signature:${i}`;
    const set = bySigner.get(who) ?? new Set<string>();
    for (const a of c.authorities) set.add(a);
    bySigner.set(who, set);
  }
  const owner = new Map<string, string>(); // authority → signer
  const tryAssign = (signer: string, seen: Set<string>): boolean => {
    for (const a of bySigner.get(signer) ?? []) {
      if (seen.has(a)) continue;
      seen.add(a);
      const current = owner.get(a);
      if (current === undefined || tryAssign(current, seen)) {
        owner.set(a, signer);
        return true;
      }
    }
    return false;
  };
  let matched = 0;
  for (const signer of bySigner.keys()) if (tryAssign(signer, new Set())) matched += 1;
  return matched;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  const e = asAbort(signal);
  if (e !== undefined) throw e;
}

/**
 * A bounded pool shared by every `verify()` of one verifier: at most `size` signature fetches and checks run
 * at once, whatever the number of artifacts verified in parallel. Results keep input order.
 */
class Pool {
  readonly #size: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#size = Math.max(1, size);
  }

  async run<R>(fn: () => Promise<R>): Promise<R> {
    if (this.#active >= this.#size) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active += 1;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#active -= 1;
      else next();
    }
  }

  map<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
    return Promise.all(items.map((item) => this.run(() => fn(item))));
  }
}
