import type { Logger } from '../../log.js';
import type { PromotionStore, StatusWriter, EventRecorder } from '../ports.js';
import { API_GROUP, API_VERSION, KIND, PLURAL, REQUESTED_AT_ANNOTATION, type Promotion, type PromotionRef, type PromotionSpec, type PromotionStatus } from '../promotion.js';
import { k8s, MERGE_PATCH, statusOf } from './kube-api.js';

interface BundlePromotionObject extends k8s.KubernetesObject {
  spec: PromotionSpec;
  status?: PromotionStatus;
}

/**
 * BundlePromotions from the API server through an informer (list + watch; a 410 relists inside the
 * library). The informer stops on any other error: it is restarted here with backoff, since a stopped
 * watch would silently freeze the controller (controller-library-notes §3).
 */
export class KubePromotionStore implements PromotionStore {
  readonly #informer: k8s.Informer<BundlePromotionObject> & k8s.ObjectCache<BundlePromotionObject>;
  readonly #log: Logger;
  readonly #listeners: ((ref: PromotionRef) => void)[] = [];
  #synced = false;
  #stopping = false;
  #restartDelayMs = 1000;
  #restartTimer: NodeJS.Timeout | undefined;
  #failed = false;

  constructor(kc: k8s.KubeConfig, options: { namespace?: string; log: Logger }) {
    this.#log = options.log;
    const api = kc.makeApiClient(k8s.CustomObjectsApi);
    const ns = options.namespace;
    const path = ns ? `/apis/${API_GROUP}/${API_VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${API_GROUP}/${API_VERSION}/${PLURAL}`;
    const list = () => (ns
      ? api.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: PLURAL })
      : api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: PLURAL })) as Promise<k8s.KubernetesListObject<BundlePromotionObject>>;
    this.#informer = k8s.makeInformer<BundlePromotionObject>(kc, path, list);
    const notify = (obj: BundlePromotionObject) => {
      const ref = { namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' };
      for (const l of this.#listeners) l(ref);
    };
    this.#informer.on('add', notify);
    this.#informer.on('update', notify);
    this.#informer.on('delete', notify);
    this.#informer.on('connect', () => {
      this.#restartDelayMs = 1000;
    });
    this.#informer.on('error', (err: unknown) => {
      if (this.#stopping) return;
      this.#synced = false;
      this.#failed = true;
      this.#log.warn({ err: (err as Error)?.message, retryInMs: this.#restartDelayMs }, 'watch of BundlePromotions failed; restarting');
      this.#restartTimer = setTimeout(() => void this.#restart(), this.#restartDelayMs);
      this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, 30_000);
    });
  }

  async start(): Promise<void> {
    this.#stopping = false;
    await this.#restart();
  }

  async #restart(): Promise<void> {
    if (this.#stopping) return;
    this.#restartTimer = undefined;
    this.#failed = false;
    await this.#informer.start();
    // start() resolves even when the list failed; the error handler has then scheduled a restart.
    this.#synced = !this.#failed;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    await this.#informer.stop();
  }

  synced(): boolean {
    return this.#synced;
  }

  list(): readonly Promotion[] {
    return this.#informer.list().map(toPromotion);
  }

  get(ref: PromotionRef): Promotion | undefined {
    const obj = this.#informer.get(ref.name, ref.namespace);
    return obj === undefined ? undefined : toPromotion(obj);
  }

  onChange(listener: (ref: PromotionRef) => void): void {
    this.#listeners.push(listener);
  }
}

function toPromotion(obj: BundlePromotionObject): Promotion {
  const meta = obj.metadata ?? {};
  const requestedAt = meta.annotations?.[REQUESTED_AT_ANNOTATION];
  return {
    ref: { namespace: meta.namespace ?? 'default', name: meta.name ?? '' },
    uid: meta.uid ?? '',
    generation: meta.generation ?? 0,
    spec: obj.spec,
    ...(requestedAt !== undefined ? { requestedAt } : {}),
    ...(obj.status !== undefined ? { status: obj.status } : {}),
    ...(meta.deletionTimestamp !== undefined ? { deleting: true } : {}),
  };
}

/** The status subresource, replaced whole by a merge patch (SSA on /status needs 1.22+; the floor is 1.20). */
export class KubeStatusWriter implements StatusWriter {
  readonly #api: k8s.CustomObjectsApi;

  constructor(kc: k8s.KubeConfig) {
    this.#api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async write(p: Promotion, status: PromotionStatus): Promise<void> {
    // Arrays replace whole under a merge patch; nulls clear fields the new status no longer has.
    const cleared = Object.fromEntries(Object.keys(p.status ?? {}).filter((k) => !(k in status)).map((k) => [k, null]));
    try {
      await this.#api.patchNamespacedCustomObjectStatus({
        group: API_GROUP, version: API_VERSION, namespace: p.ref.namespace, plural: PLURAL, name: p.ref.name,
        body: { metadata: { uid: p.uid }, status: { ...cleared, ...status } },
      }, MERGE_PATCH);
    } catch (e) {
      // Deleted meanwhile (404) or re-created with a new uid (409 on the uid precondition): nothing to write.
      if (statusOf(e) === 404 || statusOf(e) === 409) return;
      throw e;
    }
  }
}

/** core/v1 Events on the BundlePromotion (what `kubectl describe` shows on every server version). */
export class KubeEventRecorder implements EventRecorder {
  readonly #core: k8s.CoreV1Api;
  readonly #component: string;
  readonly #instance: string;

  constructor(kc: k8s.KubeConfig, options: { component: string; instance: string }) {
    this.#core = kc.makeApiClient(k8s.CoreV1Api);
    this.#component = options.component;
    this.#instance = options.instance;
  }

  async record(p: Promotion, event: { type: 'Normal' | 'Warning'; reason: string; message: string }): Promise<void> {
    const now = new Date();
    await this.#core.createNamespacedEvent({
      namespace: p.ref.namespace,
      body: {
        metadata: { generateName: `${p.ref.name}.`, namespace: p.ref.namespace },
        involvedObject: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: KIND, name: p.ref.name, namespace: p.ref.namespace, uid: p.uid },
        type: event.type,
        reason: event.reason,
        // The API server caps messages at 1 KiB.
        message: event.message.length > 1000 ? `${event.message.slice(0, 997)}...` : event.message,
        source: { component: this.#component, host: this.#instance },
        reportingComponent: this.#component,
        reportingInstance: this.#instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }
}
