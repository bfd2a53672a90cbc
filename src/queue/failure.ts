import { CODES, isPromoteError, type ErrorCode } from '../errors.js';
import type { JobFailure } from './job-queue.js';

/** The code of a failure that is not a `PromoteError` (a bug, or a library error nobody wrapped). */
export const INTERNAL = 'INTERNAL';

/** `signal.reason` of a job aborted because its worker stops; the job runs again elsewhere. */
export const STOP_REASON = 'the worker is stopping; the job will run again';
/** `signal.reason` of a job aborted because its promotion was dropped; the job fails with `ABORTED`. */
export const DROP_REASON = 'the promotion was dropped';

/** What a failed attempt means for the job. */
export interface ClassifiedFailure {
  readonly code: ErrorCode | typeof INTERNAL;
  readonly message: string;
  /** Whether another attempt may succeed. */
  readonly retryable: boolean;
}

/**
 * Classifies what a handler threw. A `PromoteError` keeps its code, message and class; anything else is
 * `INTERNAL` and retryable, and only its class name is kept.
 *
 * Decision (docs/jobs.md#failures): an unknown error is retried like a transient one. It is usually an unwrapped
 * network error; if it is a bug, the job fails after `attempts`, which costs a few runs and loses nothing.
 * Its message is not stored: the failure goes to Redis and to the promotion's status, and a message nobody wrote
 * for that (a library's, with a URL or a header in it) may carry a credential. The adapter logs it instead.
 */
export function classifyFailure(error: unknown): ClassifiedFailure {
  if (isPromoteError(error)) return { code: error.code, message: error.message, retryable: error.retryable };
  return { code: INTERNAL, message: `unexpected ${errorName(error)} (details in the worker log)`, retryable: true };
}

/** What the worker log may say about an error that is not a `PromoteError`. */
export function describeUnexpected(error: unknown): { readonly name: string; readonly message: string } {
  return { name: errorName(error), message: error instanceof Error ? error.message : String(error) };
}

function errorName(error: unknown): string {
  if (error instanceof Error) return error.name;
  return error === null ? 'null' : typeof error;
}

/** `[CODE] message`: the one text stored as a job's failure reason (BullMQ keeps only a message). */
export function encodeFailure(failure: { readonly code: string; readonly message: string }): string {
  return `[${failure.code}] ${failure.message}`;
}

const ENCODED = /^\[([A-Z][A-Z0-9_]*)\] ([\s\S]*)$/;

/**
 * Reads back a reason written by {@link encodeFailure}. A reason that does not carry a known code (written by
 * BullMQ itself, e.g. "job stalled more than allowable limit") is `INTERNAL` with the whole text as message.
 */
export function parseFailure(reason: string, final: boolean): JobFailure {
  const match = ENCODED.exec(reason);
  const code = match?.[1];
  if (match !== null && code !== undefined && (code === INTERNAL || Object.hasOwn(CODES, code))) {
    return { code, message: match[2] ?? '', final };
  }
  return { code: INTERNAL, message: reason, final };
}
