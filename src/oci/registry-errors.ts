import { PromoteError, asAbort, isPromoteError, type ErrorCode } from '../errors.js';

/** What a failed request was about; every message names it. Never holds headers or credentials. */
export interface RequestSubject {
  readonly method: string;
  readonly registry: string;
  readonly repository?: string;
  /** `manifest 127.0.0.1:5000/app:1`, `blob sha256:… in 127.0.0.1:5000/app`. */
  readonly what: string;
  /** The code for a 404; REGISTRY_REJECTED when not given. */
  readonly notFound?: ErrorCode;
}

/** 408, 429 and 5xx other than "not implemented" / "version not supported" are worth another try. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Distribution error codes in a response body (`{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`). */
export function distributionErrorCodes(text: string): string[] {
  return parseErrors(text)?.map((e) => e.code) ?? [];
}

/** A short reason from an error body: the distribution `errors` list, else the start of the text. */
export function describeErrorBody(text: string): string {
  const errors = parseErrors(text);
  if (errors) {
    return errors
      .map((e) => {
        const detail = e.detail === undefined || e.detail === null ? '' : ` (${truncate(typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail), 200)})`;
        return `${e.code}: ${e.message}${detail}`;
      })
      .join('; ');
  }
  return truncate(text.trim().replace(/\s+/g, ' '), 200);
}

export function errorForStatus(status: number, bodyText: string, subject: RequestSubject, retryAfterMs?: number): PromoteError {
  const reason = describeErrorBody(bodyText);
  const tail = reason ? `: ${reason}` : '';
  const repo = subject.repository === undefined ? '' : ` repository ${subject.repository}`;
  const options = retryAfterMs === undefined ? undefined : { retryAfterMs };
  switch (true) {
    case status === 401:
      return new PromoteError('REGISTRY_UNAUTHORIZED', `registry ${subject.registry} refused authentication for${repo || ' the request'} (${subject.method} ${subject.what})${tail}`);
    case status === 403:
      return new PromoteError('REGISTRY_DENIED', `registry ${subject.registry} denied access to${repo || ' the request'} (${subject.method} ${subject.what})${tail}`);
    case status === 404:
      return new PromoteError(subject.notFound ?? 'REGISTRY_REJECTED', `${subject.what} not found (${subject.method} answered 404)${tail}`);
    case status === 408:
      return new PromoteError('REGISTRY_TIMEOUT', `${subject.method} ${subject.what}: registry ${subject.registry} answered 408${tail}`, options);
    case status === 429:
      return new PromoteError('REGISTRY_THROTTLED', `${subject.method} ${subject.what}: registry ${subject.registry} is throttling (429)${retryAfterMs === undefined ? '' : `, retry after ${Math.ceil(retryAfterMs / 1000)} s`}${tail}`, options);
    case status >= 500:
      return new PromoteError('REGISTRY_UNAVAILABLE', `${subject.method} ${subject.what}: registry ${subject.registry} answered ${status}${tail}`, options);
    case status >= 400:
      return new PromoteError('REGISTRY_REJECTED', `${subject.method} ${subject.what}: registry ${subject.registry} answered ${status}${tail}`);
    default:
      return new PromoteError('REGISTRY_PROTOCOL', `${subject.method} ${subject.what}: registry ${subject.registry} answered an unexpected ${status}${tail}`);
  }
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
/** Failures where the same request may well succeed a moment later. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
  ...TIMEOUT_CODES,
]);

function codeOf(e: unknown): string | undefined {
  let current: unknown = e;
  // undici wraps system errors (`SocketError` with a `cause`); look a few levels down.
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_ABORTED') return code;
    current = current.cause;
  }
  return undefined;
}

/** Network-level failure → catalogue error; `transient` says whether to retry within the request. */
export function errorForNetwork(e: unknown, subject: RequestSubject, signal?: AbortSignal): { error: PromoteError; transient: boolean } {
  const aborted = asAbort(signal);
  if (aborted) return { error: aborted, transient: false };
  if (isPromoteError(e)) return { error: e, transient: false };
  const code = codeOf(e);
  const message = e instanceof Error ? e.message : String(e);
  const at = `${subject.method} ${subject.what}`;
  if (code !== undefined && TLS_CODES.has(code)) {
    // The remedy names the settings of both front ends (CLI flags, BundlePromotion fields) as text only:
    // oci imports neither, and whoever reads the message finds the knob it means.
    return {
      error: new PromoteError('TLS_CONFIG', `${at}: TLS with registry ${subject.registry} failed (${code}); trust its CA (CLI --registry-ca-cert-path FILE, BundlePromotion spec.registry.ca), or if it speaks plain HTTP mark it insecure (--registry-insecure ${subject.registry}, spec.registry.insecure)`, { cause: e }),
      transient: false,
    };
  }
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return { error: new PromoteError('REGISTRY_TIMEOUT', `${at}: registry ${subject.registry} timed out (${code})`, { cause: e }), transient: true };
  }
  return {
    error: new PromoteError('REGISTRY_UNAVAILABLE', `${at}: cannot reach registry ${subject.registry}: ${message}${code ? ` (${code})` : ''}`, { cause: e }),
    transient: code !== undefined && TRANSIENT_CODES.has(code),
  };
}

interface DistributionError {
  code: string;
  message: string;
  detail?: unknown;
}

function parseErrors(text: string): DistributionError[] | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const json = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(json.errors) || json.errors.length === 0) return undefined;
    return json.errors.map((e: { code?: unknown; message?: unknown; detail?: unknown }) => ({
      code: typeof e?.code === 'string' ? e.code : 'UNKNOWN',
      message: typeof e?.message === 'string' ? e.message : '',
      detail: e?.detail,
    }));
  } catch {
    return undefined;
  }
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
