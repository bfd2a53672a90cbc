import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PromoteError } from '../errors.js';
import { encodeBase64, sha256 } from './encoding.js';

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'rsa' | 'ed25519';

/** A public key that signatures are checked against. */
export interface VerificationKey {
  readonly key: KeyObject;
  readonly algorithm: KeyAlgorithm;
  /** DER SubjectPublicKeyInfo: what tlog bodies and key ids are compared with. */
  readonly spki: Buffer;
  /** `base64(sha256(SPKI DER))`, cosign's key hint in sigstore bundles. */
  readonly keyId: string;
  /** Where the key came from (file path or `inline`), for messages. */
  readonly source: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/g;

export interface PemBlock {
  readonly type: string;
  readonly der: Buffer<ArrayBuffer>;
}

/** Every PEM block in `text` (type and DER); garbage between blocks is ignored, a bad body is refused. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const body = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) continue;
    out.push({ type: m[1] ?? '', der: Buffer.from(body, 'base64') });
  }
  return out;
}

export function toPem(type: string, der: Uint8Array): string {
  const b64 = encodeBase64(der);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

/**
 * Parses a PEM public key: `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1), ECDSA P-256/384/521, RSA or
 * Ed25519. Anything else is `KEY_INVALID` naming `source`.
 */
export function parsePublicKey(pem: string | Buffer, source: string): VerificationKey {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const blocks = pemBlocks(text).filter((b) => b.type === 'PUBLIC KEY' || b.type === 'RSA PUBLIC KEY');
  const block = blocks[0];
  if (block === undefined) {
    throw new PromoteError('KEY_INVALID', `${source}: no PEM "PUBLIC KEY" or "RSA PUBLIC KEY" block found`);
  }
  if (blocks.length > 1) throw new PromoteError('KEY_INVALID', `${source}: more than one public key in the file`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.der, format: 'der', type: block.type === 'PUBLIC KEY' ? 'spki' : 'pkcs1' });
  } catch (e) {
    throw new PromoteError('KEY_INVALID', `${source}: not a valid public key (${(e as Error).message})`, { cause: e });
  }
  return fromKeyObject(key, source);
}

/** Wraps a Node `KeyObject` (public, or the public half of a private key). */
export function fromKeyObject(keyObject: KeyObject, source: string): VerificationKey {
  const key = keyObject.type === 'private' ? createPublicKey(keyObject) : keyObject;
  const algorithm = algorithmOf(key, source);
  const spki = key.export({ format: 'der', type: 'spki' });
  return { key, algorithm, spki, keyId: encodeBase64(sha256(spki)), source };
}

function algorithmOf(key: KeyObject, source: string): KeyAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'ecdsa-p256';
      if (curve === 'secp384r1') return 'ecdsa-p384';
      if (curve === 'secp521r1') return 'ecdsa-p521';
      throw new PromoteError('KEY_INVALID', `${source}: unsupported elliptic curve ${curve ?? 'unknown'}`);
    }
    case 'rsa':
      return 'rsa';
    case 'ed25519':
      return 'ed25519';
    default:
      throw new PromoteError('KEY_INVALID', `${source}: unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

/** Reads and parses a PEM public key file; a missing or unreadable file is `KEY_INVALID` naming it. */
export async function loadPublicKey(path: string): Promise<VerificationKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new PromoteError('KEY_INVALID', `${path}: cannot read the public key (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return parsePublicKey(text, path);
}
