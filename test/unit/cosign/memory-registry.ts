/**
 * An in-memory `Registry` for unit tests of the signature code: content-addressed like a real registry,
 * with the referrers fallback tag (`sha256-<hex>`) as distribution 2.8 needs it, and a log of blob reads
 * so that tests can assert what was (not) downloaded. Integration tests use the real registry instead.
 */
import { createHash } from 'node:crypto';
import { PromoteError } from '../../../src/errors.js';
import { mergeReferrersIndex, type BlobCopyOutcome, type BlobSource, type Descriptor, type RawManifest, type Reference, type Registry, type Repository, type RequestStats } from '../../../src/oci/index.js';

const digestOf = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const key = (r: Repository): string => `${r.registry}/${r.repository}`;

interface Repo {
  blobs: Map<string, Buffer>;
  manifests: Map<string, { mediaType: string; bytes: Buffer }>;
  tags: Map<string, string>;
}

export class MemoryRegistry implements Registry {
  readonly stats: RequestStats = { requests: 0, byKind: {}, bytesUploaded: 0, bytesDownloaded: 0 };
  readonly blobReads: string[] = [];
  /** When set, every call fails with this error (an outage). */
  failWith: PromoteError | undefined;
  readonly #repos = new Map<string, Repo>();

  #repo(r: Repository): Repo {
    let repo = this.#repos.get(key(r));
    if (repo === undefined) {
      repo = { blobs: new Map(), manifests: new Map(), tags: new Map() };
      this.#repos.set(key(r), repo);
    }
    return repo;
  }

  #count(kind: string): void {
    if (this.failWith !== undefined) throw this.failWith;
    this.stats.requests++;
    this.stats.byKind[kind] = (this.stats.byKind[kind] ?? 0) + 1;
  }

  #resolve(ref: Reference): { mediaType: string; bytes: Buffer; digest: string } | undefined {
    const repo = this.#repo(ref);
    const digest = ref.digest ?? (ref.tag === undefined ? undefined : repo.tags.get(ref.tag));
    if (digest === undefined) return undefined;
    const m = repo.manifests.get(digest);
    return m === undefined ? undefined : { ...m, digest };
  }

  /** Stores bytes as a blob without any checks (tests use it to plant corrupt content). */
  plantBlob(repo: Repository, digest: string, bytes: Buffer): void {
    this.#repo(repo).blobs.set(digest, bytes);
  }

  /** Stores a manifest and optionally tags it; returns its digest. */
  plantManifest(repo: Repository, mediaType: string, bytes: Buffer, tag?: string): string {
    const digest = digestOf(bytes);
    const r = this.#repo(repo);
    r.manifests.set(digest, { mediaType, bytes });
    if (tag !== undefined) r.tags.set(tag, digest);
    return digest;
  }

  deleteManifest(repo: Repository, digest: string): void {
    this.#repo(repo).manifests.delete(digest);
  }

  async headManifest(ref: Reference): Promise<Descriptor | undefined> {
    this.#count('HEAD manifest');
    const m = this.#resolve(ref);
    return m === undefined ? undefined : { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }

  async getManifest(ref: Reference): Promise<RawManifest> {
    const m = await this.findManifest(ref);
    if (m === undefined) throw new PromoteError('MANIFEST_NOT_FOUND', `manifest ${key(ref)} not found`);
    return m;
  }

  async findManifest(ref: Reference): Promise<RawManifest | undefined> {
    this.#count('GET manifest');
    const m = this.#resolve(ref);
    return m === undefined ? undefined : { mediaType: m.mediaType, digest: m.digest, bytes: Buffer.from(m.bytes) };
  }

  async putManifest(ref: Reference, manifest: { mediaType: string; bytes: Buffer }): Promise<string> {
    this.#count('PUT manifest');
    const digest = digestOf(manifest.bytes);
    if (ref.digest !== undefined && ref.digest !== digest) throw new PromoteError('DIGEST_MISMATCH', 'manifest digest mismatch');
    this.plantManifest(ref, manifest.mediaType, Buffer.from(manifest.bytes), ref.tag);
    return digest;
  }

  async readBlob(repo: Repository, digest: string, maxBytes: number): Promise<Buffer> {
    this.#count('GET blob');
    this.blobReads.push(digest);
    const b = this.#repo(repo).blobs.get(digest);
    if (b === undefined) throw new PromoteError('BLOB_NOT_FOUND', `blob ${digest} not found`);
    if (b.length > maxBytes) throw new PromoteError('BLOB_TOO_LARGE', `blob ${digest} is larger than ${maxBytes}`);
    if (digestOf(b) !== digest) throw new PromoteError('DIGEST_MISMATCH', `blob ${digest}: content hashes to ${digestOf(b)}`);
    return Buffer.from(b);
  }

  async openBlob(): Promise<NodeJS.ReadableStream> {
    throw new Error('not used by the signature code');
  }

  async pushBlob(repo: Repository, bytes: Buffer): Promise<{ digest: string; outcome: BlobCopyOutcome }> {
    this.#count('PUT blob');
    const digest = digestOf(bytes);
    const r = this.#repo(repo);
    const present = r.blobs.has(digest);
    r.blobs.set(digest, Buffer.from(bytes));
    return { digest, outcome: present ? 'present' : 'uploaded' };
  }

  async copyBlob(source: BlobSource, target: Repository): Promise<BlobCopyOutcome> {
    const b = this.#repo(source.repo).blobs.get(source.descriptor.digest);
    if (b === undefined) throw new PromoteError('BLOB_NOT_FOUND', 'blob not found');
    this.#repo(target).blobs.set(source.descriptor.digest, b);
    return 'uploaded';
  }

  async listTags(repo: Repository): Promise<string[] | undefined> {
    return [...this.#repo(repo).tags.keys()];
  }

  /** Like distribution 2.8: no referrers API, so the `sha256-<hex>` fallback index. */
  /** The fallback index, merged as the real client merges it (distribution 2.8 has no referrers API). */
  async indexReferrers(repo: Repository, subject: string, referrers: readonly Descriptor[]): Promise<boolean> {
    const tag = `sha256-${subject.slice(7)}`;
    const existing = await this.findManifest({ ...repo, tag });
    const bytes = mergeReferrersIndex(existing?.bytes, referrers, tag);
    if (bytes === undefined) return false;
    await this.putManifest({ ...repo, tag }, { mediaType: 'application/vnd.oci.image.index.v1+json', bytes });
    return true;
  }

  async listReferrers(repo: Repository, digest: string): Promise<Descriptor[]> {
    this.#count('GET referrers');
    const m = this.#resolve({ ...repo, tag: `sha256-${digest.slice(7)}` });
    if (m === undefined) return [];
    let doc: { mediaType?: unknown; manifests?: unknown };
    try {
      doc = JSON.parse(m.bytes.toString()) as typeof doc;
    } catch (e) {
      throw new PromoteError('MANIFEST_INVALID', 'fallback index is not JSON', { cause: e });
    }
    return Array.isArray(doc.manifests) ? (doc.manifests as Descriptor[]) : [];
  }

  /** Copies every blob, manifest and tag of one repository into another (a promotion, byte for byte). */
  copyRepository(from: Repository, to: Repository): void {
    const a = this.#repo(from);
    const b = this.#repo(to);
    for (const [d, x] of a.blobs) b.blobs.set(d, x);
    for (const [d, x] of a.manifests) b.manifests.set(d, x);
    for (const [t, d] of a.tags) b.tags.set(t, d);
  }
}
