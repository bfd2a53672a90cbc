import { isDeepStrictEqual } from 'node:util';
import { isPromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobQueue } from '../queue/job-queue.js';
import type { EventRecorder, PromotionStore, StatusWriter } from '../sources/ports.js';
import { promotionKey, type Promotion, type PromotionRef } from '../sources/promotion.js';
import { decide, type Decision, type Observed } from './decide.js';
import type { SourceInspector } from './source-inspector.js';
import { WorkQueue } from './work-queue.js';

/** What the reconciler reports; the metrics module implements it. */
export interface ReconcileObserver {
  reconciled?(result: 'success' | 'error' | 'requeue', durationSeconds: number): void;
  promotionReady?(ref: PromotionRef, ready: boolean): void;
  promotionFinished?(ref: PromotionRef, result: 'succeeded' | 'failed', durationSeconds: number, finishedAt: Date): void;
  forgetPromotion?(ref: PromotionRef): void;
  /** The last success as the status records it: a new leader restores the gauge without counting anything. */
  promotionLastSucceeded?(ref: PromotionRef, finishedAt: Date): void;
}

export interface ReconcilerDeps {
  readonly store: PromotionStore;
  readonly status: StatusWriter;
  readonly events: EventRecorder;
  readonly queue: JobQueue;
  readonly inspector: SourceInspector;
  readonly log: Logger;
  readonly observer?: ReconcileObserver;
  readonly now?: () => Date;
}

export interface ReconcilerOptions {
  /** Promotions reconciled in parallel. @defaultValue 4 */
  readonly concurrency?: number;
}

/**
 * The control loop: every change of a promotion (or of its upstream, or of its job) queues its key; a
 * reconcile observes (source digest, job state), asks {@link decide}, and carries out the decision:
 * enqueue the job, write the status in one request, record events, requeue.
 */
export class Reconciler {
  readonly #deps: ReconcilerDeps;
  readonly #concurrency: number;
  #work = new WorkQueue();
  readonly #now: () => Date;
  #running: Promise<void>[] = [];
  #controller: AbortController | undefined;
  #listening = false;
  /** The status each promotion was last written with, and what the cache held before: the watch lags our writes. */
  readonly #written = new Map<string, { before: unknown; after: Promotion['status'] }>();

  constructor(deps: ReconcilerDeps, options: ReconcilerOptions = {}) {
    this.#deps = deps;
    this.#concurrency = options.concurrency ?? 4;
    this.#now = deps.now ?? (() => new Date());
  }

  /** Starts reconciling every known promotion and every change from now on. */
  start(): void {
    if (this.#controller !== undefined) return;
    this.#controller = new AbortController();
    this.#work = new WorkQueue();
    if (!this.#listening) {
      this.#listening = true;
      this.#deps.store.onChange((ref) => this.#onChange(ref));
      this.#deps.queue.onJobEvent(({ promotion }) => {
        if (promotion !== undefined) this.#work.add(promotionKey(promotion));
      });
    }
    for (const p of this.#deps.store.list()) this.#work.add(promotionKey(p.ref));
    const signal = this.#controller.signal;
    this.#running = Array.from({ length: this.#concurrency }, () => this.#loop(signal));
  }

  /** Stops taking keys and waits for the reconciles in flight. Idempotent; `start()` may follow. */
  async stop(): Promise<void> {
    this.#controller?.abort(new Error('reconciler stopped'));
    this.#work.close();
    await Promise.allSettled(this.#running);
    this.#running = [];
    this.#controller = undefined;
    this.#written.clear();
  }

  /** Queues a promotion for reconciling (for tests and the dir source's manual triggers). */
  enqueue(ref: PromotionRef): void {
    this.#work.add(promotionKey(ref));
  }

  #onChange(ref: PromotionRef): void {
    if (this.#controller === undefined) return;
    this.#work.add(promotionKey(ref));
    // A chained promotion follows its upstream's status.
    for (const p of this.#deps.store.list()) {
      if (p.ref.namespace === ref.namespace && p.spec.source.fromPromotion?.name === ref.name) this.#work.add(promotionKey(p.ref));
    }
  }

  async #loop(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.#work.next();
      if (key === undefined) return;
      const started = performance.now();
      let result: 'success' | 'error' | 'requeue' = 'success';
      try {
        const requeueAfterMs = await this.reconcile(refOf(key), signal);
        this.#work.forget(key);
        if (requeueAfterMs !== undefined) {
          result = 'requeue';
          this.#work.addAfter(key, requeueAfterMs);
        }
      } catch (e) {
        if (signal.aborted) return;
        result = 'error';
        const delay = this.#work.addRateLimited(key);
        this.#deps.log.warn({ promotion: key, err: errorSummary(e), retryInMs: delay }, 'reconcile failed');
      } finally {
        this.#work.done(key);
        this.#deps.observer?.reconciled?.(result, (performance.now() - started) / 1000);
      }
    }
  }

  /** One reconcile of one promotion; returns when to look again. Throws only for transient failures. */
  async reconcile(ref: PromotionRef, signal?: AbortSignal): Promise<number | undefined> {
    const { store, queue, inspector, log } = this.#deps;
    const p = this.#current(store.get(ref));
    if (p === undefined || p.deleting === true) {
      this.#written.delete(promotionKey(ref));
      await queue.drop(ref);
      this.#deps.observer?.forgetPromotion?.(ref);
      return undefined;
    }
    const source: Observed['source'] = p.spec.suspend === true
      ? { kind: 'failed', reason: 'Suspended', message: 'suspended', retryable: false }
      : await inspector.resolve(p, signal);
    const jobId = p.status?.jobId;
    const job = jobId !== undefined && p.spec.suspend !== true ? await queue.get(jobId) : undefined;
    let targetIntact: boolean | undefined;
    const last = p.status?.lastPromotion;
    if (source.kind === 'resolved' && (job === undefined || job.data.promotion.generation !== p.generation) && last?.result === 'Succeeded' && last.digest === source.digest) {
      targetIntact = await inspector.targetHolds(p, source.digest, last.tags, signal);
    }
    const decision = decide(p, { source, ...(job ? { job } : {}), ...(targetIntact !== undefined ? { targetIntact } : {}) }, this.#now());
    await this.#carryOut(p, decision, signal);
    log.debug({ promotion: promotionKey(ref), phase: decision.status.phase, enqueue: decision.enqueue !== undefined }, 'reconciled');
    return decision.requeueAfterMs;
  }

  async #carryOut(p: Promotion, d: Decision, signal?: AbortSignal): Promise<void> {
    const { queue, status, events, log, observer } = this.#deps;
    if (d.enqueue) {
      const { id, created } = await queue.enqueue(d.enqueue);
      if (created) log.info({ promotion: promotionKey(p.ref), jobId: id, digest: d.enqueue.sourceDigest, generation: p.generation }, 'job enqueued');
    }
    if (!isDeepStrictEqual(p.status ?? {}, d.status)) {
      await status.write(p, d.status, signal);
      this.#written.set(promotionKey(p.ref), { before: p.status, after: d.status });
    }
    for (const e of d.events) {
      try {
        await events.record(p, e, signal);
      } catch (err) {
        // An event is a courtesy; losing one must not fail the reconcile (status carries the truth).
        log.warn({ promotion: promotionKey(p.ref), reason: e.reason, err: errorSummary(err) }, 'cannot record event');
      }
    }
    const ready = d.status.conditions?.find((c) => c.type === 'Ready');
    if (ready !== undefined && d.status.phase !== 'Suspended') observer?.promotionReady?.(p.ref, ready.status === 'True');
    const lastSuccess = d.status.history?.find((h) => h.result === 'Succeeded')?.finishedAt;
    if (lastSuccess !== undefined) observer?.promotionLastSucceeded?.(p.ref, new Date(lastSuccess));
    const record = d.status.lastPromotion;
    if (record !== undefined && record.jobId !== p.status?.lastPromotion?.jobId || (record !== undefined && record.result !== p.status?.lastPromotion?.result)) {
      const started = record.startedAt ? Date.parse(record.startedAt) : NaN;
      const finished = record.finishedAt ? Date.parse(record.finishedAt) : NaN;
      const seconds = Number.isFinite(started) && Number.isFinite(finished) ? Math.max(0, (finished - started) / 1000) : 0;
      observer?.promotionFinished?.(p.ref, record.result === 'Succeeded' ? 'succeeded' : 'failed', seconds, Number.isFinite(finished) ? new Date(finished) : this.#now());
    }
  }

  /** The promotion with the status this reconciler last wrote, while the cache has not caught up with it. */
  #current(p: Promotion | undefined): Promotion | undefined {
    if (p === undefined) return undefined;
    const key = promotionKey(p.ref);
    const written = this.#written.get(key);
    if (written === undefined) return p;
    if (isDeepStrictEqual(p.status, written.before)) return { ...p, ...(written.after ? { status: written.after } : {}) };
    this.#written.delete(key);
    return p;
  }
}

function refOf(key: string): PromotionRef {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

function errorSummary(e: unknown): { code?: string; message: string } {
  return isPromoteError(e) ? { code: e.code, message: e.message } : { message: e instanceof Error ? e.message : String(e) };
}
