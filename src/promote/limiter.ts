/** Runs at most `n` tasks at once; the rest wait in order. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`concurrency must be a positive integer, got ${n}`);
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    // A finishing task hands its slot straight to the next waiter, so `active` never overshoots `n`.
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active += 1;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active -= 1;
    }
  };
}

/** Memoises an async function per key, so concurrent callers share one promise. */
export function once<K, V>(): (key: K, make: () => Promise<V>) => Promise<V> {
  const seen = new Map<K, Promise<V>>();
  return (key, make) => {
    let p = seen.get(key);
    if (p === undefined) {
      p = make();
      seen.set(key, p);
    }
    return p;
  };
}
