/** Byte layouts of the registry objects cosign writes (ggcr key order), for our signer. */
import { goJson } from '../oci/index.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** `{}`: the empty config of artifact manifests. */
export const EMPTY_CONFIG_BYTES = Buffer.from('{}', 'utf8');
export const EMPTY_CONFIG_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * The config blob of a signature image with these layer diff ids (cosign-signatures.md §2.2): what ggcr's
 * `mutate.Append` produces from the empty image, one empty history entry per layer. One layer ⇒ 233 bytes.
 */
export function signatureConfigBytes(diffIds: readonly string[]): Buffer {
  const config = {
    architecture: '',
    created: ZERO_TIME,
    history: diffIds.map(() => ({ created: ZERO_TIME })),
    os: '',
    rootfs: { type: 'layers', diff_ids: diffIds },
    config: {},
  };
  return Buffer.from(goJson(config), 'utf8');
}
