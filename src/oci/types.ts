/** Shapes shared by every layer above `oci/`. The registry client implements `Registry`. */

/** A repository on a registry: `registry` is a host[:port] as the user wrote it after normalisation. */
export interface Repository {
  /** `index.docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** `library/nginx`, `team/app`. */
  readonly repository: string;
}

/** A parsed image reference: at least one of `tag` and `digest` is set after `parseReference`. */
export interface Reference extends Repository {
  readonly tag?: string;
  /** `sha256:<64 hex>`. */
  readonly digest?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly artifactType?: string;
  readonly urls?: readonly string[];
  readonly platform?: Readonly<Record<string, unknown>>;
}

/** A manifest exactly as the registry served it: `bytes` are what gets copied, never re-serialised. */
export interface RawManifest {
  readonly mediaType: string;
  /** sha256 of `bytes`, checked against the requested digest when fetched by digest. */
  readonly digest: string;
  readonly bytes: Buffer;
}

/** What a request to a registry cost; the benchmark and `plan` report these. */
export interface RequestStats {
  requests: number;
  /** Per method and purpose, e.g. `GET manifest`, `HEAD blob`, `POST upload`, `PUT blob`, `GET token`. */
  byKind: Record<string, number>;
  bytesUploaded: number;
  bytesDownloaded: number;
}

/** Outcome of copying one blob into a target repository. */
export type BlobCopyOutcome = 'present' | 'mounted' | 'uploaded';

export interface BlobSource {
  readonly repo: Repository;
  readonly descriptor: Descriptor;
  /** Bytes already in memory (a config read during planning); saves the source GET. */
  readonly bytes?: Buffer;
  /**
   * The caller knows the target repository did not exist when the copy began, so it cannot hold the blob:
   * a 202 to the self-mount starts the upload without the HEAD kept for registries whose mounts say nothing.
   * (Blobs a crashed earlier attempt left there are still found by the self-mount where mounts work.)
   */
  readonly targetIsNew?: boolean;
}

/**
 * The registry operations the engine needs. Every method takes an AbortSignal last.
 * Not-found answers to existence questions are `undefined`/`false`, never errors; every other failure is
 * a `PromoteError` with a catalogue code.
 */
export interface Registry {
  /** HEAD a manifest by tag or digest; `undefined` on 404. */
  headManifest(ref: Reference, signal?: AbortSignal): Promise<Descriptor | undefined>;
  /** GET a manifest by tag or digest (full Accept list, 4 MiB cap, digest verified); throws MANIFEST_NOT_FOUND on 404. */
  getManifest(ref: Reference, signal?: AbortSignal): Promise<RawManifest>;
  /** GET that answers `undefined` on 404 (and on 401/403 when `absentIfDenied`). */
  findManifest(ref: Reference, options?: { absentIfDenied?: boolean }, signal?: AbortSignal): Promise<RawManifest | undefined>;
  /** PUT manifest bytes by tag or digest with Content-Type = mediaType; returns the digest the registry reports. */
  putManifest(ref: Reference, manifest: { mediaType: string; bytes: Buffer }, signal?: AbortSignal): Promise<string>;
  /** GET a whole blob into memory, refusing more than `maxBytes`, digest verified. */
  readBlob(repo: Repository, digest: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer>;
  /** Stream a blob; the caller must consume or destroy the stream. The digest is verified as it flows. */
  openBlob(repo: Repository, descriptor: Descriptor, signal?: AbortSignal): Promise<NodeJS.ReadableStream>;
  /** Upload bytes as a blob unless present (POST + PUT; a present blob costs one request). */
  pushBlob(repo: Repository, bytes: Buffer, mediaType?: string, signal?: AbortSignal): Promise<{ digest: string; outcome: BlobCopyOutcome }>;
  /** Copy one blob between repositories: mount on the same registry, else stream GET → PUT hashing the bytes. */
  copyBlob(source: BlobSource, target: Repository, signal?: AbortSignal): Promise<BlobCopyOutcome>;
  /**
   * All tags (follows `Link` pagination); `undefined` when the repository does not exist (404 NAME_UNKNOWN),
   * and with `absentIfDenied` also on 401/403 (registries that hide a missing repository behind a denial).
   */
  listTags(repo: Repository, options?: { absentIfDenied?: boolean }, signal?: AbortSignal): Promise<string[] | undefined>;
  /** Referrers of a digest through the API, or the `sha256-<hex>` tag schema when the API is unsupported. */
  listReferrers(repo: Repository, digest: string, signal?: AbortSignal): Promise<Descriptor[]>;
  /**
   * Makes `referrers` listed as referrers of `subject`: nothing to write where the registry has the referrers
   * API (it indexes manifests by their `subject`), else a read-modify-write of the `sha256-<hex>` fallback
   * index. With no index in the target, `template` (the source's fallback index) is written byte for byte
   * when it lists exactly what is needed, so that its digest is kept. Returns whether an index was written.
   */
  indexReferrers(repo: Repository, subject: string, referrers: readonly Descriptor[], options?: { template?: RawManifest }, signal?: AbortSignal): Promise<boolean>;
  /**
   * What is known of a registry's referrers API: `unsupported` after it answered like Distribution 2.8
   * (404 page, wrong content type), so that callers may rely on the fallback tag seen in a tag listing.
   */
  referrersApi?(registry: string): 'supported' | 'unsupported' | 'unknown';
  readonly stats: RequestStats;
}
