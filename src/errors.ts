/**
 * The one catalogue of error codes. Callers branch on `code`, never on a message.
 * `retryable` errors may succeed when the same operation is repeated later (network, throttling, 5xx);
 * `permanent` ones will fail the same way until the input or the configuration changes.
 */
export const CODES = {
  // input and configuration
  INVALID_REFERENCE: 'permanent',
  INVALID_ARGUMENT: 'permanent',
  INVALID_CONFIG: 'permanent',
  // registry transport
  REGISTRY_UNAVAILABLE: 'retryable', // network error, connection reset, 5xx
  REGISTRY_THROTTLED: 'retryable', // 429
  REGISTRY_TIMEOUT: 'retryable', // 408, headers/body timeout
  REGISTRY_UNAUTHORIZED: 'permanent', // 401 after a fresh token / with the given credentials
  REGISTRY_DENIED: 'permanent', // 403
  REGISTRY_REJECTED: 'permanent', // other 4xx answers to a well-formed request
  REGISTRY_PROTOCOL: 'permanent', // an answer that breaks the distribution spec
  CREDENTIAL_HELPER_FAILED: 'permanent',
  TLS_CONFIG: 'permanent',
  // content
  MANIFEST_NOT_FOUND: 'permanent',
  BLOB_NOT_FOUND: 'permanent',
  MANIFEST_TOO_LARGE: 'permanent',
  MANIFEST_INVALID: 'permanent',
  UNSUPPORTED_MEDIA_TYPE: 'permanent',
  DIGEST_MISMATCH: 'permanent',
  UNSUPPORTED_DIGEST: 'permanent',
  // imgpkg bundles
  NOT_A_BUNDLE: 'permanent',
  BUNDLE_INVALID: 'permanent',
  IMAGES_LOCK_INVALID: 'permanent',
  BUNDLE_LAYER_UNSAFE: 'permanent', // path traversal, too many entries, decompression bomb
  BUNDLE_TOO_DEEP: 'permanent',
  // signatures
  KEY_INVALID: 'permanent',
  KEY_DECRYPT_FAILED: 'permanent',
  POLICY_INVALID: 'permanent',
  SIGNATURE_INVALID: 'permanent',
  VERIFICATION_FAILED: 'permanent',
  // lifecycle
  ABORTED: 'permanent',
  // appended
  BLOB_TOO_LARGE: 'permanent', // a blob read into memory exceeds the caller's limit
  // controller
  SECRET_NOT_FOUND: 'permanent', // a Secret or ConfigMap (or its key) a promotion references is missing
  UPSTREAM_NOT_READY: 'retryable', // a chained promotion's upstream has promoted nothing yet
  PROMOTION_INVALID: 'permanent', // a promotion document the schema or the engine refuses
  // registry (appended)
  TAG_IMMUTABLE: 'permanent', // an immutable tag (ECR) already names a different digest
  REPOSITORY_NOT_FOUND: 'permanent', // an upload into a repository the registry does not create on push (ECR NAME_UNKNOWN)
} as const;

export type ErrorCode = keyof typeof CODES;

export class PromoteError extends Error {
  override readonly name = 'PromoteError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Retry-After in milliseconds when the registry named one (429/503). */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super(message, options);
    this.code = code;
    this.retryable = CODES[code] === 'retryable';
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export function isPromoteError(e: unknown, code?: ErrorCode): e is PromoteError {
  return e instanceof PromoteError && (code === undefined || e.code === code);
}

/** Turns an abort into our error so that callers see one shape; keeps everything else as is. */
export function asAbort(signal: AbortSignal | undefined): PromoteError | undefined {
  if (!signal?.aborted) return undefined;
  return new PromoteError('ABORTED', 'the operation was cancelled', { cause: signal.reason });
}
