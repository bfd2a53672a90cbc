/** Reads the cosign interop fixtures in test/fixtures/cosign (byte-for-byte upstream copies; see its README). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/cosign/', import.meta.url));

/**
 * sha256 of every fixture file, pinned when they were copied from upstream (and checked then against the team's
 * shared copy). The checkout is the only source: a test compares the directory with this list, so an edited,
 * added or missing fixture fails instead of being skipped.
 */
export const FIXTURE_SHA256: Readonly<Record<string, string>> = {
  'ci-cosign.pub': 'fa7f35cb9d779673cfee9ffeecaf686b4ef98b5a11046432e835fdaab4692a66',
  'ci-cosign2.pub': 'adc47e3e1e84cff4e32fb399c249b667ccf5c342c3cc4a466d4572014846abbe',
  'ci-dir-img-cosign-key-rekor-valid.manifest.json': '0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a',
  'ci-dir-img-cosign-key-rekor-valid.signature-1': 'f6396d9cb70149bc80bf3eae02a6258e3ef5fc699dc28955970e42ae47be5fb2',
  'ci-dir-img-cosign-valid.manifest.json': '634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00',
  'ci-dir-img-cosign-valid.signature-1': '19e5549e4c924de371d370c34217038c60f58df5c987f578677cdea9008c249b',
  'ci-rekor.pub': 'dce5ef715502ec9f3cdfd11f8cc384b31a6141023d3e7595e9908a81cb6241bd',
  'cosign-keys_test.sigstore-hello.key': 'e56ddb63d0eeb0ff22278d74c44f4aaa695cf20a2bd9bdbe7a3556b5ba05c51e',
  'cosign-oci-attestation.sigstore.json': 'a6c1fc36d2a9d6c7844bdb3caf052947fc48b4360e421d637d4647db40d4f9b0',
  'cosign-trusted_root_pgi.json': 'f44a1b88128e55ebfb62189becbc0fa48d4ec9915c65ac54ba0e46a008b12d5b',
};

export function fixture(name: string): Buffer {
  return readFileSync(`${FIXTURE_DIR}${name}`);
}

export function fixtureText(name: string): string {
  return fixture(name).toString('utf8');
}

export interface SigstoreJsonLayer {
  readonly mimeType: string;
  readonly payload: Buffer;
  readonly annotations: Record<string, string>;
}

const PREFIX = '\x00sigstore-json\n';

/** A containers/image "sigstore-json" signature file: one cosign `.sig` layer. */
export function sigstoreJsonLayer(name: string): SigstoreJsonLayer {
  const bytes = fixture(name);
  if (bytes.subarray(0, PREFIX.length).toString('latin1') !== PREFIX) throw new Error(`${name}: not a sigstore-json file`);
  const doc = JSON.parse(bytes.subarray(PREFIX.length).toString('utf8')) as { mimeType: string; payload: string; annotations: Record<string, string> };
  return { mimeType: doc.mimeType, payload: Buffer.from(doc.payload, 'base64'), annotations: doc.annotations };
}
