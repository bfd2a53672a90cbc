// The README's BundlePromotion reference, generated from the CRD so that the two cannot drift.
//
//   node --experimental-strip-types scripts/crd-reference.ts           print it and rewrite README.md's section
//   node --experimental-strip-types scripts/crd-reference.ts --check   exit 1 when README.md differs
//   … --readme=FILE                                                   another README (tests)
//
// (npm run crd-reference [-- --check]). Plain Node 24 with type stripping: no build step, no dependency
// beyond `yaml`, no relative imports (type stripping does not rewrite `.js` specifiers).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const START_MARKER = '<!-- crd-reference:start -->';
export const END_MARKER = '<!-- crd-reference:end -->';
export const CRD_PATH = fileURLToPath(new URL('../crds/bundlepromoter.dev_bundlepromotions.yaml', import.meta.url));
export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  format?: string;
}

interface Crd {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; shortNames?: string[]; categories?: string[] };
    versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
  };
}

export interface Row {
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  readonly default: string;
  readonly description: string;
}

/** One row per field below `root` (`spec` or `status`), depth first in declaration order. */
export function fieldRows(schema: Schema, root: string): Row[] {
  const rows: Row[] = [];
  const walk = (node: Schema, path: string): void => {
    const required = new Set(node.required ?? []);
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const childPath = `${path}.${name}`;
      rows.push({
        path: childPath,
        type: typeOf(child),
        required: required.has(name),
        default: child.default === undefined ? '' : JSON.stringify(child.default),
        description: oneLine(child.description ?? ''),
      });
      if (child.properties !== undefined) walk(child, childPath);
      if (child.items?.properties !== undefined) walk(child.items, `${childPath}[]`);
    }
  };
  walk(schema, root);
  return rows;
}

function typeOf(s: Schema): string {
  if (s.type === 'array') return `[]${typeOf(s.items ?? {})}${bounds(s.minItems, s.maxItems, ' items')}`;
  if (s.type === 'object' && typeof s.additionalProperties === 'object') return `map[string]${typeOf(s.additionalProperties)}`;
  let t = s.type ?? 'any';
  if (s.enum !== undefined) t += `: ${s.enum.map(String).join(' \\| ')}`;
  if (s.format === 'date-time') t += ' (RFC 3339)';
  return t + bounds(s.minimum, s.maximum, '');
}

function bounds(min: number | undefined, max: number | undefined, unit: string): string {
  if (min !== undefined && max !== undefined) return ` (${min}–${max}${unit})`;
  if (min !== undefined && min > 0) return ` (≥ ${min}${unit})`;
  if (max !== undefined) return ` (≤ ${max}${unit})`;
  return '';
}

/** Collapses whitespace, escapes `|` and, outside code spans, `<` (GitHub would read `<hex>` as a tag). */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim().replaceAll('|', '\\|');
  return flat
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replaceAll('<', '&lt;') : part))
    .join('`');
}

function table(rows: readonly Row[]): string {
  const lines = ['| field | type | default | description |', '|---|---|---|---|'];
  for (const r of rows) {
    const type = r.required ? `${r.type}, **required**` : r.type;
    lines.push(`| \`${r.path}\` | ${type} | ${r.default === '' ? '' : `\`${r.default}\``} | ${r.description} |`);
  }
  return lines.join('\n');
}

/** The README section, markers included. */
export function renderReference(crdText: string): string {
  const crd = parseYaml(crdText) as Crd;
  const { group, scope, names, versions } = crd.spec;
  const version = versions[0];
  if (version === undefined) throw new Error('the CRD has no version');
  const root = version.schema.openAPIV3Schema;
  const spec = root.properties?.['spec'];
  const status = root.properties?.['status'];
  if (spec === undefined || status === undefined) throw new Error('the CRD schema has no spec or status');
  const shortNames = (names.shortNames ?? []).map((n) => `\`${n}\``).join(', ');
  const categories = (names.categories ?? []).map((n) => `\`${n}\``).join(', ');
  return [
    START_MARKER,
    '<!-- Generated from crds/bundlepromoter.dev_bundlepromotions.yaml by `npm run crd-reference`: edit the CRD, then run it. -->',
    '',
    `## ${names.kind} reference`,
    '',
    `\`${group}/${version.name}\`, kind \`${names.kind}\` (${scope.toLowerCase()}, plural \`${names.plural}\`, short name ${shortNames}, category ${categories}).`,
    'The CRD (`crds/`, installed by `kubectl apply -k config/default`) is the validation of record: the apiserver checks',
    'every field below, and `bundle-promoter run --promotions DIR` checks promotion files against the same schema,',
    'with the same defaults. One difference, on purpose: the apiserver silently prunes a field it does not know',
    "(only kubectl's client-side validation warns), while in a promotion file an unknown field is an error, so that",
    'a typo (`verfy:`) cannot turn verification off.',
    '"Exactly one of" rules are `oneOf` lists of `required` (structural schemas allow nothing else there, and CEL',
    'rules need Kubernetes 1.25+). `spec.verify` is the policy document of `copy --policy FILE`',
    '([docs/verification.md](docs/verification.md)), with files replaced by a Secret, a ConfigMap or inline text;',
    '`dockerReference` takes only the object form `{match, reference}` here (a CRD field has one type).',
    '',
    '### spec',
    '',
    table(fieldRows(spec, 'spec')),
    '',
    '### status',
    '',
    'Written by the controller only, through the status subresource.',
    '',
    table(fieldRows(status, 'status')),
    END_MARKER,
  ].join('\n');
}

/** Replaces the section between the markers, or appends it at the end when the README has none. */
export function updateReadme(readme: string, section: string): string {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < start) return `${readme.replace(/\n*$/, '')}\n\n${section}\n`;
  return readme.slice(0, start) + section + readme.slice(end + END_MARKER.length);
}

function main(argv: readonly string[]): number {
  const readmePath = argv.find((a) => a.startsWith('--readme='))?.slice('--readme='.length) ?? README_PATH;
  const section = renderReference(readFileSync(CRD_PATH, 'utf8'));
  const readme = readFileSync(readmePath, 'utf8');
  const updated = updateReadme(readme, section);
  if (argv.includes('--check')) {
    if (updated === readme) return 0;
    process.stderr.write(`${readmePath}: the BundlePromotion reference differs from the CRD; run \`npm run crd-reference\`\n`);
    return 1;
  }
  process.stdout.write(`${section}\n`);
  if (updated !== readme) writeFileSync(readmePath, updated);
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
