import { createHash } from 'node:crypto';
import type { PromotionJobData } from './job-queue.js';

/**
 * The job id: a hash of what makes one promotion attempt distinct (DESIGN.md "Idempotent jobs"). Adding
 * the same id twice is a no-op, so a reconcile may enqueue as often as it runs. Hex with a letter prefix:
 * BullMQ refuses ids that look like integers or contain ':'.
 */
export function jobIdOf(data: PromotionJobData): string {
  const p = data.promotion;
  const parts = [p.namespace, p.name, p.uid, String(p.generation), data.sourceDigest, data.target, data.trigger ?? ''];
  return `bp-${createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 40)}`;
}

/** The deduplication id of a promotion: one running job per promotion, whatever its spec. */
export function dedupIdOf(promotion: { readonly namespace: string; readonly name: string; readonly uid: string }): string {
  return `bp-${createHash('sha256').update(`${promotion.namespace}\n${promotion.name}\n${promotion.uid}`).digest('hex').slice(0, 40)}`;
}
