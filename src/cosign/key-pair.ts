import { generateKeyPairSync } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { PromoteError } from '../errors.js';
import { encryptPrivateKey, type ScryptN } from './private-key.js';
import { fromKeyObject, toPem } from './public-key.js';

export interface KeyPairOptions {
  /** scrypt work factor of the private key. @defaultValue 65536 (32768 for cosign ≤ 2.1 interop) */
  scryptN?: ScryptN;
  /**
   * When set, writes `<prefix>.key` (mode 0600) and `<prefix>.pub`; existing files are never overwritten.
   * @defaultValue undefined (nothing written)
   */
  outputKeyPrefix?: string;
}

export interface KeyPair {
  /** `ENCRYPTED SIGSTORE PRIVATE KEY` PEM. */
  readonly privateKeyPem: string;
  /** `PUBLIC KEY` PEM. */
  readonly publicKeyPem: string;
  /** `base64(sha256(SPKI DER))`. */
  readonly keyId: string;
  /** Paths written, when `outputKeyPrefix` was given. */
  readonly files?: { privateKey: string; publicKey: string };
}

/** Generates an ECDSA P-256 key pair in cosign's file formats, like `cosign generate-key-pair`. */
export async function generateKeyPair(password: string, options: KeyPairOptions = {}): Promise<KeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privateKeyPem = encryptPrivateKey(privateKey, password, options.scryptN === undefined ? {} : { scryptN: options.scryptN });
  const publicKeyPem = toPem('PUBLIC KEY', publicKey.export({ format: 'der', type: 'spki' }));
  const { keyId } = fromKeyObject(publicKey, 'generated');
  if (options.outputKeyPrefix === undefined) return { privateKeyPem, publicKeyPem, keyId };
  const files = { privateKey: `${options.outputKeyPrefix}.key`, publicKey: `${options.outputKeyPrefix}.pub` };
  await writeNew(files.privateKey, privateKeyPem, 0o600);
  try {
    await writeNew(files.publicKey, publicKeyPem, 0o644);
  } catch (e) {
    await unlink(files.privateKey).catch(() => undefined);
    throw e;
  }
  return { privateKeyPem, publicKeyPem, keyId, files };
}

/** Creates `path` exclusively with `mode` (applied at creation, so the key is never world-readable). */
async function writeNew(path: string, text: string, mode: number): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'wx', mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new PromoteError('INVALID_ARGUMENT', `${path} already exists; refusing to overwrite a key`, { cause: e });
    throw new PromoteError('INVALID_ARGUMENT', `${path}: cannot create (${code ?? (e as Error).message})`, { cause: e });
  }
  try {
    await handle.chmod(mode); // the umask may have narrowed or (never) widened it; make it exact
    await handle.writeFile(text, 'utf8');
  } finally {
    await handle.close();
  }
}
