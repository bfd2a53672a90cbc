import { createPrivateKey, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import nacl from 'tweetnacl';
import { PromoteError } from '../errors.js';
import { isRecord } from './encoding.js';
import { parseStrictJson } from './strict-json.js';
import { fromKeyObject, pemBlocks, toPem, type VerificationKey } from './public-key.js';

/** A private key that can sign, with its public half. */
export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: VerificationKey;
  readonly source: string;
}

/** The scrypt work factors cosign readers accept (r=8, p=1 only). */
export const SCRYPT_N_VALUES = [32768, 65536, 131072] as const;
export type ScryptN = (typeof SCRYPT_N_VALUES)[number];

/** cosign ≥ 2.2 writes 65536; cosign ≤ 2.1 writes and accepts only 32768. */
export const DEFAULT_SCRYPT_N: ScryptN = 65536;

export const SIGSTORE_PRIVATE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_PRIVATE_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';

const R = 8;
const P = 1;

/**
 * Reads a private key PEM: cosign's encrypted formats (`ENCRYPTED SIGSTORE PRIVATE KEY`,
 * `ENCRYPTED COSIGN PRIVATE KEY`: scrypt + NaCl secretbox over PKCS#8 DER) or a plain `PRIVATE KEY`,
 * `EC PRIVATE KEY` or `RSA PRIVATE KEY`. A wrong password is `KEY_DECRYPT_FAILED`; anything malformed
 * is `KEY_INVALID`, both naming `source`.
 */
export function parsePrivateKey(pem: string | Buffer, password: string, source: string): SigningKey {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const block = pemBlocks(text).find((b) => PRIVATE_TYPES.has(b.type));
  if (block === undefined) {
    throw new PromoteError('KEY_INVALID', `${source}: no private key PEM block (expected "${SIGSTORE_PRIVATE_KEY_PEM}", "${COSIGN_PRIVATE_KEY_PEM}", "PRIVATE KEY", "EC PRIVATE KEY" or "RSA PRIVATE KEY")`);
  }
  let privateKey: KeyObject;
  if (block.type === SIGSTORE_PRIVATE_KEY_PEM || block.type === COSIGN_PRIVATE_KEY_PEM) {
    const pkcs8 = decryptKeyEnvelope(block.der, password, source);
    privateKey = importDer(pkcs8, 'pkcs8', source);
  } else {
    privateKey = importDer(block.der, block.type === 'PRIVATE KEY' ? 'pkcs8' : block.type === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs1', source);
  }
  return { privateKey, publicKey: fromKeyObject(privateKey, source), source };
}

const PRIVATE_TYPES = new Set([SIGSTORE_PRIVATE_KEY_PEM, COSIGN_PRIVATE_KEY_PEM, 'PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY']);

function importDer(der: Buffer, type: 'pkcs8' | 'sec1' | 'pkcs1', source: string): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type });
  } catch (e) {
    throw new PromoteError('KEY_INVALID', `${source}: not a valid ${type} private key (${(e as Error).message})`, { cause: e });
  }
}

/** Reads a private key file; see {@link parsePrivateKey}. */
export async function loadPrivateKey(path: string, password: string): Promise<SigningKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new PromoteError('KEY_INVALID', `${path}: cannot read the private key (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return parsePrivateKey(text, password, path);
}

/** Decrypts the JSON envelope of go-securesystemslib `encrypted` (the PEM body) into the plaintext bytes. */
function decryptKeyEnvelope(body: Buffer, password: string, source: string): Buffer {
  const parsed = parseStrictJson(body.toString('utf8'));
  if (!parsed.ok) throw new PromoteError('KEY_INVALID', `${source}: the encrypted key is not JSON (${parsed.error})`);
  const env = parsed.value;
  const bad = (what: string): PromoteError => new PromoteError('KEY_INVALID', `${source}: encrypted key: ${what}`);
  if (!isRecord(env) || !isRecord(env['kdf']) || !isRecord(env['cipher'])) throw bad('missing "kdf" or "cipher"');
  const { kdf, cipher } = env as { kdf: Record<string, unknown>; cipher: Record<string, unknown> };
  if (kdf['name'] !== 'scrypt') throw bad(`unsupported kdf ${JSON.stringify(kdf['name'])}`);
  const params = kdf['params'];
  if (!isRecord(params)) throw bad('missing kdf.params');
  const n = params['N'];
  if (!SCRYPT_N_VALUES.includes(n as ScryptN)) throw bad(`scrypt N must be one of ${SCRYPT_N_VALUES.join(', ')}, got ${JSON.stringify(n)}`);
  if (params['r'] !== R || params['p'] !== P) throw bad(`scrypt r and p must be ${R} and ${P}`);
  if (cipher['name'] !== 'nacl/secretbox') throw bad(`unsupported cipher ${JSON.stringify(cipher['name'])}`);
  const salt = b64Field(kdf['salt'], 'kdf.salt', source);
  const nonce = b64Field(cipher['nonce'], 'cipher.nonce', source);
  const ciphertext = b64Field(env['ciphertext'], 'ciphertext', source);
  if (nonce.length !== nacl.secretbox.nonceLength) throw bad(`cipher.nonce must be ${nacl.secretbox.nonceLength} bytes`);
  const key = deriveKey(password, salt, n as ScryptN);
  const plain = nacl.secretbox.open(ciphertext, nonce, key);
  if (plain === null) throw new PromoteError('KEY_DECRYPT_FAILED', `${source}: wrong password (decryption failed)`);
  return Buffer.from(plain);
}

function b64Field(v: unknown, name: string, source: string): Uint8Array {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
    throw new PromoteError('KEY_INVALID', `${source}: encrypted key: ${name} must be a base64 string`);
  }
  return new Uint8Array(Buffer.from(v, 'base64'));
}

function deriveKey(password: string, salt: Uint8Array, n: ScryptN): Uint8Array {
  // The default maxmem (32 MiB) refuses N ≥ 32768 with r=8: scrypt needs 128·N·r bytes, plus slack.
  return new Uint8Array(scryptSync(Buffer.from(password, 'utf8'), salt, nacl.secretbox.keyLength, { N: n, r: R, p: P, maxmem: 256 * n * R }));
}

export interface EncryptOptions {
  /** scrypt work factor. @defaultValue 65536 (use 32768 for keys that cosign ≤ 2.1 must read) */
  scryptN?: ScryptN;
  /** PEM type. @defaultValue `ENCRYPTED SIGSTORE PRIVATE KEY` */
  pemType?: typeof SIGSTORE_PRIVATE_KEY_PEM | typeof COSIGN_PRIVATE_KEY_PEM;
}

/** Encrypts a private key into cosign's PEM format (PKCS#8 DER, scrypt, NaCl secretbox). */
export function encryptPrivateKey(privateKey: KeyObject, password: string, options: EncryptOptions = {}): string {
  const n = options.scryptN ?? DEFAULT_SCRYPT_N;
  if (!SCRYPT_N_VALUES.includes(n)) throw new PromoteError('INVALID_ARGUMENT', `scrypt N must be one of ${SCRYPT_N_VALUES.join(', ')}`);
  const salt = new Uint8Array(randomBytes(32));
  const nonce = new Uint8Array(randomBytes(nacl.secretbox.nonceLength));
  const pkcs8 = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }));
  const ciphertext = nacl.secretbox(pkcs8, nonce, deriveKey(password, salt, n));
  // Field order as go-securesystemslib writes it: kdf, cipher, ciphertext.
  const envelope = {
    kdf: { name: 'scrypt', params: { N: n, r: R, p: P }, salt: Buffer.from(salt).toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: Buffer.from(nonce).toString('base64') },
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  };
  return toPem(options.pemType ?? SIGSTORE_PRIVATE_KEY_PEM, Buffer.from(JSON.stringify(envelope), 'utf8'));
}
