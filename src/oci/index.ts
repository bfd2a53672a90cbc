// The only entry into src/oci. undici stays behind this line.
export type {
  BlobCopyOutcome,
  BlobSource,
  Descriptor,
  RawManifest,
  Reference,
  Registry,
  Repository,
  RequestStats,
} from './types.js';
export {
  DOCKER_HUB,
  formatReference,
  formatRepository,
  parseReference,
  parseRepository,
  withDigest,
  withTag,
} from './reference.js';
export { MANIFEST_ACCEPT, MediaTypes, bareMediaType, isImageManifest, isIndex, isNonDistributable } from './media-types.js';
export { parseManifest, type ImageManifest, type IndexManifest, type Manifest } from './manifest.js';
export { DigestVerifier, checkDigest, digestOf, isSha256Digest } from './digest.js';
export { anonymousKeychain, chainKeychains, registryKey, staticKeychain, type Credential, type Keychain } from './keychain.js';
export {
  DockerConfigKeychain,
  defaultDockerConfigPath,
  parseDockerConfig,
  readDockerConfig,
  runCredentialHelper,
  type DockerConfig,
  type DockerConfigKeychainOptions,
} from './docker-config.js';
export { parseAuthChallenge, repositoryScope, type AuthChallenge } from './auth-challenge.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy.js';
export {
  goJson, sortGoKeys, wireDescriptor, serializeImageManifest, serializeIndex, parseWireDescriptor, mergeReferrersIndex, type WireDescriptor,
} from './wire-format.js';
export {
  MAX_MANIFEST_BYTES,
  MAX_TAG_PAGES,
  MAX_REFERRER_PAGES,
  TAG_PAGE_SIZE,
  type ListTagsOptions,
  RegistryClient,
  type RegistryClientOptions,
  type RegistryObserver,
  type RequestEvent,
  type RequestFinishedEvent,
  type RetryEvent,
  type RetryReason,
} from './registry-client.js';
