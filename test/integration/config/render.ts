/** Renders the kustomize directories under config/ with the real kubectl, for the manifest and apiserver tests. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

/** `kubectl kustomize <REPO_ROOT/dir>`, every document parsed (a YAML error fails the caller). */
export async function kustomize(dir: string): Promise<Manifest[]> {
  const { stdout } = await promisify(execFile)('kubectl', ['kustomize', `${REPO_ROOT}${dir}`], { maxBuffer: 32 * 1024 * 1024 });
  return parseManifests(stdout);
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    return value === null ? [] : [value as Manifest];
  });
}

/**
 * The manifests as one `v1` List in JSON, which kubectl reads back exactly. (YAML from the `yaml` package is
 * 1.2, where `yes` is a string; kubectl reads YAML 1.1, where an unquoted `yes` is `true`. And a stream that
 * starts with `{` is read as JSON, so `---` separators are not an option.)
 */
export function toList(manifests: readonly unknown[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests });
}

export function find(manifests: readonly Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in the rendered manifests`);
  return found;
}

/** Kinds that need prometheus-operator's CRDs, which a bare apiserver does not have. */
export function needsPrometheusOperator(m: Manifest): boolean {
  return m.apiVersion.startsWith('monitoring.coreos.com/');
}
