/**
 * The BundlePromotion resource as every part of the controller sees it, whichever carrier it came from
 * (the Kubernetes CRD or a YAML file in a GitOps directory). Plain data: no client library types.
 * The CRD's OpenAPI schema (crds/) is the validation of record; these types mirror it.
 */

export const API_GROUP = 'bundlepromoter.dev';
export const API_VERSION = 'v1alpha1';
export const KIND = 'BundlePromotion';
export const PLURAL = 'bundlepromotions';
/** Annotation whose new value forces a new job for an unchanged spec (like Flux's reconcile.fluxcd.io/requestedAt). */
export const REQUESTED_AT_ANNOTATION = `${API_GROUP}/requestedAt`;

/** A Secret or ConfigMap entry in the promotion's namespace. */
export interface KeyRef {
  readonly name: string;
  readonly key: string;
}

/** Where a PEM key (or a trusted-root JSON document) comes from: a Secret, a ConfigMap, or inline. */
export type KeySource =
  | { readonly secretRef: KeyRef }
  | { readonly configMapRef: KeyRef }
  | { readonly pem: string };

/** A `kubernetes.io/dockerconfigjson` Secret (key `.dockerconfigjson`) in the promotion's namespace. */
export interface Credentials {
  readonly secretRef: { readonly name: string };
}

export type TlogMode = 'require' | 'if-present' | 'ignore';

export interface AuthoritySpec {
  readonly name?: string;
  readonly keys?: readonly KeySource[];
  readonly keyless?: {
    readonly identity?: string;
    readonly identityRegExp?: string;
    readonly issuer?: string;
    readonly issuerRegExp?: string;
    readonly trustedRoot?: KeySource;
  };
  readonly tlog?: TlogMode;
  readonly trustedRoot?: KeySource;
  readonly rekorKeys?: readonly KeySource[];
}

/**
 * `spec.verify`: the policy document of `copy --policy FILE` (src/cosign/policy.ts `PolicyDocument`) with
 * key and trusted-root files replaced by references, plus where to verify.
 */
export interface VerifyRulesSpec {
  readonly authorities: readonly AuthoritySpec[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly threshold?: number;
}

export interface VerifySpec {
  /** Gate in the source before anything is written. @defaultValue true */
  readonly source?: boolean;
  /** Re-verify in the target before the bundle tag is written. @defaultValue true */
  readonly target?: boolean;
  readonly scope?: 'bundle' | 'all';
  /** Flat shorthand for `bundle` (exactly one of the two). */
  readonly annotations?: Readonly<Record<string, string>>;
  readonly threshold?: number;
  /** Flat shorthand for `bundle.authorities` (exactly one of `authorities` and `bundle`). */
  readonly authorities?: readonly AuthoritySpec[];
  /** Who must sign the bundle(s), and what. */
  readonly bundle?: VerifyRulesSpec;
  /** Rules for the images (`scope: all`), first `match` (repository glob) wins; an unmatched image fails. */
  readonly images?: readonly (VerifyRulesSpec & { readonly match: string })[];
  readonly attestations?: readonly { readonly predicateType: string }[];
  readonly dockerReference?: 'off' | 'exact' | 'repository' | { readonly match: 'off' | 'exact' | 'repository'; readonly reference?: string };
  readonly checkType?: boolean;
  readonly signaturePredicateTypes?: readonly string[];
}

export type IncludeKind = 'att' | 'sbom' | 'referrers';

export interface PromotionSpec {
  readonly source: {
    /** `registry/repo:tag` (followed) or `registry/repo@sha256:…` (pinned). Exactly one of bundle and fromPromotion. */
    readonly bundle?: string;
    /** Chain: promote what the named BundlePromotion (same namespace) last promoted. */
    readonly fromPromotion?: { readonly name: string };
    readonly credentials?: Credentials;
  };
  readonly target: {
    readonly repository: string;
    /** @defaultValue the source tag (for a chain: the upstream's target tags) */
    readonly tags?: readonly string[];
    readonly credentials?: Credentials;
  };
  readonly copy?: {
    /** @defaultValue true */
    readonly signatures?: boolean;
    readonly include?: readonly IncludeKind[];
    /** @defaultValue 8 */
    readonly concurrency?: number;
  };
  readonly verify?: VerifySpec;
  /** TLS and plain-HTTP settings for the registries this promotion talks to. */
  readonly registry?: {
    /** Hosts (`host[:port]`) spoken to over plain HTTP. */
    readonly insecure?: readonly string[];
    /** A PEM CA bundle trusted in addition to the system roots. */
    readonly ca?: KeySource;
  };
  /** Go-style duration: how often a followed tag is re-resolved and a failed promotion retried. @defaultValue '5m' */
  readonly interval?: string;
  /** @defaultValue false */
  readonly suspend?: boolean;
  /** Entries kept in `status.history`. @defaultValue 10 */
  readonly historyLimit?: number;
}

export interface PromotionRef {
  readonly namespace: string;
  readonly name: string;
}

export type ConditionType = 'Ready' | 'SourceResolved' | 'SourceVerified' | 'Copied' | 'TargetVerified';

export interface Condition {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  /** UpperCamelCase, from the engine's error codes (`VerificationFailed`, `RegistryUnauthorized`, …). */
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration: number;
}

export type Phase = 'Pending' | 'Queued' | 'Promoting' | 'Succeeded' | 'Failed' | 'Suspended';

export interface PromotionCounts {
  readonly images: number;
  readonly artifacts: number;
  readonly blobsUploaded: number;
  readonly blobsMounted: number;
  readonly blobsPresent: number;
  readonly bytes: number;
  readonly registryRequests: number;
}

export interface PromotionRecord {
  readonly digest: string;
  readonly source: string;
  readonly target: string;
  readonly tags: readonly string[];
  readonly generation: number;
  readonly jobId: string;
  readonly result: 'Succeeded' | 'Failed';
  readonly reason?: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly counts?: PromotionCounts;
}

export interface PromotionStatus {
  readonly observedGeneration?: number;
  readonly phase?: Phase;
  readonly conditions?: readonly Condition[];
  /** The digest the source resolved to at the last reconcile. */
  readonly sourceDigest?: string;
  /** The job carrying out the current (or last) attempt. */
  readonly jobId?: string;
  /** The `requestedAt` annotation value the current job answers. */
  readonly lastHandledRequestedAt?: string;
  /** The last job that finished (succeeded or failed). */
  readonly lastPromotion?: PromotionRecord;
  /** The digest and tags most recently promoted with success (what a chained promotion follows). */
  readonly promotedDigest?: string;
  readonly promotedTags?: readonly string[];
  /** Newest first, at most `spec.historyLimit`. */
  readonly history?: readonly PromotionRecord[];
}

export interface Promotion {
  readonly ref: PromotionRef;
  readonly uid: string;
  readonly generation: number;
  readonly spec: PromotionSpec;
  /** Value of the `bundlepromoter.dev/requestedAt` annotation. */
  readonly requestedAt?: string;
  readonly status?: PromotionStatus;
  /** Set while the object is being deleted. */
  readonly deleting?: boolean;
}

export function promotionKey(ref: PromotionRef): string {
  return `${ref.namespace}/${ref.name}`;
}
