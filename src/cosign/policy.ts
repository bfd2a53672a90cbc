import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PromoteError } from '../errors.js';
import { isRecord } from './encoding.js';
import { COSIGN_SIGN_PREDICATE } from './in-toto.js';
import { parsePublicKey, type VerificationKey } from './public-key.js';
import { EMPTY_TRUST_ROOT, loadTrustRoot, mergeTrustRoots, parseTrustRoot, rekorKeyTrustRoot, type TrustRoot } from './trust-root.js';

/**
 * What to do with transparency-log evidence.
 * - `require`: a log entry verified against the authority's trusted root or Rekor keys must be present.
 *   The default, as for `cosign verify --key` (docs/verification.md#transparency-log).
 * - `if-present`: no entry passes; an entry that is present must verify. Explicit only, and only with log
 *   keys: the evidence annotation is unsigned, so anyone who can write the signature image can strip it.
 * - `ignore`: entries are not looked at (cosign `--insecure-ignore-tlog`): trust rests on the key alone.
 */
export type TlogMode = 'require' | 'if-present' | 'ignore';
export const TLOG_MODES: readonly TlogMode[] = ['require', 'if-present', 'ignore'];
export const DEFAULT_TLOG_MODE: TlogMode = 'require';

export interface KeylessIdentity {
  /** Exact certificate SAN (email or URI). Exactly one of `identity` and `identityRegExp`. */
  readonly identity?: string;
  /** JS regular expression tested against the SAN (unanchored, like cosign's Go regexp match). */
  readonly identityRegExp?: RegExp;
  /** Exact OIDC issuer (Fulcio extension). Exactly one of `issuer` and `issuerRegExp`. */
  readonly issuer?: string;
  readonly issuerRegExp?: RegExp;
}

export interface Authority {
  readonly name: string;
  /** Public keys; a signature by any of them satisfies the authority. Empty for keyless authorities. */
  readonly keys: readonly VerificationKey[];
  /** Certificate identity for keyless (Fulcio) signatures; its CAs come from `trust`. */
  readonly keyless?: KeylessIdentity;
  readonly tlog: TlogMode;
  /** Log keys, CAs, CT logs and TSAs. Empty unless a trusted root or Rekor key was given. */
  readonly trust: TrustRoot;
}

export type DockerReferenceMatch = 'off' | 'exact' | 'repository';

/** Who must sign one kind of subject, and what. */
export interface SubjectRules {
  readonly authorities: readonly Authority[];
  /** Required signed annotations: subset, exact string equality. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Distinct signers (each for its own authority) that must pass. @defaultValue 1 */
  readonly threshold: number;
}

/** The rules for images whose repository matches a glob (`*` within a path segment, `**` across, `?` one character). */
export interface ImageRules extends SubjectRules {
  readonly match: string;
  readonly matcher: RegExp;
}

export interface Policy extends SubjectRules {
  /*
   * `authorities`, `annotations` and `threshold` are the bundle's rules (`bundle:` in the document, or the
   * flat shorthand). They also apply to images when `images` is empty.
   */
  /**
   * Rules for the images a bundle references (`scope: all`), first match by repository glob. Empty: images
   * use the bundle's rules. Non-empty: an image no rule matches fails. @defaultValue []
   */
  readonly images: readonly ImageRules[];
  /** Verify only the bundle, or every image it references (the engine decides what to verify). @defaultValue 'bundle' */
  readonly scope: 'bundle' | 'all';
  /** Attestations that must exist, verified by one of the authorities. @defaultValue [] */
  readonly attestations: readonly { readonly predicateType: string }[];
  /**
   * Opt-in check of the payload's `critical.identity.docker-reference` (cosign ignores it). `reference`
   * defaults to the verified repository (`registry/repository`). @defaultValue { match: 'off' }
   */
  readonly dockerReference: { readonly match: DockerReferenceMatch; readonly reference?: string };
  /** Opt-in check that `critical.type` is `cosign container image signature`. @defaultValue false */
  readonly checkType: boolean;
  /** Predicate types that make a sigstore bundle a signature. @defaultValue ['https://sigstore.dev/cosign/sign/v1'] */
  readonly signaturePredicateTypes: readonly string[];
}

export interface AuthorityDocument {
  name?: string;
  keys?: string[];
  keyless?: { identity?: string; identityRegExp?: string; issuer?: string; issuerRegExp?: string; trustedRoot?: string | object };
  tlog?: TlogMode;
  trustedRoot?: string | object;
  rekorKeys?: string[];
}

export interface SubjectRulesDocument {
  authorities: AuthorityDocument[];
  annotations?: Record<string, string>;
  threshold?: number;
}

/**
 * The plain-object form of a policy (YAML/JSON file, CRD field). Either the flat shorthand (`authorities`,
 * `annotations`, `threshold` at the top: the bundle's rules) or `bundle:`; `images:` adds per-repository
 * rules for the images.
 */
export interface PolicyDocument {
  authorities?: AuthorityDocument[];
  annotations?: Record<string, string>;
  threshold?: number;
  bundle?: SubjectRulesDocument;
  images?: (SubjectRulesDocument & { match: string })[];
  scope?: 'bundle' | 'all';
  attestations?: { predicateType: string }[];
  dockerReference?: DockerReferenceMatch | { match: DockerReferenceMatch; reference?: string };
  checkType?: boolean;
  signaturePredicateTypes?: string[];
}

export interface LoadPolicyOptions {
  /** Directory that relative key and trusted-root paths are resolved against. */
  baseDir: string;
}

function invalid(field: string, what: string, cause?: unknown): PromoteError {
  return new PromoteError('POLICY_INVALID', `policy ${field}: ${what}`, cause === undefined ? undefined : { cause });
}

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], at: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw invalid(at === '' ? k : `${at}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

/**
 * Parses a policy from a plain object (a YAML/JSON file, later the CRD), reading key and trusted-root
 * files relative to `baseDir`. Every problem is `POLICY_INVALID` naming the field.
 */
export async function loadPolicy(source: unknown, options: LoadPolicyOptions): Promise<Policy> {
  if (!isRecord(source)) throw invalid('(document)', 'must be an object');
  onlyKeys(source, ['authorities', 'annotations', 'threshold', 'bundle', 'images', 'scope', 'attestations', 'dockerReference', 'checkType', 'signaturePredicateTypes'], '');
  const flat = ['authorities', 'annotations', 'threshold'].filter((k) => source[k] !== undefined);
  let bundle: SubjectRules;
  if (source['bundle'] !== undefined) {
    if (flat.length > 0) throw invalid(flat[0] ?? 'authorities', 'cannot be combined with bundle (the flat form is shorthand for bundle: move it there)');
    if (!isRecord(source['bundle'])) throw invalid('bundle', 'must be an object with authorities');
    onlyKeys(source['bundle'], ['authorities', 'annotations', 'threshold'], 'bundle');
    bundle = await parseRules(source['bundle'], 'bundle.', options.baseDir);
  } else {
    bundle = await parseRules(source, '', options.baseDir);
  }
  const images: ImageRules[] = [];
  const rawImages = source['images'];
  if (rawImages !== undefined) {
    if (!Array.isArray(rawImages) || rawImages.length === 0) throw invalid('images', 'must be a non-empty list of {match, authorities}');
    for (const [i, r] of rawImages.entries()) {
      const at = `images[${i}]`;
      if (!isRecord(r)) throw invalid(at, 'must be an object with match and authorities');
      onlyKeys(r, ['match', 'authorities', 'annotations', 'threshold'], at);
      const match = r['match'];
      if (typeof match !== 'string' || match === '') throw invalid(`${at}.match`, 'must be a repository glob such as registry.example.com/team/*');
      images.push({ match, matcher: globToRegExp(match), ...(await parseRules(r, `${at}.`, options.baseDir)) });
    }
  }

  const scope = source['scope'] ?? 'bundle';
  if (scope !== 'bundle' && scope !== 'all') throw invalid('scope', `must be "bundle" or "all", got ${JSON.stringify(scope)}`);

  const attestations: { predicateType: string }[] = [];
  const rawAtt = source['attestations'];
  if (rawAtt !== undefined) {
    if (!Array.isArray(rawAtt)) throw invalid('attestations', 'must be a list');
    for (const [i, a] of rawAtt.entries()) {
      if (!isRecord(a)) throw invalid(`attestations[${i}]`, 'must be an object with predicateType');
      onlyKeys(a, ['predicateType'], `attestations[${i}]`);
      if (typeof a['predicateType'] !== 'string' || a['predicateType'] === '') throw invalid(`attestations[${i}].predicateType`, 'must be a non-empty string');
      attestations.push({ predicateType: a['predicateType'] });
    }
  }

  let dockerReference: Policy['dockerReference'] = { match: 'off' };
  const rawRef = source['dockerReference'];
  if (rawRef !== undefined) {
    const match = isRecord(rawRef) ? rawRef['match'] : rawRef;
    if (match !== 'off' && match !== 'exact' && match !== 'repository') throw invalid('dockerReference', `must be "off", "exact" or "repository", got ${JSON.stringify(match)}`);
    if (isRecord(rawRef)) {
      onlyKeys(rawRef, ['match', 'reference'], 'dockerReference');
      const ref = rawRef['reference'];
      if (ref !== undefined && (typeof ref !== 'string' || ref === '')) throw invalid('dockerReference.reference', 'must be a non-empty string');
      dockerReference = ref === undefined ? { match } : { match, reference: ref };
    } else {
      dockerReference = { match };
    }
  }

  const checkType = source['checkType'] ?? false;
  if (typeof checkType !== 'boolean') throw invalid('checkType', 'must be a boolean');

  let signaturePredicateTypes: string[] = [COSIGN_SIGN_PREDICATE];
  const rawPred = source['signaturePredicateTypes'];
  if (rawPred !== undefined) {
    if (!Array.isArray(rawPred) || rawPred.length === 0 || !rawPred.every((p) => typeof p === 'string' && p !== '')) {
      throw invalid('signaturePredicateTypes', 'must be a non-empty list of strings');
    }
    signaturePredicateTypes = rawPred as string[];
  }

  if (images.length > 0 && scope !== 'all') throw invalid('images', 'applies only with scope: all (scope: bundle verifies no images)');
  return { ...bundle, images, scope, attestations, dockerReference, checkType, signaturePredicateTypes };
}

/** `authorities`, `annotations`, `threshold` of one kind of subject; `at` prefixes field names (`bundle.`). */
async function parseRules(source: Record<string, unknown>, at: string, baseDir: string): Promise<SubjectRules> {
  const rawAuthorities = source['authorities'];
  if (!Array.isArray(rawAuthorities) || rawAuthorities.length === 0) throw invalid(`${at}authorities`, 'must be a non-empty list');
  const authorities: Authority[] = [];
  for (const [i, a] of rawAuthorities.entries()) authorities.push(await parseAuthority(a, `${at}authorities[${i}]`, i, baseDir));
  const names = new Set<string>();
  for (const [i, a] of authorities.entries()) {
    if (names.has(a.name)) throw invalid(`${at}authorities[${i}].name`, `duplicate authority name ${JSON.stringify(a.name)}`);
    names.add(a.name);
  }

  const annotations: Record<string, string> = {};
  const rawAnn = source['annotations'];
  if (rawAnn !== undefined && rawAnn !== null) {
    if (!isRecord(rawAnn)) throw invalid(`${at}annotations`, 'must be a map of strings');
    for (const [k, v] of Object.entries(rawAnn)) {
      if (typeof v !== 'string') {
        throw invalid(`${at}annotations.${k}`, `must be a string, got ${typeof v} ${JSON.stringify(v)} (quote it in YAML: "${String(v)}"); signed annotations are compared as exact strings`);
      }
      Object.defineProperty(annotations, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }

  const threshold = source['threshold'] ?? 1;
  if (!Number.isSafeInteger(threshold) || (threshold as number) < 1) throw invalid(`${at}threshold`, 'must be a positive integer');
  if ((threshold as number) > authorities.length) throw invalid(`${at}threshold`, `is ${String(threshold)} but only ${authorities.length} authorities are defined`);
  return { authorities, annotations, threshold: threshold as number };
}

/** A repository glob: `*` any run within one path segment, `**` any run across segments, `?` one character. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'u');
}

/** The rules that apply to a subject: the bundle's, or for an image the first `images` rule matching its repository. */
export function rulesFor(policy: Policy, subject: { kind?: 'bundle' | 'image'; repository?: string }): SubjectRules | undefined {
  if (subject.kind !== 'image' || policy.images.length === 0) return policy;
  const repo = subject.repository ?? '';
  return policy.images.find((r) => r.matcher.test(repo));
}

async function parseAuthority(a: unknown, at: string, index: number, baseDir: string): Promise<Authority> {
  if (!isRecord(a)) throw invalid(at, 'must be an object');
  onlyKeys(a, ['name', 'keys', 'keyless', 'tlog', 'trustedRoot', 'rekorKeys'], at);
  const tlogSet = a['tlog'] !== undefined;
  const tlog = a['tlog'] ?? DEFAULT_TLOG_MODE;
  if (!TLOG_MODES.includes(tlog as TlogMode)) throw invalid(`${at}.tlog`, `must be one of ${TLOG_MODES.join(', ')}, got ${JSON.stringify(tlog)}`);

  const keys: VerificationKey[] = [];
  const rawKeys = a['keys'];
  if (rawKeys !== undefined) {
    if (!Array.isArray(rawKeys)) throw invalid(`${at}.keys`, 'must be a list of PEM keys or file paths');
    for (const [j, k] of rawKeys.entries()) keys.push(await keyFrom(k, `${at}.keys[${j}]`, baseDir));
  }

  const roots: TrustRoot[] = [];
  if (a['trustedRoot'] !== undefined) roots.push(await trustRootFrom(a['trustedRoot'], `${at}.trustedRoot`, baseDir));
  const rawRekor = a['rekorKeys'];
  if (rawRekor !== undefined) {
    if (!Array.isArray(rawRekor)) throw invalid(`${at}.rekorKeys`, 'must be a list of PEM keys or file paths');
    for (const [j, k] of rawRekor.entries()) roots.push(await rekorKeyFrom(k, `${at}.rekorKeys[${j}]`, baseDir));
  }

  let keyless: KeylessIdentity | undefined;
  const rawKeyless = a['keyless'];
  if (rawKeyless !== undefined) {
    if (!isRecord(rawKeyless)) throw invalid(`${at}.keyless`, 'must be an object');
    onlyKeys(rawKeyless, ['identity', 'identityRegExp', 'issuer', 'issuerRegExp', 'trustedRoot'], `${at}.keyless`);
    keyless = parseIdentity(rawKeyless, `${at}.keyless`);
    if (rawKeyless['trustedRoot'] !== undefined) roots.push(await trustRootFrom(rawKeyless['trustedRoot'], `${at}.keyless.trustedRoot`, baseDir));
  }

  if ((keys.length === 0) === (keyless === undefined)) throw invalid(at, 'needs either keys or keyless (exactly one of them)');
  const trust = roots.length === 0 ? EMPTY_TRUST_ROOT : mergeTrustRoots(roots);
  if (keyless !== undefined && trust.certificateAuthorities.length === 0) {
    throw invalid(`${at}.keyless.trustedRoot`, 'a keyless authority needs a trusted root with certificate authorities');
  }
  // Decision (docs/verification.md#transparency-log): with no log keys there is nothing to verify log
  // evidence against, so the default cannot be met; the policy must say `tlog: ignore` out loud.
  if (tlog !== 'ignore' && trust.tlogs.length === 0) {
    const fix = 'set trustedRoot or rekorKeys, or tlog: ignore to trust the key alone (cosign --insecure-ignore-tlog)';
    if (!tlogSet) throw invalid(`${at}.tlog`, `not set: transparency-log evidence is required by default, but the authority has no trusted root or Rekor key to verify it with; ${fix}`);
    throw invalid(`${at}.tlog`, `${JSON.stringify(tlog)} needs log keys to verify evidence against; ${fix}`);
  }

  const rawName = a['name'];
  if (rawName !== undefined && (typeof rawName !== 'string' || rawName === '')) throw invalid(`${at}.name`, 'must be a non-empty string');
  const name = (rawName as string | undefined) ?? `authority-${index + 1}`;
  const base = { name, keys, tlog: tlog as TlogMode, trust };
  return keyless === undefined ? base : { ...base, keyless };
}

function parseIdentity(k: Record<string, unknown>, at: string): KeylessIdentity {
  const str = (f: string): string | undefined => {
    const v = k[f];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') throw invalid(`${at}.${f}`, 'must be a non-empty string');
    return v;
  };
  const re = (f: string): RegExp | undefined => {
    const v = str(f);
    if (v === undefined) return undefined;
    try {
      return new RegExp(v, 'u');
    } catch (e) {
      throw invalid(`${at}.${f}`, `is not a valid regular expression (${(e as Error).message})`, e);
    }
  };
  const identity = str('identity');
  const identityRegExp = re('identityRegExp');
  const issuer = str('issuer');
  const issuerRegExp = re('issuerRegExp');
  if ((identity === undefined) === (identityRegExp === undefined)) throw invalid(at, 'needs exactly one of identity and identityRegExp');
  if ((issuer === undefined) === (issuerRegExp === undefined)) throw invalid(at, 'needs exactly one of issuer and issuerRegExp');
  return {
    ...(identity === undefined ? {} : { identity }),
    ...(identityRegExp === undefined ? {} : { identityRegExp }),
    ...(issuer === undefined ? {} : { issuer }),
    ...(issuerRegExp === undefined ? {} : { issuerRegExp }),
  };
}

/** A PEM string (contains `-----BEGIN`) or a path relative to `baseDir`. */
async function pemOrFile(v: unknown, at: string, baseDir: string): Promise<{ text: string; source: string }> {
  if (typeof v !== 'string' || v === '') throw invalid(at, 'must be a PEM string or a file path');
  if (v.includes('-----BEGIN')) return { text: v, source: `${at} (inline)` };
  const path = resolve(baseDir, v);
  try {
    return { text: await readFile(path, 'utf8'), source: path };
  } catch (e) {
    throw invalid(at, `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
}

async function keyFrom(v: unknown, at: string, baseDir: string): Promise<VerificationKey> {
  const { text, source } = await pemOrFile(v, at, baseDir);
  try {
    return parsePublicKey(text, source);
  } catch (e) {
    throw invalid(at, (e as Error).message, e);
  }
}

async function rekorKeyFrom(v: unknown, at: string, baseDir: string): Promise<TrustRoot> {
  const { text, source } = await pemOrFile(v, at, baseDir);
  try {
    return rekorKeyTrustRoot(text, source);
  } catch (e) {
    throw invalid(at, (e as Error).message, e);
  }
}

async function trustRootFrom(v: unknown, at: string, baseDir: string): Promise<TrustRoot> {
  try {
    if (isRecord(v)) return parseTrustRoot(v, `${at} (inline)`);
    if (typeof v !== 'string' || v === '') throw invalid(at, 'must be a file path or an inline trusted-root object');
    return await loadTrustRoot(resolve(baseDir, v));
  } catch (e) {
    if (e instanceof PromoteError && e.message.startsWith(`policy ${at}`)) throw e;
    throw invalid(at, (e as Error).message, e);
  }
}
