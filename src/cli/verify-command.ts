import { readFile } from 'node:fs/promises';
import { DEFAULT_TLOG_MODE, loadPolicy, parseAnnotationFlags, SignatureVerifier, TLOG_MODES, type ArtifactVerification, type Policy, type PolicyDocument, type TlogMode } from '../cosign/index.js';
import { PromoteError } from '../errors.js';
import { formatRepository, parseReference } from '../oci/index.js';
import { UsageError, type CliIo } from './io.js';
import { commandLineValue, commandLogger, envValue, reportErrors, resolveDigest, parseCommandLine } from './command-support.js';
import { readPolicyFile } from './policy-gate.js';
import { createRegistry, registryOptions, registryUsage } from './registry-flags.js';

const options = {
  ...registryOptions,
  key: { type: 'string', multiple: true },
  annotations: { type: 'string', short: 'a', multiple: true },
  policy: { type: 'string' },
  tlog: { type: 'string' },
  'insecure-ignore-tlog': { type: 'boolean' },
  'trusted-root': { type: 'string' },
  'rekor-key': { type: 'string', multiple: true },
  'certificate-identity': { type: 'string' },
  'certificate-identity-regexp': { type: 'string' },
  'certificate-oidc-issuer': { type: 'string' },
  'certificate-oidc-issuer-regexp': { type: 'string' },
  'attestation-type': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

export const verifyUsage = `Usage: bundle-promoter verify (--key cosign.pub... | --certificate-identity... | --policy FILE) [flags] REF

Verifies the cosign signatures of REF (a tag is resolved to its digest): sigstore bundles attached as
OCI referrers (cosign v3) and layers of the sha256-<hex>.sig image (cosign v1/v2). Prints the verified
payloads as JSON, like 'cosign verify'; exits 1 with the reason of every signature otherwise.

      --key FILE                        PEM public key; each --key is an authority, any one suffices (repeatable)
  -a, --annotations k=v                 required signed annotation, exact string (repeatable; commas split, as in cosign)
      --policy FILE                     YAML/JSON policy (authorities, threshold, attestations…); -a adds annotations
      --tlog require|if-present|ignore  transparency-log evidence (default require, as cosign: every signature needs a
                                        log entry verified with --trusted-root or --rekor-key; without either, say
                                        --tlog ignore to trust the key alone; if-present lets a registry writer strip it)
      --insecure-ignore-tlog            cosign's spelling of --tlog ignore
      --trusted-root FILE               sigstore trusted_root.json: Rekor keys, Fulcio CAs, CT logs, TSAs
      --rekor-key FILE                  a Rekor public key PEM (default $SIGSTORE_REKOR_PUBLIC_KEY) (repeatable)
      --certificate-identity X          keyless: exact certificate SAN (or --certificate-identity-regexp R)
      --certificate-oidc-issuer X       keyless: exact OIDC issuer (or --certificate-oidc-issuer-regexp R)
      --attestation-type T              also require a verified attestation of this predicate type
                                        (custom, slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, link, vuln, openvex, or a URI)
${registryUsage}`;

/** cosign `--type` shorthands (pkg/cosign/attestation). */
const PREDICATE_TYPES: Readonly<Record<string, string>> = {
  custom: 'https://cosign.sigstore.dev/attestation/v1',
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  link: 'https://in-toto.io/Link/v1',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
};

type Values = NonNullable<ReturnType<typeof parseCommandLine<ReturnType<typeof parse>>>>['values'];

function parse(argv: string[]) {
  return { args: argv, options, allowPositionals: true, strict: true } as const;
}

export async function run(argv: string[], io: CliIo): Promise<number> {
  return reportErrors(io, verifyUsage, async () => {
    const parsed = parseCommandLine(parse(argv), verifyUsage, io);
    if (parsed === undefined) return 0;
    const { values, positionals } = parsed;
    if (positionals.length !== 1 || positionals[0] === undefined) throw new UsageError('exactly one image reference is required');
    const refText = positionals[0];
    const target = commandLineValue('REF', () => parseReference(refText));
    const policy = await policyFrom(values, io);
    const log = commandLogger(io, values['log-level']);
    const registry = await createRegistry(values, io, log);
    try {
      const { ref, digest } = await resolveDigest(target, registry, io.signal);
      const repo = { registry: ref.registry, repository: ref.repository };
      const verifier = new SignatureVerifier({ registry, log });
      const result = await verifier.verify({ repo, digest }, policy, io.signal);
      const where = `${formatRepository(repo)}@${digest}`;
      if (!result.passed) {
        io.stderr.write(failureText(where, result, policy.threshold));
        return 1;
      }
      io.stderr.write(successText(refText, policy, result));
      const payloads = result.signatures.filter((s) => s.passed && (s.format === 'legacy' || s.format === 'bundle')).map((s) => s.payload ?? null);
      io.stdout.write(`${JSON.stringify(payloads)}\n`);
      return 0;
    } finally {
      await registry.close();
    }
  });
}

async function policyFrom(values: Values, io: CliIo): Promise<Policy> {
  const annotations = commandLineValue('--annotations', () => parseAnnotationFlags(values.annotations ?? []));
  const keys = values.key ?? [];
  const keyless = ['certificate-identity', 'certificate-identity-regexp', 'certificate-oidc-issuer', 'certificate-oidc-issuer-regexp'] as const;
  const keylessGiven = keyless.some((f) => values[f] !== undefined);
  if (values.policy !== undefined) {
    const conflicting = ['key', 'tlog', 'insecure-ignore-tlog', 'trusted-root', 'rekor-key', 'attestation-type', ...keyless].filter((f) => values[f as keyof Values] !== undefined);
    if (conflicting.length > 0) throw new UsageError(`--policy cannot be combined with ${conflicting.map((f) => `--${f}`).join(', ')} (put them in the policy file)`);
    const fromFile = await readPolicyFile(values.policy);
    return Object.keys(annotations).length === 0 ? fromFile : { ...fromFile, annotations: { ...fromFile.annotations, ...annotations } };
  }
  if (keys.length === 0 && !keylessGiven) throw new UsageError('one of --key, --certificate-identity(-regexp) or --policy is required');
  if (values['insecure-ignore-tlog'] === true && values.tlog !== undefined && values.tlog !== 'ignore') {
    throw new UsageError(`--insecure-ignore-tlog contradicts --tlog ${values.tlog}`);
  }
  const tlog = values['insecure-ignore-tlog'] === true ? 'ignore' : (values.tlog ?? DEFAULT_TLOG_MODE);
  if (!TLOG_MODES.includes(tlog as TlogMode)) throw new UsageError(`--tlog must be one of ${TLOG_MODES.join(', ')}, got '${tlog}'`);

  const trustedRoot = values['trusted-root'];
  const rekorKeys = values['rekor-key'] ?? [];
  const envRekor = envValue(io, 'SIGSTORE_REKOR_PUBLIC_KEY');
  if (rekorKeys.length === 0 && envRekor !== undefined && envRekor !== '') rekorKeys.push(envRekor);
  if (tlog !== 'ignore' && trustedRoot === undefined && rekorKeys.length === 0) {
    throw new UsageError(
      values.tlog === undefined
        ? 'transparency-log evidence is required by default (--tlog require) and needs --trusted-root or --rekor-key to verify it; for signatures made without a log (cosign --tlog-upload=false) pass --tlog ignore to trust the key alone'
        : `--tlog ${tlog} needs --trusted-root or --rekor-key`,
    );
  }
  const trust = { ...(trustedRoot === undefined ? {} : { trustedRoot }), ...(rekorKeys.length === 0 ? {} : { rekorKeys }) };

  const authorities: PolicyDocument['authorities'] = keys.map((k) => ({ name: k, keys: [k], tlog: tlog as TlogMode, ...trust }));
  if (keylessGiven) {
    const identity = exactlyOne(values, 'certificate-identity', 'certificate-identity-regexp');
    const issuer = exactlyOne(values, 'certificate-oidc-issuer', 'certificate-oidc-issuer-regexp');
    if (trustedRoot === undefined) throw new UsageError('keyless verification needs --trusted-root (the Fulcio CAs)');
    authorities.push({
      name: `keyless:${identity.value}`,
      tlog: tlog as TlogMode,
      ...trust,
      keyless: {
        ...(identity.regexp ? { identityRegExp: identity.value } : { identity: identity.value }),
        ...(issuer.regexp ? { issuerRegExp: issuer.value } : { issuer: issuer.value }),
      },
    });
  }
  // Key files are read relative to the working directory, as every other path on the command line.
  await Promise.all(keys.map((k) => readFile(k).catch((e: NodeJS.ErrnoException) => {
    throw new PromoteError('KEY_INVALID', `--key ${k}: cannot read the public key (${e.code ?? e.message})`, { cause: e });
  })));
  const attestations = (values['attestation-type'] ?? []).map((t) => ({ predicateType: PREDICATE_TYPES[t] ?? t }));
  return loadPolicy({ authorities, annotations, attestations }, { baseDir: process.cwd() });
}

function exactlyOne(values: Values, exact: 'certificate-identity' | 'certificate-oidc-issuer', regexp: 'certificate-identity-regexp' | 'certificate-oidc-issuer-regexp'): { value: string; regexp: boolean } {
  const a = values[exact];
  const b = values[regexp];
  if ((a === undefined) === (b === undefined)) throw new UsageError(`keyless verification needs exactly one of --${exact} and --${regexp}`);
  return a !== undefined ? { value: a, regexp: false } : { value: b as string, regexp: true };
}

function successText(ref: string, policy: Policy, result: ArtifactVerification): string {
  const checks = ['The cosign claims were validated'];
  if (policy.authorities.some((a) => a.tlog === 'require')) checks.push('Existence of the claims in the transparency log was verified offline');
  else if (policy.authorities.some((a) => a.tlog === 'if-present')) checks.push('Transparency-log evidence, where present, was verified offline');
  else checks.push('Transparency-log evidence was NOT checked (tlog: ignore): trust rests on the key alone');
  if (policy.authorities.some((a) => a.keys.length > 0)) checks.push('The signatures were verified against the specified public key');
  if (policy.authorities.some((a) => a.keyless !== undefined)) checks.push('The code-signing certificate was verified using trusted certificate authority certificates');
  if (policy.attestations.length > 0) checks.push(`Attestations of type ${policy.attestations.map((a) => a.predicateType).join(', ')} were verified`);
  return [
    '',
    `Verification for ${ref} --`,
    'The following checks were performed on each of these signatures:',
    ...checks.map((c) => `  - ${c}`),
    `Authorities passed: ${result.authoritiesPassed.join(', ')}`,
    '',
  ].join('\n');
}

function failureText(where: string, result: ArtifactVerification, threshold: number): string {
  const lines = [`bundle-promoter: error: verification of ${where} failed: ${result.reasons.join('; ')}`];
  if (result.signersCounted !== undefined && result.signersCounted < threshold) {
    lines.push(`  distinct signers: ${result.signersCounted} of the ${threshold} the threshold requires (authorities passed: ${result.authoritiesPassed.join(', ') || 'none'})`);
  }
  for (const s of result.signatures) {
    lines.push(`  ${s.format} ${s.source}: ${s.passed ? `passed (${s.authorities.join(', ')})` : `${s.reason ?? 'failed'}${s.detail === undefined ? '' : ` (${s.detail})`}`}`);
  }
  if (result.attestationsMissing !== undefined) lines.push(`  missing attestations: ${result.attestationsMissing.join(', ')}`);
  if (result.reasons.includes('tlog evidence missing')) {
    lines.push(
      'hint: transparency-log evidence is required (the default, as in cosign). If these signatures were made without a',
      '      log (cosign --tlog-upload=false), verify with --tlog ignore (policy: tlog: ignore) to trust the key alone.',
    );
  }
  return `${lines.join('\n')}\n`;
}
