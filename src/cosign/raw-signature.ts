import { sign, verify, type KeyObject } from 'node:crypto';
import { PromoteError } from '../errors.js';
import type { VerificationKey } from './public-key.js';

/**
 * Checks a raw signature over `data` the way cosign's released verifiers do: SHA-256 for every key type
 * except Ed25519 (pure Ed25519); ECDSA as ASN.1 DER first, then IEEE-P1363 `r‖s` (sigstore's ECDSA
 * verifier falls back the same way); RSA PKCS#1 v1.5. Never throws on malformed signatures.
 */
export function verifyRawSignature(key: VerificationKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (key.algorithm) {
      case 'ed25519':
        return verify(null, data, key.key, signature);
      case 'rsa':
        return verify('sha256', data, { key: key.key, padding: 1 /* RSA_PKCS1_PADDING */ }, signature);
      default: {
        if (safeVerify('sha256', data, key.key, signature, 'der')) return true;
        return signature.length === p1363Length(key.algorithm) && safeVerify('sha256', data, key.key, signature, 'ieee-p1363');
      }
    }
  } catch {
    return false;
  }
}

function safeVerify(alg: string, data: Uint8Array, key: KeyObject, sig: Uint8Array, dsaEncoding: 'der' | 'ieee-p1363'): boolean {
  try {
    return verify(alg, data, { key, dsaEncoding }, sig);
  } catch {
    return false;
  }
}

function p1363Length(algorithm: VerificationKey['algorithm']): number {
  if (algorithm === 'ecdsa-p256') return 64;
  if (algorithm === 'ecdsa-p384') return 96;
  return 132;
}

/**
 * Signs like cosign with a key we accept for signing: ECDSA P-256 (SHA-256, DER) or RSA (PKCS#1 v1.5,
 * SHA-256). Other curves and Ed25519 are refused: cosign ≥ 2.6 hashes them differently from what
 * released verifiers expect (cosign-signatures.md §7.3), so such a signature would not verify everywhere.
 */
export function signRaw(privateKey: KeyObject, data: Uint8Array, source: string): Buffer {
  assertSigningKey(privateKey, source);
  return sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
}

export function assertSigningKey(privateKey: KeyObject, source: string): void {
  const t = privateKey.asymmetricKeyType;
  if (t === 'rsa') return;
  if (t === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') return;
  const what = t === 'ec' ? `ECDSA ${privateKey.asymmetricKeyDetails?.namedCurve ?? ''}`.trim() : (t ?? 'unknown');
  throw new PromoteError('KEY_INVALID', `${source}: ${what} keys cannot sign here; use ECDSA P-256 (or RSA), whose hash every cosign release agrees on`);
}
