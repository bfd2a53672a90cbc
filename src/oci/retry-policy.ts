import { setTimeout as delay } from 'node:timers/promises';
import { asAbort } from '../errors.js';

/** How transient registry failures are retried (per request, and per whole-blob copy). */
export interface RetryPolicy {
  /** Tries in total, the first included. @defaultValue 5 */
  maxAttempts: number;
  /** Backoff ceiling before the first retry. @defaultValue 200 */
  baseDelayMs: number;
  /** Growth of the ceiling per retry. @defaultValue 2 */
  factor: number;
  /** Largest backoff ceiling. @defaultValue 10_000 */
  maxDelayMs: number;
  /**
   * Longest `Retry-After` waited for inside a request; a longer one fails at once with
   * REGISTRY_THROTTLED carrying `retryAfterMs`, so that the job can be rescheduled instead of holding a worker.
   * @defaultValue 60_000
   */
  maxRetryAfterMs: number;
  /**
   * Backoff ceiling before the first retry of a 429 without `Retry-After`; grows by `factor`. Throttling
   * clears in seconds to a minute, not in the milliseconds that suit a reset connection.
   * @defaultValue 1_000
   */
  throttleBaseDelayMs: number;
  /** Largest backoff ceiling for a 429. @defaultValue 60_000 */
  throttleMaxDelayMs: number;
  /**
   * Longest time one request spends retrying (waits included): a wait that would end after it fails the
   * request at once. 429s are retried until this deadline, not `maxAttempts` times.
   * @defaultValue 120_000
   */
  deadlineMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  maxAttempts: 5,
  baseDelayMs: 200,
  factor: 2,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
  throttleBaseDelayMs: 1_000,
  throttleMaxDelayMs: 60_000,
  deadlineMs: 120_000,
};

/** "Full jitter" (AWS architecture blog): uniform in [0, min(max, base·factorⁿ)), so that clients spread out. */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * policy.factor ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Backoff after the `retry`-th 429 without `Retry-After`: "equal jitter", uniform in [c/2, c) with
 * c = min(throttleMax, throttleBase·factorⁿ), so that a throttled client always waits a real while.
 */
export function throttleDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.throttleMaxDelayMs, policy.throttleBaseDelayMs * policy.factor ** (retry - 1));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; `undefined` when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits, ending early with ABORTED when the signal fires. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
  } catch (e) {
    throw asAbort(signal) ?? e;
  }
}
