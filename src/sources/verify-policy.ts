import { loadPolicy, type AuthorityDocument, type Policy, type PolicyDocument } from '../cosign/index.js';
import { PromoteError } from '../errors.js';
import type { ConfigReader } from './ports.js';
import type { AuthoritySpec, KeySource, VerifySpec } from './promotion.js';
import { readKeySource } from './registry-access.js';

/**
 * `spec.verify` → the one policy model (src/cosign/policy.ts): references become inline PEM and
 * trusted-root JSON, everything else is the same document `copy --policy FILE` reads.
 */
export async function policyFromSpec(spec: VerifySpec, namespace: string, reader: ConfigReader, signal?: AbortSignal): Promise<Policy> {
  const read = (s: KeySource) => readKeySource(reader, namespace, s, signal);
  const trustedRoot = async (s: KeySource, at: string): Promise<object> => {
    const text = await read(s);
    try {
      return JSON.parse(text) as object;
    } catch (e) {
      throw new PromoteError('POLICY_INVALID', `spec.verify.${at}: not a trusted-root JSON document`, { cause: e });
    }
  };
  const authoritiesOf = async (list: readonly AuthoritySpec[], prefix: string): Promise<AuthorityDocument[]> => {
    const out: AuthorityDocument[] = [];
    for (const [i, a] of list.entries()) {
      const at = `${prefix}authorities[${i}]`;
      const { trustedRoot: root, keys, rekorKeys, keyless, ...rest } = a;
      const keylessDoc = keyless === undefined ? undefined : (() => {
        const { trustedRoot: _root, ...identity } = keyless;
        return identity;
      })();
      out.push({
        ...rest,
        ...(keys ? { keys: await Promise.all(keys.map(read)) } : {}),
        ...(rekorKeys ? { rekorKeys: await Promise.all(rekorKeys.map(read)) } : {}),
        ...(root ? { trustedRoot: await trustedRoot(root, `${at}.trustedRoot`) } : {}),
        ...(keylessDoc ? { keyless: { ...keylessDoc, ...(keyless?.trustedRoot ? { trustedRoot: await trustedRoot(keyless.trustedRoot, `${at}.keyless.trustedRoot`) } : {}) } } : {}),
      });
    }
    return out;
  };
  // The same document shape as a policy file: flat shorthand or bundle:, plus images:.
  const { source: _source, target: _target, authorities: flat, bundle, images, threshold, ...policy } = spec;
  const authorities = flat as readonly AuthoritySpec[] | undefined; // absent when `bundle` is used
  // The CRD defaults the flat threshold to 1 (the apiserver fills it in); beside `bundle` that default is
  // not the user's, so it is dropped rather than refused as a mixed form.
  const keepThreshold = threshold !== undefined && !(bundle !== undefined && flat === undefined && threshold === 1);
  const document = {
    ...policy,
    ...(keepThreshold ? { threshold } : {}),
    ...(authorities === undefined ? {} : { authorities: await authoritiesOf(authorities, '') }),
    ...(bundle === undefined ? {} : { bundle: { ...bundle, authorities: await authoritiesOf(bundle.authorities, 'bundle.') } }),
    ...(images === undefined ? {} : { images: await Promise.all(images.map(async (r, i) => ({ ...r, authorities: await authoritiesOf(r.authorities, `images[${i}].`) }))) }),
  } as PolicyDocument;
  try {
    return await loadPolicy(document, { baseDir: '/nonexistent' });
  } catch (e) {
    if (e instanceof PromoteError) throw new PromoteError(e.code, `spec.verify: ${e.message}`, { cause: e });
    throw e;
  }
}
