import type { Promotion, PromotionRef, PromotionStatus } from './promotion.js';

/**
 * Where promotions come from: the Kubernetes API (an informer's cache) or a directory of YAML files.
 * The reconciler reads only this cache; per-promotion state lives in the status and the job.
 */
export interface PromotionStore {
  /** Lists, then watches; resolves once the first list is in the cache. */
  start(signal?: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  list(): readonly Promotion[];
  get(ref: PromotionRef): Promotion | undefined;
  /** Called for every added, changed or deleted promotion (and for every one after a relist). */
  onChange(listener: (ref: PromotionRef) => void): void;
  /** The cache holds a complete list (for /readyz). */
  synced(): boolean;
}

/** Writes a promotion's whole status in one request; the single writer is the (leading) reconciler. */
export interface StatusWriter {
  write(promotion: Promotion, status: PromotionStatus, signal?: AbortSignal): Promise<void>;
}

export interface EventRecorder {
  record(promotion: Promotion, event: { type: 'Normal' | 'Warning'; reason: string; message: string }, signal?: AbortSignal): Promise<void>;
}

/**
 * Reads Secret and ConfigMap entries in a promotion's namespace. A missing object or key is a
 * `SECRET_NOT_FOUND` error naming it (never its contents).
 */
export interface ConfigReader {
  secret(namespace: string, name: string, key: string, signal?: AbortSignal): Promise<Buffer>;
  configMap(namespace: string, name: string, key: string, signal?: AbortSignal): Promise<string>;
}
