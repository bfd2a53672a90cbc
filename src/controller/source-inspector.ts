import { isPromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseReference, parseRepository, type RegistryClientOptions } from '../oci/index.js';
import type { ConfigReader, PromotionStore } from '../sources/ports.js';
import type { Promotion } from '../sources/promotion.js';
import { openRegistry } from '../sources/registry-access.js';
import { reasonOf, SOURCE_REASONS } from './conditions.js';
import type { Observed } from './decide.js';

/** The registry reads a reconcile needs: the source's digest, and whether the target still holds it. */
export interface SourceInspector {
  resolve(p: Promotion, signal?: AbortSignal): Promise<Observed['source']>;
  targetHolds(p: Promotion, digest: string, tags: readonly string[], signal?: AbortSignal): Promise<boolean>;
}

export class RegistrySourceInspector implements SourceInspector {
  readonly #store: PromotionStore;
  readonly #reader: ConfigReader;
  readonly #log: Logger;
  readonly #options: Partial<RegistryClientOptions>;

  constructor(deps: { store: PromotionStore; reader: ConfigReader; log: Logger; registryOptions?: Partial<RegistryClientOptions> }) {
    this.#store = deps.store;
    this.#reader = deps.reader;
    this.#log = deps.log;
    this.#options = deps.registryOptions ?? {};
  }

  async resolve(p: Promotion, signal?: AbortSignal): Promise<Observed['source']> {
    const { source } = p.spec;
    if (source.fromPromotion !== undefined) return this.#upstream(p, source.fromPromotion.name);
    const bundle = source.bundle ?? '';
    try {
      const ref = parseReference(bundle);
      const tags = ref.tag !== undefined ? [ref.tag] : [];
      if (ref.digest !== undefined) return { kind: 'resolved', digest: ref.digest, reference: bundle, tags, followed: false };
      const head = await this.#withRegistry(p, (registry) => registry.headManifest(ref, signal), signal);
      if (head === undefined) return { kind: 'failed', reason: 'SourceNotFound', message: `${bundle} does not exist`, retryable: false };
      return { kind: 'resolved', digest: head.digest, reference: bundle, tags, followed: true };
    } catch (e) {
      if (!isPromoteError(e)) throw e;
      return { kind: 'failed', reason: SOURCE_REASONS[e.code] ?? reasonOf(e.code), message: e.message, retryable: e.retryable };
    }
  }

  async targetHolds(p: Promotion, digest: string, tags: readonly string[], signal?: AbortSignal): Promise<boolean> {
    try {
      const target = parseRepository(p.spec.target.repository);
      return await this.#withRegistry(p, async (registry) => {
        if ((await registry.headManifest({ ...target, digest }, signal)) === undefined) return false;
        for (const tag of tags) if ((await registry.headManifest({ ...target, tag }, signal))?.digest !== digest) return false;
        return true;
      }, signal);
    } catch (e) {
      // Not knowing is not a reason to re-promote: the next interval looks again.
      this.#log.warn({ promotion: `${p.ref.namespace}/${p.ref.name}`, code: isPromoteError(e) ? e.code : undefined }, 'cannot check the target');
      return true;
    }
  }

  #upstream(p: Promotion, name: string): Observed['source'] {
    const upstream = this.#store.get({ namespace: p.ref.namespace, name });
    if (upstream === undefined) return { kind: 'failed', reason: 'UpstreamNotFound', message: `BundlePromotion ${p.ref.namespace}/${name} does not exist`, retryable: true };
    const digest = upstream.status?.promotedDigest;
    if (digest === undefined) {
      return { kind: 'failed', reason: 'UpstreamNotReady', message: `BundlePromotion ${p.ref.namespace}/${name} has promoted nothing yet`, retryable: true };
    }
    const repository = upstream.spec.target.repository;
    return { kind: 'resolved', digest, reference: `${repository}@${digest}`, tags: upstream.status?.promotedTags ?? [], followed: false };
  }

  async #withRegistry<T>(p: Promotion, body: (registry: import('../oci/index.js').Registry) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const handle = await openRegistry({
      namespace: p.ref.namespace,
      sourceCredentials: p.spec.source.credentials?.secretRef.name,
      targetCredentials: p.spec.target.credentials?.secretRef.name,
      registry: p.spec.registry,
    }, { reader: this.#reader, log: this.#log, options: this.#options }, signal);
    try {
      return await body(handle.client);
    } finally {
      await handle.close();
    }
  }
}
