/** Structured verification results: per artifact, per signature, with reasons from a fixed set. */

/** Every reason a verification can fail for. Status, Events and the CLI show these strings verbatim. */
export const FAILURE_REASONS = [
  'no signatures found',
  'signature invalid',
  'digest mismatch',
  'missing or incorrect annotation',
  'untrusted identity',
  'tlog evidence missing',
  'tlog evidence invalid',
  'attestation missing',
] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];

/**
 * How far a signature got before failing, so that the most telling reason is reported when several
 * authorities fail one signature differently (a wrong key says less than a wrong annotation).
 */
export const REASON_STAGE: Readonly<Record<FailureReason, number>> = {
  'no signatures found': -1,
  'signature invalid': 0,
  'untrusted identity': 1,
  'tlog evidence missing': 2,
  'tlog evidence invalid': 2,
  'digest mismatch': 3,
  'missing or incorrect annotation': 4,
  'attestation missing': 5,
};

/**
 * The caps on hostile signature content (docs/verification.md#limits), named so that callers and tests branch
 * on a code, not a message. A signature over a cap fails with reason `signature invalid` and this `limit`;
 * the per-artifact deadline throws `REGISTRY_TIMEOUT` whose message starts with `[SIG_DEADLINE_EXCEEDED]`.
 */
export const LIMIT_CODES = [
  'SIG_TOO_MANY_LAYERS',
  'SIG_TOO_MANY_REFERRERS',
  'SIG_PAYLOAD_TOO_LARGE',
  'SIG_BUNDLE_TOO_LARGE',
  'SIG_TOO_MANY_TLOG_ENTRIES',
  'SIG_TOO_MANY_DSSE_SIGNATURES',
  'SIG_DEADLINE_EXCEEDED',
] as const;

export type LimitCode = (typeof LIMIT_CODES)[number];

/** Where a signature was found. */
export type SignatureFormat =
  /** A layer of the `sha256-<hex>.sig` image. */
  | 'legacy'
  /** A layer of the `sha256-<hex>.att` image (DSSE). */
  | 'legacy-attestation'
  /** A sigstore bundle referrer whose predicate type is a signature's. */
  | 'bundle'
  /** A sigstore bundle referrer with another predicate type. */
  | 'bundle-attestation';

export interface SignatureCheck {
  readonly format: SignatureFormat;
  /** `sha256-<hex>.sig[2]` (tag and layer index) or the referrer manifest digest. */
  readonly source: string;
  /** Digest of the layer or bundle blob, when it was known. */
  readonly blobDigest?: string;
  readonly passed: boolean;
  /** Names of the authorities this signature satisfied (with every policy check). */
  readonly authorities: readonly string[];
  readonly reason?: FailureReason;
  /** Human detail for the reason: which key, which annotation, which field. */
  readonly detail?: string;
  /** The cap this signature exceeded, when that is why it failed. */
  readonly limit?: LimitCode;
  /** Key id (`base64(sha256(SPKI))`) of the key that verified it. */
  readonly keyId?: string;
  /**
   * Who signed, for the threshold: `key:<keyId>` or `certificate:<issuer> <SAN>`. One signature has one
   * signer, however many authorities it satisfies.
   */
  readonly signer?: string;
  /** Certificate identity of a keyless signature. */
  readonly identity?: { readonly subjectAlternativeName?: string; readonly issuer?: string };
  /** Unix seconds from verified transparency-log evidence. */
  readonly integratedTime?: number;
  /** In-toto predicate type (bundles and attestations). */
  readonly predicateType?: string;
  /** The verified payload document (simple-signing `{critical, optional}` or in-toto statement). */
  readonly payload?: Readonly<Record<string, unknown>>;
}

export interface ArtifactVerification {
  readonly digest: string;
  readonly passed: boolean;
  /** Distinct authorities with at least one passing signature. */
  readonly authoritiesPassed: string[];
  /**
   * Distinct signers counted toward the threshold: each matched to its own authority, so two authorities
   * listing one key, or one signer satisfying two authorities, count once.
   */
  readonly signersCounted?: number;
  readonly signatures: SignatureCheck[];
  /** Distinct reasons from {@link FAILURE_REASONS}; empty when passed. */
  readonly reasons: string[];
  /** Required attestation predicate types that no authority's attestation satisfied. */
  readonly attestationsMissing?: string[];
}
