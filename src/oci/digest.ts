import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { PromoteError } from '../errors.js';

const SHA256 = /^sha256:[a-f0-9]{64}$/;
/** OCI digest grammar: `algorithm ":" encoded`; used to tell "another algorithm" from "garbage". */
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** `sha256:<64 lowercase hex>` of the bytes. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isSha256Digest(s: string): boolean {
  return SHA256.test(s);
}

/**
 * Validates a digest: other well-formed algorithms are UNSUPPORTED_DIGEST, anything else `invalidCode`.
 * `what` names where the digest came from, for the message.
 */
export function checkDigest(
  digest: string,
  what: string,
  invalidCode: 'INVALID_REFERENCE' | 'MANIFEST_INVALID' | 'INVALID_ARGUMENT' = 'INVALID_ARGUMENT',
): string {
  if (SHA256.test(digest)) return digest;
  if (ANY_DIGEST.test(digest) && !digest.startsWith('sha256:')) {
    throw new PromoteError('UNSUPPORTED_DIGEST', `${what}: digest "${digest}" uses an unsupported algorithm (only sha256 is supported)`);
  }
  throw new PromoteError(invalidCode, `${what}: "${digest}" is not a valid digest (expected sha256: followed by 64 lowercase hex characters)`);
}

/**
 * A pass-through stream that hashes and counts bytes and fails with DIGEST_MISMATCH when they do not match.
 *
 * It holds back the most recent chunk until the next one arrives, and releases the last one only after the
 * digest and size are known to be right. A PUT fed by this stream therefore never delivers its final bytes
 * when the content is wrong, so a registry can never commit it (a registry verifies on PUT too, but we
 * want to stop earlier and with a clear error).
 */
export class DigestVerifier extends Transform {
  readonly #expected: { digest: string; size: number };
  readonly #what: string;
  readonly #hash = createHash('sha256');
  #bytes = 0;
  #held: Buffer | undefined;
  /** The mismatch error, kept so that callers can tell it apart from the errors it causes downstream. */
  failure: PromoteError | undefined;

  /** `what` names the blob's repository for messages, e.g. `127.0.0.1:5000/team/app`. */
  constructor(expected: { digest: string; size: number }, what: string) {
    super();
    this.#expected = expected;
    this.#what = what;
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#bytes += chunk.length;
    this.#hash.update(chunk);
    if (this.#bytes > this.#expected.size) {
      done(this.#fail(`got more than the expected ${this.#expected.size} bytes`));
      return;
    }
    const previous = this.#held;
    this.#held = chunk;
    if (previous) this.push(previous);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.#bytes !== this.#expected.size) {
      done(this.#fail(`got ${this.#bytes} bytes, expected ${this.#expected.size}`));
      return;
    }
    const actual = `sha256:${this.#hash.digest('hex')}`;
    if (actual !== this.#expected.digest) {
      done(this.#fail(`content hashes to ${actual}`));
      return;
    }
    if (this.#held) this.push(this.#held);
    this.#held = undefined;
    done();
  }

  #fail(why: string): PromoteError {
    this.#held = undefined;
    this.failure = new PromoteError('DIGEST_MISMATCH', `blob ${this.#expected.digest} from ${this.#what}: ${why}`);
    return this.failure;
  }
}
