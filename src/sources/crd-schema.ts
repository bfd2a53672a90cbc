import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { PromoteError } from '../errors.js';
import { API_GROUP, API_VERSION, KIND, type PromotionSpec } from './promotion.js';

/**
 * The BundlePromotion CRD shipped with the package (`crds/`, beside `src/` in the repository and beside
 * `dist/` in the npm package and the image: both `src/sources/` and `dist/sources/` are two levels down).
 */
export const CRD_FILE = fileURLToPath(new URL('../../crds/bundlepromoter.dev_bundlepromotions.yaml', import.meta.url));

/** Where a document came from, for messages. `index` is the 0-based position in the file; messages count from 1. */
export interface DocumentLocation {
  readonly file: string;
  readonly index: number;
}

export interface PromotionDocumentMetadata {
  readonly name: string;
  readonly namespace?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export type PromotionDocumentResult =
  | { readonly ok: true; readonly spec: PromotionSpec; readonly metadata: PromotionDocumentMetadata }
  | { readonly ok: false; readonly errors: readonly string[] };

type JsonSchema = Record<string, unknown>;

// ObjectMeta as the apiserver accepts it on a BundlePromotion (name required: files have no generateName).
// The server-managed fields are allowed so that `kubectl get -o yaml` output can be dropped into a directory.
const DNS_SUBDOMAIN = '^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$';
const DNS_LABEL = '^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$';
const STRING_MAP = { type: 'object', additionalProperties: { type: 'string' } };
const METADATA_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN },
    namespace: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS_LABEL },
    labels: STRING_MAP,
    annotations: STRING_MAP,
    uid: { type: 'string' },
    resourceVersion: { type: 'string' },
    generation: { type: 'integer' },
    creationTimestamp: { type: 'string' },
    deletionTimestamp: { type: 'string' },
    deletionGracePeriodSeconds: { type: 'integer' },
    selfLink: { type: 'string' },
    finalizers: { type: 'array', items: { type: 'string' } },
    ownerReferences: { type: 'array', items: { type: 'object' } },
    managedFields: { type: 'array', items: { type: 'object' } },
  },
};

/**
 * What a failed `pattern` means, by the field's name (the regular expressions themselves say little to a
 * reader). test/unit/sources/crd-schema.test.ts checks that every pattern of the CRD has an entry.
 */
export const PATTERN_HINTS: Readonly<Record<string, string>> = {
  bundle: 'must be a reference with a tag or a digest: registry/repository:tag or registry/repository@sha256:<64 hex>',
  repository: 'must be a repository without tag or digest: registry/repository, path in lowercase',
  name: 'must be a lowercase RFC 1123 name: a-z, 0-9, "-" and ".", starting and ending with a letter or digit',
  namespace: 'must be a lowercase RFC 1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit',
  key: 'must consist of letters, digits, "-", "_" and "."',
  tags: 'must be a tag: letters, digits, "_", "." and "-", at most 128, not starting with "." or "-"',
  insecure: 'must be a host or host:port',
  interval: 'must be a Go duration such as 30s, 5m or 1h30m (units ms, s, m, h)',
  reason: 'must be UpperCamelCase (letters, digits, "_", "," and ":")',
};

const FORMATS = {
  int32: { type: 'number' as const, validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 },
  int64: { type: 'number' as const, validate: (n: number) => Number.isSafeInteger(n) },
  'date-time': {
    type: 'string' as const,
    validate: (s: string) => /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)),
  },
};

const FORMAT_NAMES: Readonly<Record<string, string>> = {
  int32: 'a 32-bit integer',
  int64: 'a 64-bit integer',
  'date-time': 'an RFC 3339 date-time',
};

/**
 * The BundlePromotion schema of the CRD, compiled for ajv: validates whole documents (apiVersion, kind,
 * metadata, spec) the way the apiserver would, and fills the schema's defaults.
 *
 * Decision (README.md, BundlePromotion reference): unknown fields are errors, where the apiserver would
 * prune them silently. A file in a promotions directory has no `kubectl apply` in front of it to warn about
 * a typo, and a pruned `verfy:` would promote without verification.
 */
export class CrdSchema {
  static #shared: CrdSchema | undefined;
  readonly #validate: ValidateFunction;

  private constructor(jsonSchema: JsonSchema) {
    // strictRequired off: the oneOf branches name properties declared beside them, not inside them.
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, strictRequired: false, formats: FORMATS });
    this.#validate = ajv.compile(jsonSchema);
  }

  /** Reads and compiles the CRD at `file` (default: the one shipped with the package). */
  static load(file: string = CRD_FILE): CrdSchema {
    return new CrdSchema(promotionJsonSchema(readOpenApiSchema(file)));
  }

  /** The shipped CRD, read and compiled on first use. */
  static shared(): CrdSchema {
    CrdSchema.#shared ??= CrdSchema.load();
    return CrdSchema.#shared;
  }

  /**
   * Validates one parsed YAML document as a BundlePromotion. The input is not modified; on success `spec`
   * carries the schema's defaults. Every problem is reported (not just the first), each as
   * `FILE document N: FIELD.PATH: what is wrong`.
   */
  validate(doc: unknown, where: DocumentLocation): PromotionDocumentResult {
    const prefix = `${where.file} document ${where.index + 1}: `;
    const data = dropNulls(structuredClone(doc));
    if (this.#validate(data)) {
      const d = data as { metadata: PromotionDocumentMetadata; spec: PromotionSpec };
      const { name, namespace, annotations } = d.metadata;
      const metadata: PromotionDocumentMetadata = {
        name,
        ...(namespace !== undefined && { namespace }),
        ...(annotations !== undefined && { annotations }),
      };
      return { ok: true, spec: d.spec, metadata };
    }
    const messages = describeErrors(this.#validate.errors ?? [], data).map((m) => prefix + m);
    return { ok: false, errors: [...new Set(messages)] };
  }
}

/** {@link CrdSchema.validate} with the CRD shipped with the package. */
export function validatePromotionDocument(doc: unknown, where: DocumentLocation): PromotionDocumentResult {
  return CrdSchema.shared().validate(doc, where);
}

/** The served version's `openAPIV3Schema` of the CRD in `file`. */
export function readOpenApiSchema(file: string): JsonSchema {
  let crd: unknown;
  try {
    crd = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PromoteError('INVALID_CONFIG', `cannot read the BundlePromotion CRD ${file}: ${(e as Error).message}`, { cause: e });
  }
  const versions = (crd as { spec?: { versions?: { name?: string; schema?: { openAPIV3Schema?: JsonSchema } }[] } })?.spec?.versions;
  const schema = versions?.find((v) => v.name === API_VERSION)?.schema?.openAPIV3Schema;
  if (schema === undefined) throw new PromoteError('INVALID_CONFIG', `${file} has no ${API_VERSION} openAPIV3Schema`);
  return schema;
}

/**
 * Turns the CRD's structural schema into the JSON Schema of a whole document for ajv: `x-kubernetes-*`
 * dropped (list-type `set` becomes `uniqueItems`), objects closed (`additionalProperties: false` where the
 * apiserver would prune), `metadata` spelled out, apiVersion and kind pinned.
 */
export function promotionJsonSchema(openApi: JsonSchema): JsonSchema {
  const root = convert(openApi);
  const properties = { ...(root['properties'] as Record<string, JsonSchema>) };
  properties['apiVersion'] = { ...properties['apiVersion'], const: `${API_GROUP}/${API_VERSION}` };
  properties['kind'] = { ...properties['kind'], const: KIND };
  properties['metadata'] = METADATA_SCHEMA;
  const required = new Set([...((root['required'] as string[] | undefined) ?? []), 'apiVersion', 'kind', 'metadata']);
  return { ...root, properties, required: [...required] };
}

function convert(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'properties') {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, JsonSchema>).map(([p, s]) => [p, convert(s)]));
    } else if (k === 'items' || k === 'additionalProperties' || k === 'not') {
      out[k] = typeof v === 'object' && v !== null ? convert(v as JsonSchema) : v;
    } else if (k === 'oneOf' || k === 'anyOf' || k === 'allOf') {
      out[k] = (v as JsonSchema[]).map(convert);
    } else {
      out[k] = v;
    }
  }
  if (node['x-kubernetes-list-type'] === 'set') out['uniqueItems'] = true;
  const open = node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node['type'] === 'object' && node['properties'] !== undefined && node['additionalProperties'] === undefined && !open) {
    out['additionalProperties'] = false;
  }
  return out;
}

/** Like the apiserver (1.20+), a null in an object is treated as an absent field: `verify:` alone in YAML. */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNulls(x);
  return out;
}

function describeErrors(errors: readonly ErrorObject[], data: unknown): string[] {
  const out: string[] = [];
  // A value of the wrong type fails its format and bounds too; saying it is of the wrong type is enough.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  for (const e of errors) {
    // The branches of a oneOf only say "required"; the oneOf error itself says what is wrong.
    if (e.schemaPath.includes('/oneOf/')) continue;
    if (e.keyword !== 'type' && wrongType.has(e.instancePath)) continue;
    const path = pointerToPath(e.instancePath, data);
    switch (e.keyword) {
      case 'required':
        out.push(`${appendField(path, String(e.params['missingProperty']))}: is required`);
        break;
      case 'additionalProperties': {
        const field = String(e.params['additionalProperty']);
        const allowed = Object.keys((e.parentSchema?.['properties'] as object | undefined) ?? {});
        const near = allowed.find((a) => editDistance(a.toLowerCase(), field.toLowerCase()) <= 2);
        const hint = near === undefined ? `allowed: ${allowed.join(', ')}` : `did you mean "${near}"?`;
        out.push(`${appendField(path, field)}: unknown field (${hint})`);
        break;
      }
      case 'oneOf': {
        const names = (e.schema as { required?: string[] }[]).map((b) => (b.required ?? []).join(' and '));
        const passing = e.params['passingSchemas'] as number[] | null;
        const detail =
          passing === null ? 'none is set' : `${passing.map((i) => names[i] ?? '?').join(' and ')} are set`;
        out.push(`${label(path)}: needs exactly one of ${names.join(', ')} (${detail})`);
        break;
      }
      default:
        out.push(`${label(path)}: ${describeValue(e, path)}`);
    }
  }
  return out;
}

function describeValue(e: ErrorObject, path: string): string {
  const got = ` (got ${JSON.stringify(e.data)})`;
  switch (e.keyword) {
    case 'enum':
      return `must be one of ${(e.params['allowedValues'] as unknown[]).map(String).join(', ')}${got}`;
    case 'const':
      return `must be ${String(e.params['allowedValue'])}${got}`;
    case 'type': {
      const type = String(e.params['type']);
      const article = type === 'integer' || type === 'object' || type === 'array' ? 'an' : 'a';
      const quote = type === 'string' && /annotations[.[]/.test(path) && typeof e.data !== 'object' ? `; quote it in YAML: "${String(e.data)}"` : '';
      return `must be ${article} ${type === 'array' ? 'array (list)' : type}, got ${typeof e.data} ${JSON.stringify(e.data)}${quote}`;
    }
    case 'pattern': {
      const field = lastField(path);
      return `${PATTERN_HINTS[field] ?? `must match ${String(e.params['pattern'])}`}${got}`;
    }
    case 'format':
      return `must be ${FORMAT_NAMES[String(e.params['format'])] ?? String(e.params['format'])}${got}`;
    case 'minimum':
      return `must be at least ${String(e.params['limit'])}${got}`;
    case 'maximum':
      return `must be at most ${String(e.params['limit'])}${got}`;
    case 'minLength':
      return e.params['limit'] === 1 ? 'must not be empty' : `must be at least ${String(e.params['limit'])} characters long`;
    case 'maxLength':
      return `must be at most ${String(e.params['limit'])} characters long`;
    case 'minItems':
      return `must have at least ${String(e.params['limit'])} item(s)`;
    case 'maxItems':
      return `must have at most ${String(e.params['limit'])} items`;
    case 'uniqueItems':
      return `must not repeat an item (items ${String(e.params['j'])} and ${String(e.params['i'])} are equal)`;
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

function label(path: string): string {
  return path === '' ? '(document)' : path;
}

/** `/spec/verify/authorities/0/tlog` → `spec.verify.authorities[0].tlog`, looking at the data for arrays. */
function pointerToPath(pointer: string, data: unknown): string {
  if (pointer === '') return '';
  let path = '';
  let node = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node)) {
      path += `[${seg}]`;
      node = node[Number(seg)];
    } else {
      path = appendField(path, seg);
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[seg] : undefined;
    }
  }
  return path;
}

/** `a.b` + `c` → `a.b.c`; a key that is no identifier is quoted: `metadata.annotations["example.com/x"]`. */
function appendField(path: string, field: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(field)) return `${path}[${JSON.stringify(field)}]`;
  return path === '' ? field : `${path}.${field}`;
}

/** The field a path ends in, skipping array indices: `spec.target.tags[1]` → `tags`. */
function lastField(path: string): string {
  const m = /([A-Za-z_][A-Za-z0-9_-]*)(?:\[\d+\])*$/.exec(path);
  return m?.[1] ?? '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
