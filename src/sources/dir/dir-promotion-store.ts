import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import type { Logger } from '../../log.js';
import { validatePromotionDocument } from '../crd-schema.js';
import type { EventRecorder, PromotionStore, StatusWriter } from '../ports.js';
import { API_GROUP, API_VERSION, KIND, REQUESTED_AT_ANNOTATION, promotionKey, type Promotion, type PromotionRef, type PromotionSpec, type PromotionStatus } from '../promotion.js';

export interface DirPromotionStoreOptions {
  /** The directory of promotion YAML files (`*.yaml`, `*.yml`; several documents per file). */
  readonly dir: string;
  /** Where status files go. @defaultValue `<dir>/.status` */
  readonly statusDir?: string;
  readonly log: Logger;
  /** Quiet time after a file change before the directory is re-read. @defaultValue 200 */
  readonly debounceMs?: number;
}

/** A status file: the status, and what the generation counter is kept against across restarts. */
interface StatusFile {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; generation: number; specHash: string };
  status: PromotionStatus;
}

export interface FileProblem {
  readonly file: string;
  readonly errors: readonly string[];
}

/**
 * BundlePromotions from a directory of YAML files, each document validated against the CRD's own schema:
 * one bad file is reported and skipped, the others run. A spec change bumps the generation (kept in the
 * status file, so that a restart does not count it again); status is written to YAML files and kept in
 * memory for `/status`. It is its own status writer and event log, the single writer of the status dir.
 */
export class DirPromotionStore implements PromotionStore, StatusWriter, EventRecorder {
  readonly #dir: string;
  readonly #statusDir: string;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #promotions = new Map<string, Promotion>();
  readonly #statusFiles = new Map<string, StatusFile>();
  /** The file each promotion was read from. */
  readonly #fileOf = new Map<string, string>();
  readonly #events = new Map<string, { time: string; type: string; reason: string; message: string }[]>();
  readonly #listeners: ((ref: PromotionRef) => void)[] = [];
  #problems: FileProblem[] = [];
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #loading: Promise<void> = Promise.resolve();
  #synced = false;

  constructor(options: DirPromotionStoreOptions) {
    this.#dir = options.dir;
    this.#statusDir = options.statusDir ?? join(options.dir, '.status');
    this.#log = options.log;
    this.#debounceMs = options.debounceMs ?? 200;
  }

  get statusDir(): string {
    return this.#statusDir;
  }

  async start(): Promise<void> {
    await mkdir(this.#statusDir, { recursive: true });
    await this.#readStatusFiles();
    await this.reload();
    this.#watcher = watch(this.#dir, () => this.#schedule());
    this.#watcher.on('error', (e) => this.#log.warn({ err: e.message }, 'watching the promotions directory failed'));
    this.#synced = true;
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#loading;
  }

  synced(): boolean {
    return this.#synced;
  }

  list(): readonly Promotion[] {
    return [...this.#promotions.values()];
  }

  get(ref: PromotionRef): Promotion | undefined {
    return this.#promotions.get(promotionKey(ref));
  }

  onChange(listener: (ref: PromotionRef) => void): void {
    this.#listeners.push(listener);
  }

  /** Files that failed to parse or validate at the last read, with every error. */
  problems(): readonly FileProblem[] {
    return this.#problems;
  }

  /** What `/status` serves: every promotion with its status and recent events, and the file problems. */
  snapshot(): unknown {
    return {
      promotions: this.list().map((p) => ({
        namespace: p.ref.namespace, name: p.ref.name, generation: p.generation, source: p.spec.source.bundle ?? `fromPromotion ${p.spec.source.fromPromotion?.name ?? ''}`,
        target: p.spec.target.repository, status: p.status ?? {}, events: this.#events.get(promotionKey(p.ref)) ?? [],
      })),
      problems: this.#problems,
    };
  }

  /** Re-reads the directory now (also called by the watcher, debounced). */
  reload(): Promise<void> {
    this.#loading = this.#loading.then(() => this.#load()).catch((e: unknown) => {
      this.#log.error({ err: (e as Error).message }, 'reading the promotions directory failed');
    });
    return this.#loading;
  }

  async write(p: Promotion, status: PromotionStatus): Promise<void> {
    const key = promotionKey(p.ref);
    const current = this.#promotions.get(key);
    if (current === undefined || current.uid !== p.uid) return;
    const file = this.#statusFiles.get(key);
    if (file === undefined) return;
    file.status = status;
    await this.#writeStatusFile(key, file);
    this.#promotions.set(key, { ...current, status });
    this.#notify(p.ref);
  }

  async record(p: Promotion, event: { type: 'Normal' | 'Warning'; reason: string; message: string }): Promise<void> {
    const key = promotionKey(p.ref);
    const list = this.#events.get(key) ?? [];
    list.unshift({ time: new Date().toISOString(), ...event });
    this.#events.set(key, list.slice(0, 20));
    const log = this.#log.child({ promotion: key, reason: event.reason });
    if (event.type === 'Warning') log.warn(event.message);
    else log.info(event.message);
  }

  #schedule(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.reload();
    }, this.#debounceMs);
  }

  async #load(): Promise<void> {
    const entries = (await readdir(this.#dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name) && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
    const found = new Map<string, { spec: PromotionSpec; requestedAt?: string; file: string }>();
    const problems: FileProblem[] = [];
    for (const name of entries) {
      const path = join(this.#dir, name);
      const label = relative(process.cwd(), path) || path;
      const errors: string[] = [];
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        problems.push({ file: label, errors: [`${label}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`] });
        continue;
      }
      const docs = parseAllDocuments(text);
      const fileFound: [string, { spec: PromotionSpec; requestedAt?: string; file: string }][] = [];
      for (const [index, doc] of docs.entries()) {
        if (doc.errors.length > 0) {
          errors.push(`${label} document ${index + 1}: not valid YAML (${doc.errors[0]?.message.split('\n')[0] ?? 'parse error'})`);
          continue;
        }
        const value: unknown = doc.toJS();
        if (value === null || value === undefined) continue;
        const result = validatePromotionDocument(value, { file: label, index });
        if (!result.ok) {
          errors.push(...result.errors);
          continue;
        }
        const ref = { namespace: result.metadata.namespace ?? 'default', name: result.metadata.name };
        const key = promotionKey(ref);
        if (found.has(key) || fileFound.some(([k]) => k === key)) {
          errors.push(`${label} document ${index + 1}: BundlePromotion ${key} is defined more than once`);
          continue;
        }
        const requestedAt = result.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
        fileFound.push([key, { spec: result.spec, file: name, ...(requestedAt !== undefined ? { requestedAt } : {}) }]);
      }
      // A file with an error is skipped whole: half a file applied is harder to reason about than none.
      if (errors.length > 0) {
        problems.push({ file: label, errors });
        for (const e of errors) this.#log.error({ file: label }, e);
        // Promotions it defined before keep running as they were.
        for (const [key, p] of this.#promotions) {
          if (this.#fileOf.get(key) === name) found.set(key, { spec: p.spec, file: name, ...(p.requestedAt !== undefined ? { requestedAt: p.requestedAt } : {}) });
        }
        continue;
      }
      for (const [key, v] of fileFound) found.set(key, v);
    }
    this.#problems = problems;

    const changed: PromotionRef[] = [];
    for (const [key, p] of this.#promotions) {
      if (!found.has(key)) {
        this.#promotions.delete(key);
        this.#fileOf.delete(key);
        changed.push(p.ref);
      }
    }
    for (const [key, { spec, requestedAt, file }] of found) {
      this.#fileOf.set(key, file);
      const slash = key.indexOf('/');
      const ref = { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
      const specHash = createHash('sha256').update(JSON.stringify(spec)).digest('hex');
      let status = this.#statusFiles.get(key);
      if (status === undefined) {
        status = { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: KIND, metadata: { ...ref, generation: 1, specHash }, status: {} };
        this.#statusFiles.set(key, status);
        await this.#writeStatusFile(key, status);
      } else if (status.metadata.specHash !== specHash) {
        status.metadata = { ...status.metadata, generation: status.metadata.generation + 1, specHash };
        await this.#writeStatusFile(key, status);
      }
      const before = this.#promotions.get(key);
      const uid = `dir-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
      const next: Promotion = {
        ref, uid, generation: status.metadata.generation, spec, ...(requestedAt !== undefined ? { requestedAt } : {}), status: status.status,
      };
      if (before === undefined || !isDeepStrictEqual(before, next)) {
        this.#promotions.set(key, next);
        changed.push(ref);
      }
    }
    for (const ref of changed) this.#notify(ref);
  }

  async #readStatusFiles(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#statusDir);
    } catch {
      return;
    }
    for (const name of names.filter((n) => n.endsWith('.yaml'))) {
      try {
        const file = parseYaml(await readFile(join(this.#statusDir, name), 'utf8')) as StatusFile;
        if (file?.metadata?.name && file.metadata.namespace) this.#statusFiles.set(`${file.metadata.namespace}/${file.metadata.name}`, { ...file, status: file.status ?? {} });
      } catch (e) {
        this.#log.warn({ file: name, err: (e as Error).message }, 'ignoring an unreadable status file');
      }
    }
  }

  async #writeStatusFile(key: string, file: StatusFile): Promise<void> {
    const name = `${key.replace('/', '.')}.yaml`;
    const tmp = join(this.#statusDir, `.${name}.tmp`);
    await writeFile(tmp, stringify(file));
    await rename(tmp, join(this.#statusDir, name));
  }

  #notify(ref: PromotionRef): void {
    for (const l of this.#listeners) l(ref);
  }
}
