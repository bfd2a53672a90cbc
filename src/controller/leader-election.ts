import type { Logger } from '../log.js';
import { k8s, statusOf } from '../sources/kube/kube-api.js';

export interface LeaderElectionOptions {
  readonly namespace: string;
  /** @defaultValue 'bundle-promoter-controller' */
  readonly name?: string;
  /** This process's identity (pod name). */
  readonly identity: string;
  /** A leader that has not renewed for this long is replaced. @defaultValue 15_000 */
  readonly leaseDurationMs?: number;
  /** The leader gives up when it could not renew for this long. @defaultValue 10_000 */
  readonly renewDeadlineMs?: number;
  /** @defaultValue 2_000 */
  readonly retryPeriodMs?: number;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void | Promise<void>;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's rules: acquire when the lease is
 * free or expired, renew every retry period with optimistic concurrency (a racing update gets 409), and
 * stop leading when a renew has not succeeded within the renew deadline. client-node 2.0 ships none.
 */
export class LeaderElector {
  readonly #api: k8s.CoordinationV1Api;
  readonly #o: Required<Omit<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading' | 'log'>> & Pick<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading' | 'log'>;
  #leading = false;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #known = false;

  constructor(kc: k8s.KubeConfig, options: LeaderElectionOptions) {
    this.#api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.#o = { name: 'bundle-promoter-controller', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Whether one attempt has answered yet (for /readyz). */
  get known(): boolean {
    return this.#known;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    void this.#tick();
  }

  /** Stops campaigning and, when leading, releases the lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#leading) {
      await this.#lose();
      try {
        const lease = await this.#api.readNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace });
        if (lease.spec?.holderIdentity === this.#o.identity) {
          lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new k8s.V1MicroTime() };
          await this.#api.replaceNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace, body: lease });
        }
      } catch (e) {
        this.#o.log.debug({ err: (e as Error).message }, 'lease release failed; it expires on its own');
      }
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      const held = await this.#tryAcquireOrRenew();
      this.#known = true;
      if (held) {
        this.#lastRenew = Date.now();
        if (!this.#leading) {
          this.#leading = true;
          this.#o.log.info({ lease: this.#o.name, identity: this.#o.identity }, 'became leader');
          this.#o.onStartedLeading();
        }
      } else if (this.#leading) {
        await this.#lose();
      }
    } catch (e) {
      this.#o.log.warn({ err: (e as Error).message }, 'lease update failed');
      if (this.#leading && Date.now() - this.#lastRenew > this.#o.renewDeadlineMs) await this.#lose();
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => void this.#tick(), this.#o.retryPeriodMs);
      this.#timer.unref?.();
    }
  }

  async #lose(): Promise<void> {
    if (!this.#leading) return;
    this.#leading = false;
    this.#o.log.warn({ lease: this.#o.name, identity: this.#o.identity }, 'stopped leading');
    await this.#o.onStoppedLeading();
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity } = this.#o;
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
    let lease: k8s.V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
      const now = new k8s.V1MicroTime();
      try {
        await this.#api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
        });
        return true;
      } catch (err) {
        if (statusOf(err) === 409) return false;
        throw err;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewed = spec.renewTime ? Date.parse(String(spec.renewTime)) : 0;
    const expired = holder === '' || Date.now() > renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== identity && !expired) return false;
    const now = new k8s.V1MicroTime();
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: now,
      ...(holder !== identity ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (e) {
      if (statusOf(e) === 409) return false;
      throw e;
    }
  }
}
