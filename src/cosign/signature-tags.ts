import { PromoteError } from '../errors.js';
import { sha256HexOf } from './encoding.js';

export type SignatureSuffix = 'sig' | 'att' | 'sbom';

/**
 * The tag cosign stores signatures, attestations or SBOMs of `digest` under, in the image's own
 * repository: `sha256:<hex>` → `sha256-<hex>.sig`. Only sha256 fits the 128-character tag limit.
 */
export function signatureTag(digest: string, suffix: SignatureSuffix): string {
  return `${referrersTag(digest)}.${suffix}`;
}

/** The OCI referrers fallback tag of `digest`: `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  const hex = sha256HexOf(digest);
  if (hex === undefined) throw new PromoteError('UNSUPPORTED_DIGEST', `${digest}: cosign signature tags exist only for sha256 digests`);
  return `sha256-${hex}`;
}
