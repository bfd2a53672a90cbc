/** Byte-level encodings shared by the signature code: lenient base64 and Go's JSON conventions. */
import { createHash } from 'node:crypto';

/**
 * Decodes standard base64 the way sigstore readers must: whitespace (real annotations carry `\n`
 * line breaks) is stripped; padding is optional; any other character, or a length that no base64
 * string can have, is refused. `Buffer.from(s, 'base64')` alone would skip invalid characters
 * silently, so a corrupted signature would be "decoded" into different bytes.
 */
export function decodeBase64Lenient(text: string): Buffer | undefined {
  const compact = text.replace(/[\s]+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  const unpadded = compact.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  if (compact.includes('=') && compact.length % 4 !== 0) return undefined;
  return Buffer.from(unpadded, 'base64');
}

/** Standard base64 with padding. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

export function sha256(bytes: Uint8Array | string): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Hex of a digest string `sha256:<hex>`, or `undefined` when it is not one. */
export function sha256HexOf(digest: string): string | undefined {
  return SHA256_DIGEST.exec(digest)?.[1];
}
