import { isPromoteError, type PromoteError } from '../../src/errors.js';

/** The PromoteError `fn` throws (tests assert its code and message); anything else, or nothing, fails the test. */
export function failureOf(fn: () => unknown): PromoteError {
  try {
    fn();
  } catch (err) {
    if (isPromoteError(err)) return err;
    throw err;
  }
  throw new Error('expected a PromoteError, but nothing was thrown');
}

/** The PromoteError `promise` rejects with; anything else, or success, fails the test. */
export async function rejectionOf(promise: Promise<unknown>): Promise<PromoteError> {
  const err = await promise.then(() => undefined, (e: unknown) => e ?? new Error('rejected with nothing'));
  if (err === undefined) throw new Error('expected a PromoteError, but the promise resolved');
  if (isPromoteError(err)) return err;
  throw err;
}
