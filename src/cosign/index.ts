/**
 * cosign signatures: keys, policies, verification (legacy `.sig`/`.att` images and sigstore bundle
 * referrers) and signing. The only entry to this folder; @sigstore/* and tweetnacl stay behind it.
 */
export { SignatureVerifier, DEFAULT_LIMITS, type SignatureVerifierDeps, type VerificationLimits, type VerificationSubject } from './signature-verifier.js';
export { FAILURE_REASONS, LIMIT_CODES, type ArtifactVerification, type FailureReason, type LimitCode, type SignatureCheck, type SignatureFormat } from './verification-result.js';
export { loadPolicy, rulesFor, DEFAULT_TLOG_MODE, TLOG_MODES, type Authority, type AuthorityDocument, type ImageRules, type SubjectRules, type SubjectRulesDocument, type DockerReferenceMatch, type KeylessIdentity, type LoadPolicyOptions, type Policy, type PolicyDocument, type TlogMode } from './policy.js';
export { ImageSigner, type ImageSignerDeps, type SignOptions, type SignResult } from './image-signer.js';
export { loadPublicKey, parsePublicKey, type KeyAlgorithm, type VerificationKey } from './public-key.js';
export {
  COSIGN_PRIVATE_KEY_PEM,
  DEFAULT_SCRYPT_N,
  encryptPrivateKey,
  loadPrivateKey,
  parsePrivateKey,
  SCRYPT_N_VALUES,
  SIGSTORE_PRIVATE_KEY_PEM,
  type EncryptOptions,
  type ScryptN,
  type SigningKey,
} from './private-key.js';
export { generateKeyPair, type KeyPair, type KeyPairOptions } from './key-pair.js';
export { loadTrustRoot, parseTrustRoot, rekorKeyTrustRoot, type TrustRoot } from './trust-root.js';
export { parseAnnotationFlags } from './annotations.js';
export { referrersTag, signatureTag, type SignatureSuffix } from './signature-tags.js';
export { serializeSimpleSigningPayload, SIMPLE_SIGNING_MEDIA_TYPE, type SimpleSigningInput } from './simple-signing.js';
export { verifyAttestationLayer, verifyBundleBlob, verifySimpleSigningLayer, type SignatureVerdict, type SubjectContext } from './signature-checks.js';
export { COSIGN_SIGN_PREDICATE } from './in-toto.js';
export { CODE_SIGNING_EKU, matchKeylessIdentity, type IdentityMatch } from './certificate-identity.js';
