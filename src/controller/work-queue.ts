/**
 * A keyed work queue in the manner of client-go's: a key waits at most once, is never handled by two
 * workers at a time, and a key added while it is being handled is handled again afterwards. Failures
 * are retried with per-key exponential backoff; `forget` resets it.
 */
export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  readonly #failures = new Map<string, number>();
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(options: { baseDelayMs?: number; maxDelayMs?: number } = {}) {
    this.#baseDelayMs = options.baseDelayMs ?? 1000;
    this.#maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
  }

  get length(): number {
    return this.#queue.length;
  }

  add(key: string): void {
    if (this.#closed || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    this.#queue.push(key);
    this.#wake();
  }

  /** Adds `key` after `ms`; an earlier pending add-after for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#closed) return;
    if (ms <= 0) return this.add(key);
    const due = Date.now() + ms;
    const existing = this.#timers.get(key);
    if (existing !== undefined && existing.due <= due) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, { timer, due });
  }

  /** Adds `key` after its backoff: 1 s, 2 s, 4 s … up to 5 min for consecutive failures. */
  addRateLimited(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** failures);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** The next key, or `undefined` once closed. Call `done(key)` when finished with it. */
  async next(): Promise<string | undefined> {
    while (!this.#closed) {
      const key = this.#queue.shift();
      if (key !== undefined) {
        this.#dirty.delete(key);
        this.#processing.add(key);
        return key;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return undefined;
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#queue.push(key);
      this.#wake();
    }
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers.values()) clearTimeout(t.timer);
    this.#timers.clear();
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
