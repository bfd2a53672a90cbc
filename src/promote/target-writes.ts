import { PromoteError } from '../errors.js';
import type { BlobCopyOutcome, Registry, Repository } from '../oci/index.js';
import { limiter } from './limiter.js';
import type { PlannedBlob } from './plan.js';

/**
 * The writes of one promotion into its target: blob copies, each started once however often it is asked
 * for, and a limit on writes in flight shared with the manifest writes. The first failure aborts every
 * write still in flight or waiting, so nothing of a doomed promotion keeps uploading.
 *
 * Shared between the plan walk and the executor: the engine starts a blob's copy as soon as the walk finds
 * it (docs/performance.md, "overlap"), and the executor later awaits the same copy instead of starting one.
 */
export class TargetWrites {
  readonly target: Repository;
  readonly #limit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly #registry: Registry;
  readonly #failFast = new AbortController();
  readonly #signal: AbortSignal;
  readonly #copies = new Map<string, Promise<BlobCopyOutcome>>();

  constructor(deps: { registry: Registry; target: Repository; concurrency?: number }, signal?: AbortSignal) {
    this.#registry = deps.registry;
    this.target = deps.target;
    this.#limit = limiter(deps.concurrency ?? 8);
    this.#signal = signal ? AbortSignal.any([signal, this.#failFast.signal]) : this.#failFast.signal;
  }

  /** Ends every write in flight or waiting with `reason`; later writes start aborted. */
  abort(reason: unknown): void {
    this.#failFast.abort(reason);
  }

  /**
   * Runs one write under the limit; its failure aborts the others. Already aborted: fails at once with the
   * reason, without starting.
   */
  run<T>(write: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.#limit(async () => {
      if (this.#signal.aborted) throw abortReason(this.#signal);
      return write(this.#signal);
    }).catch((err: unknown) => {
      this.abort(err);
      throw err;
    });
  }

  /** The copy of `blob` into the target, started by the first call for its digest. */
  copyBlob(blob: PlannedBlob, targetIsNew: boolean): Promise<BlobCopyOutcome> {
    const { digest } = blob.descriptor;
    let copy = this.#copies.get(digest);
    if (copy === undefined) {
      const source = { repo: blob.source, descriptor: blob.descriptor, ...(blob.bytes ? { bytes: blob.bytes } : {}), ...(targetIsNew ? { targetIsNew } : {}) };
      copy = this.run((signal) => this.#registry.copyBlob(source, this.target, signal));
      // Started ahead of its reader: a failure is reported where the executor awaits it, or dropped with
      // the promotion (whose own error is then the one reported), never left unhandled.
      copy.catch(() => undefined);
      this.#copies.set(digest, copy);
    }
    return copy;
  }

  /** Resolves once every copy started so far has ended, however it ended. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.#copies.values());
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new PromoteError('ABORTED', 'promotion aborted');
}
