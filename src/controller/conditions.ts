import type { Condition, ConditionType } from '../sources/promotion.js';

export const CONDITION_TYPES: readonly ConditionType[] = ['Ready', 'SourceResolved', 'SourceVerified', 'Copied', 'TargetVerified'];

export type ConditionState = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/**
 * Builds the whole condition list, keeping `lastTransitionTime` where a condition's status did not change
 * (Kubernetes API conventions): a reconcile that sees nothing new writes the same conditions.
 */
export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly ConditionState[], generation: number, now: Date): Condition[] {
  return CONDITION_TYPES.flatMap((type) => {
    const state = next.find((c) => c.type === type);
    if (state === undefined) return [];
    const before = previous?.find((c) => c.type === type);
    const lastTransitionTime = before !== undefined && before.status === state.status ? before.lastTransitionTime : now.toISOString();
    return [{ ...state, lastTransitionTime, observedGeneration: generation }];
  });
}

/** `VERIFICATION_FAILED` → `VerificationFailed`: condition reasons are UpperCamelCase (API conventions). */
export function reasonOf(code: string): string {
  return code.toLowerCase().split('_').filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('') || 'Unknown';
}

/** Reasons that read better than the camel-cased code where the engine's code is generic. */
export const SOURCE_REASONS: Readonly<Record<string, string>> = {
  MANIFEST_NOT_FOUND: 'SourceNotFound',
  INVALID_REFERENCE: 'InvalidSource',
};
