import { loadPolicy, type Policy, type PolicyDocument } from '../cosign/index.js';
import { PromoteError } from '../errors.js';
import type { ConfigReader } from './ports.js';
import type { KeySource, VerifySpec } from './promotion.js';
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
  const authorities: PolicyDocument['authorities'] = [];
  for (const [i, a] of spec.authorities.entries()) {
    const at = `authorities[${i}]`;
    const { trustedRoot: root, keys, rekorKeys, keyless, ...rest } = a;
    const keylessDoc = keyless === undefined ? undefined : (() => {
      const { trustedRoot: _root, ...identity } = keyless;
      return identity;
    })();
    authorities.push({
      ...rest,
      ...(keys ? { keys: await Promise.all(keys.map(read)) } : {}),
      ...(rekorKeys ? { rekorKeys: await Promise.all(rekorKeys.map(read)) } : {}),
      ...(root ? { trustedRoot: await trustedRoot(root, `${at}.trustedRoot`) } : {}),
      ...(keylessDoc ? { keyless: { ...keylessDoc, ...(keyless?.trustedRoot ? { trustedRoot: await trustedRoot(keyless.trustedRoot, `${at}.keyless.trustedRoot`) } : {}) } } : {}),
    });
  }
  const { source: _source, target: _target, authorities: _a, ...policy } = spec;
  const document = { ...policy, authorities } as PolicyDocument;
  try {
    return await loadPolicy(document, { baseDir: '/nonexistent' });
  } catch (e) {
    if (e instanceof PromoteError) throw new PromoteError(e.code, `spec.verify: ${e.message}`, { cause: e });
    throw e;
  }
}
