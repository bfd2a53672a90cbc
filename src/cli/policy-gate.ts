import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadPolicy, SignatureVerifier, type Policy } from '../cosign/index.js';
import { PromoteError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Registry } from '../oci/index.js';
import type { VerificationGate } from '../promote/index.js';
import type { CliIo } from './io.js';

/** Reads a policy file (YAML or JSON); key and trusted-root paths in it are relative to the file. */
export async function readPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new PromoteError('POLICY_INVALID', `${path}: cannot read the policy (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new PromoteError('POLICY_INVALID', `${path}: not YAML or JSON (${(e as Error).message})`, { cause: e });
  }
  try {
    return await loadPolicy(doc, { baseDir: dirname(resolve(path)) });
  } catch (e) {
    if (e instanceof PromoteError) throw new PromoteError(e.code, `${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * The verification gate of `copy --policy FILE`: the engine verifies the source before copying and the
 * target before tagging. Matches copy-command's `GateFactory`; wire it in `main.ts`:
 * `copy: (argv, io) => runCopy('copy', argv, io, createPolicyGate)`.
 */
export async function createPolicyGate(policyFile: string, registry: Registry, log: Logger, _io: CliIo): Promise<VerificationGate> {
  const policy = await readPolicyFile(policyFile);
  const verifier = new SignatureVerifier({ registry, log });
  return { scope: policy.scope, verify: (subject, signal) => verifier.verify(subject, policy, signal) };
}
