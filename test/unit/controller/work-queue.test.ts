import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../../src/controller/work-queue.js';

describe('WorkQueue', () => {
  it('when a key is added twice before it is taken, it is handled once', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.next()).toBe('a');
    expect(await q.next()).toBe('b');
    q.close();
  });

  it('when a key is added while it is being handled, it comes back after done(), never in parallel', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.next();
    q.add('a');
    expect(q.length).toBe(0);
    q.done(first!);
    expect(q.length).toBe(1);
    expect(await q.next()).toBe('a');
    q.close();
  });

  it('when failures repeat, the backoff doubles up to its ceiling, and forget() resets it', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 350 });
    expect([q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a')]).toEqual([100, 200, 350, 350]);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(100);
    q.close();
  });

  it('when closed, a waiting next() resolves undefined', async () => {
    const q = new WorkQueue();
    const waiting = q.next();
    q.close();
    expect(await waiting).toBeUndefined();
  });

  it('when added after a delay, the key arrives once the delay has passed, and the earlier of two delays wins', async () => {
    const q = new WorkQueue();
    const started = Date.now();
    q.addAfter('a', 10_000);
    q.addAfter('a', 30);
    expect(await q.next()).toBe('a');
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(Date.now() - started).toBeLessThan(5_000);
    q.close();
  });
});
