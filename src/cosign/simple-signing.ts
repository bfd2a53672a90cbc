/** cosign's simple-signing payload (sigstore/sigstore `pkg/signature/payload`), written and read byte-exactly. */
import { goJson, sortGoKeys } from '../oci/index.js';
import { isRecord } from './encoding.js';
import { parseStrictJson } from './strict-json.js';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';

export interface SimpleSigningInput {
  /** `registry/repository`, no tag or digest (what cosign writes). */
  readonly dockerReference: string;
  /** `sha256:<hex>` of the signed manifest. */
  readonly digest: string;
  /** `-a` annotations; empty or absent ⇒ `"optional":null`. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * The payload bytes exactly as cosign writes them: Go struct order, compact, `optional` keys sorted,
 * `<>&` escaped, `"optional":null` without annotations, no trailing newline.
 */
export function serializeSimpleSigningPayload(input: SimpleSigningInput): Buffer {
  const annotations = input.annotations ?? {};
  const doc = {
    critical: {
      identity: { 'docker-reference': input.dockerReference },
      image: { 'docker-manifest-digest': input.digest },
      type: SIMPLE_SIGNING_TYPE,
    },
    optional: Object.keys(annotations).length === 0 ? null : sortGoKeys(annotations),
  };
  return Buffer.from(goJson(doc), 'utf8');
}

/** The claims of a verified payload. Values are as signed: `digest` may be a non-string if the signer wrote one. */
export interface SimpleSigningClaims {
  readonly dockerReference: unknown;
  readonly digest: unknown;
  readonly type: unknown;
  /** `null` when absent or null. */
  readonly optional: Readonly<Record<string, unknown>> | null;
  /** The whole parsed document, for printing. */
  readonly document: Readonly<Record<string, unknown>>;
}

export type ParsedPayload<T> = { ok: true; value: T } | { ok: false; detail: string };

// Go's encoding/json matches struct fields case-insensitively (with Unicode folding: U+017F ſ ~ s,
// U+212A K ~ k). A key that folds to a field name without being it would be read by cosign as that field
// but not by us, so it is refused, at the levels that Go decodes into structs.
const STRUCT_FIELDS: ReadonlyArray<readonly [path: string, fields: readonly string[]]> = [
  ['', ['critical', 'optional']],
  ['critical', ['identity', 'image', 'type']],
  ['critical.identity', ['docker-reference']],
  ['critical.image', ['docker-manifest-digest']],
];

function fold(s: string): string {
  return s.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').toLowerCase();
}

/** Parses payload bytes as cosign reads them, refusing duplicate and case-ambiguous keys. */
export function parseSimpleSigningPayload(bytes: Buffer): ParsedPayload<SimpleSigningClaims> {
  const parsed = parseStrictJson(bytes.toString('utf8'));
  if (!parsed.ok) return { ok: false, detail: `payload: ${parsed.error}` };
  const doc = parsed.value;
  if (!isRecord(doc)) return { ok: false, detail: 'payload is not a JSON object' };
  for (const [path, fields] of STRUCT_FIELDS) {
    const obj = path === '' ? doc : path.split('.').reduce<unknown>((o, k) => (isRecord(o) ? o[k] : undefined), doc);
    if (!isRecord(obj)) continue;
    for (const key of Object.keys(obj)) {
      const f = fields.find((field) => fold(key) === field);
      if (f !== undefined && f !== key) return { ok: false, detail: `payload key ${JSON.stringify(key)} in ${path || 'the document'} is ambiguous with ${JSON.stringify(f)}` };
    }
  }
  const critical = doc['critical'];
  if (!isRecord(critical)) return { ok: false, detail: 'payload has no "critical" object' };
  const identity = critical['identity'];
  const image = critical['image'];
  if (identity !== undefined && identity !== null && !isRecord(identity)) return { ok: false, detail: 'payload critical.identity is not an object' };
  if (!isRecord(image)) return { ok: false, detail: 'payload has no critical.image object' };
  const optional = doc['optional'];
  if (optional !== undefined && optional !== null && !isRecord(optional)) return { ok: false, detail: 'payload "optional" is neither an object nor null' };
  return {
    ok: true,
    value: {
      dockerReference: isRecord(identity) ? identity['docker-reference'] : undefined,
      digest: image['docker-manifest-digest'],
      type: critical['type'],
      optional: isRecord(optional) ? optional : null,
      document: doc,
    },
  };
}
