import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { PromoteError } from '../../../src/errors.js';
import { DigestVerifier, checkDigest, digestOf, isSha256Digest } from '../../../src/oci/digest.js';

const HELLO = Buffer.from('hello, registry');
const HELLO_DIGEST = digestOf(HELLO);

/** Runs `chunks` through a verifier; returns what came out and how it ended. */
async function verify(chunks: readonly Buffer[], expected: { digest: string; size: number }) {
  const verifier = new DigestVerifier(expected, '127.0.0.1:5000/team/app');
  const out: Buffer[] = [];
  const error = await pipeline(Readable.from(chunks), verifier, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  }).then(
    () => undefined,
    (err: unknown) => err,
  );
  return { out: Buffer.concat(out), error, verifier };
}

describe('digests', () => {
  it('isSha256Digest accepts sha256 and 64 lowercase hex only', () => {
    expect(isSha256Digest(HELLO_DIGEST)).toBe(true);
    expect(isSha256Digest(HELLO_DIGEST.toUpperCase())).toBe(false);
    expect(isSha256Digest(`${HELLO_DIGEST}0`)).toBe(false);
    expect(isSha256Digest(`sha512:${'a'.repeat(128)}`)).toBe(false);
  });

  it('checkDigest returns a good digest, and names what is wrong with a bad one, with the code asked for', () => {
    expect(checkDigest(HELLO_DIGEST, 'images.yml')).toBe(HELLO_DIGEST);
    expect(() => checkDigest('sha256:nothex', 'images.yml')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'images.yml: "sha256:nothex" is not a valid digest (expected sha256: followed by 64 lowercase hex characters)' }),
    );
    expect(() => checkDigest('sha256:nothex', 'the manifest', 'MANIFEST_INVALID')).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
    expect(() => checkDigest(`sha512:${'a'.repeat(128)}`, 'the reference', 'INVALID_REFERENCE')).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_DIGEST', message: expect.stringContaining('uses an unsupported algorithm') }),
    );
  });
});

describe('DigestVerifier', () => {
  it('passes the bytes through unchanged when digest and size match, and counts them', async () => {
    const { out, error, verifier } = await verify([HELLO.subarray(0, 5), HELLO.subarray(5)], { digest: HELLO_DIGEST, size: HELLO.length });
    expect(error).toBeUndefined();
    expect(out.equals(HELLO)).toBe(true);
    expect(verifier.bytes).toBe(HELLO.length);
    expect(verifier.failure).toBeUndefined();
  });

  it('fails as soon as more bytes arrive than expected, and never releases the chunk held back', async () => {
    const { out, error, verifier } = await verify([HELLO.subarray(0, 5), HELLO.subarray(5), Buffer.from('!')], {
      digest: HELLO_DIGEST,
      size: HELLO.length,
    });
    expect(error).toBeInstanceOf(PromoteError);
    expect(error).toBe(verifier.failure);
    expect(error).toMatchObject({
      code: 'DIGEST_MISMATCH',
      message: `blob ${HELLO_DIGEST} from 127.0.0.1:5000/team/app: got more than the expected ${HELLO.length} bytes`,
    });
    expect(out.length).toBeLessThanOrEqual(5); // the second chunk was held back, and is never released
  });

  it('fails on fewer bytes than expected, naming both sizes', async () => {
    const { error } = await verify([HELLO.subarray(0, 5)], { digest: HELLO_DIGEST, size: HELLO.length });
    expect(error).toMatchObject({ code: 'DIGEST_MISMATCH', message: expect.stringMatching(new RegExp(`: got 5 bytes, expected ${HELLO.length}$`)) });
  });

  it('fails on the right size with other content, naming the digest it got, and holds back the last chunk', async () => {
    const other = Buffer.from('hello, REGISTRY');
    const { out, error } = await verify([other.subarray(0, 5), other.subarray(5)], { digest: HELLO_DIGEST, size: HELLO.length });
    expect(error).toMatchObject({ code: 'DIGEST_MISMATCH', message: expect.stringMatching(new RegExp(`: content hashes to ${digestOf(other)}$`)) });
    expect(out.length).toBeLessThanOrEqual(5); // the last chunk is never released
  });
});
