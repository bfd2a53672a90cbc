/** Reads the cosign interop fixtures (test/fixtures/cosign, copied byte for byte from ../shared/fixtures/cosign). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/cosign/', import.meta.url));
export const SHARED_FIXTURE_DIR = '/work/shared/fixtures/cosign';

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
