/** What the signature verifier's unit tests share: a repository, fresh keys, digests and policies. */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { loadPolicy, parsePrivateKey, type Policy, type PolicyDocument, type SigningKey } from '../../../src/cosign/index.js';
import { FIXTURE_DIR } from './fixture-files.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const SIG = 'dev.cosignproject.cosign/signature';
export const repo = { registry: 'registry.example.com', repository: 'team/app' };

export const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A P-256 signing key and its public PEM. */
export function newKey(): { key: SigningKey; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = parsePrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, '', 'test.key');
  return { key, pem: publicKey.export({ format: 'pem', type: 'spki' }) as string };
}

/**
 * A policy relative to the fixtures. Key authorities that say nothing of the log get `tlog: ignore`: these
 * keys sign without a transparency log, and the policy must say so (tlog defaults to require).
 */
export function policyFor(doc: Partial<PolicyDocument> & { authorities: PolicyDocument['authorities'] }): Promise<Policy> {
  const authorities = (doc.authorities ?? []).map((a) => (a.tlog !== undefined || a.trustedRoot !== undefined || a.rekorKeys !== undefined || a.keyless !== undefined ? a : { ...a, tlog: 'ignore' as const }));
  return loadPolicy({ ...doc, authorities }, { baseDir: FIXTURE_DIR });
}
