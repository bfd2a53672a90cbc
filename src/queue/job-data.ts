import type { PromotionRef } from '../sources/promotion.js';

/**
 * The `{namespace, name}` of a job's promotion, read from data that came back from a store (Redis) and is
 * therefore checked rather than trusted; `undefined` when it does not have that shape.
 */
export function promotionRefOf(data: unknown): PromotionRef | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const promotion = (data as { promotion?: unknown }).promotion;
  if (typeof promotion !== 'object' || promotion === null) return undefined;
  const { namespace, name } = promotion as { namespace?: unknown; name?: unknown };
  if (typeof namespace !== 'string' || typeof name !== 'string') return undefined;
  return { namespace, name };
}

export function samePromotion(a: PromotionRef | undefined, b: PromotionRef): boolean {
  return a !== undefined && a.namespace === b.namespace && a.name === b.name;
}

/** BullMQ's exponential backoff, which the in-process queue copies: `round(2^(attemptsMade-1) * baseMs)`. */
export function exponentialBackoffMs(attemptsMade: number, baseMs: number): number {
  return Math.round(2 ** Math.max(0, attemptsMade - 1) * baseMs);
}
