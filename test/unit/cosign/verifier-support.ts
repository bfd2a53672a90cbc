/** What the signature verifier's unit tests share: a repository, fresh keys, digests and policies. */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { loadPolicy, parsePrivateKey, type Policy, type PolicyDocument, type SigningKey } from '../../../src/cosign/index.js';
import { signatureConfigBytes } from '../../../src/cosign/signature-image.js';
import { serializeImageManifest } from '../../../src/oci/index.js';
import { FIXTURE_DIR } from './fixture-files.js';
import type { MemoryRegistry } from './memory-registry.js';

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

/**
 * Plants a `.att` image on `attachedTo` (a digest) with one DSSE envelope signed by `key`, as cosign's legacy
 * attest writes it; its in-toto statement names `statementSubjectHex` (the attached digest's hex, unless a test
 * wants a statement about something else).
 */
export function plantAttestation(reg: MemoryRegistry, key: SigningKey, options: { attachedTo: string; statementSubjectHex?: string; predicateType: string }): void {
  const { attachedTo, predicateType } = options;
  const subjectHex = options.statementSubjectHex ?? attachedTo.slice(7);
  const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'x', digest: { sha256: subjectHex } }], predicateType, predicate: {} }));
  const type = 'application/vnd.in-toto+json';
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `), statement]);
  const env = Buffer.from(JSON.stringify({ payloadType: type, payload: statement.toString('base64'), signatures: [{ keyid: '', sig: sign('sha256', pae, key.privateKey).toString('base64') }] }));
  const d = digestOf(env);
  reg.plantBlob(repo, d, env);
  const config = signatureConfigBytes([d]);
  reg.plantBlob(repo, digestOf(config), config);
  const m = serializeImageManifest({ mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: digestOf(config) }, layers: [{ mediaType: 'application/vnd.dsse.envelope.v1+json', size: env.length, digest: d, annotations: { [SIG]: '', predicateType } }] });
  reg.plantManifest(repo, OCI_MANIFEST, m, `sha256-${attachedTo.slice(7)}.att`);
}
