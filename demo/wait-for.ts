import { setTimeout as delay } from 'node:timers/promises';
import { DemoFailure } from './demo-failure.js';

export interface WaitOptions {
  /** Give up after this long. @defaultValue 60_000 */
  readonly timeoutMs?: number;
  /** Time between probes. @defaultValue 100 */
  readonly intervalMs?: number;
  /** Ctrl-C: stop waiting at once. */
  readonly signal: AbortSignal;
}

/**
 * Polls `probe` until it returns a value other than `undefined` (returned), with a deadline: never a fixed
 * sleep. A probe that throws {@link DemoFailure} ends the wait at once (a state that cannot recover); other
 * errors are retried and the last one is reported at the deadline, with `describe()` (the last state seen).
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, options: WaitOptions & { describe?: () => string }): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError: unknown;
  for (;;) {
    options.signal.throwIfAborted();
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      if (e instanceof DemoFailure || options.signal.aborted) throw e;
      lastError = e;
    }
    if (Date.now() > deadline) {
      const last = options.describe?.() ?? (lastError instanceof Error ? lastError.message : undefined);
      throw new DemoFailure(`timed out after ${Math.round((options.timeoutMs ?? 60_000) / 1000)} s waiting for ${what}${last ? `\nlast seen: ${last}` : ''}`);
    }
    await delay(options.intervalMs ?? 100, undefined, { signal: options.signal });
  }
}
