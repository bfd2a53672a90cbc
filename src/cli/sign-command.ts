import { readFile } from 'node:fs/promises';
import { ImageSigner, parseAnnotationFlags, parsePrivateKey } from '../cosign/index.js';
import { PromoteError } from '../errors.js';
import { formatRepository, parseReference } from '../oci/index.js';
import { readAll, UsageError, type CliIo } from './io.js';
import { commandLineValue, commandLogger, envValue, reportErrors, resolveDigest, parseCommandLine } from './command-support.js';
import { createRegistry, registryOptions, registryUsage } from './registry-flags.js';

const options = {
  ...registryOptions,
  key: { type: 'string' },
  annotations: { type: 'string', short: 'a', multiple: true },
  'new-bundle-format': { type: 'boolean' },
  'password-stdin': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const signUsage = `Usage: bundle-promoter sign --key cosign.key [-a k=v]... [--new-bundle-format] [flags] REF

Signs REF (a tag is resolved to its digest) with a cosign private key, as 'cosign sign --key' does:
appends a simple-signing layer to the sha256-<hex>.sig image (an identical signature is not added twice),
or with --new-bundle-format attaches a sigstore bundle (cosign v3) as an OCI referrer. No transparency
log entry is made (cosign --tlog-upload=false). The key password comes from $COSIGN_PASSWORD or stdin.

      --key FILE               cosign private key (ENCRYPTED SIGSTORE/COSIGN PRIVATE KEY, or plain PEM)
  -a, --annotations k=v        annotation to sign (repeatable; commas split, as in cosign)
      --new-bundle-format      write a sigstore bundle referrer instead of a .sig layer
      --password-stdin         read the key password from standard input
  $COSIGN_DOCKER_MEDIA_TYPES=1 creates a new .sig image with Docker media types.
${registryUsage}`;

export async function run(argv: string[], io: CliIo): Promise<number> {
  return reportErrors(io, signUsage, async () => {
    const parsed = parseCommandLine({ args: argv, options, allowPositionals: true, strict: true }, signUsage, io);
    if (parsed === undefined) return 0;
    const { values, positionals } = parsed;
    const refText = positionals[0];
    if (positionals.length !== 1 || refText === undefined) throw new UsageError('exactly one image reference is required');
    const subject = commandLineValue('REF', () => parseReference(refText));
    if (values.key === undefined) throw new UsageError('--key is required');
    if (values['password-stdin'] === true && values['registry-password-stdin'] === true) throw new UsageError('--password-stdin and --registry-password-stdin cannot both read standard input');
    const annotations = commandLineValue('--annotations', () => parseAnnotationFlags(values.annotations ?? []));

    let pem: string;
    try {
      pem = await readFile(values.key, 'utf8');
    } catch (e) {
      throw new PromoteError('KEY_INVALID', `${values.key}: cannot read the private key (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
    let password = values['password-stdin'] === true ? (await readAll(io.stdin, io.signal)).replace(/\r?\n$/, '') : envValue(io, 'COSIGN_PASSWORD');
    if (password === undefined) {
      if (pem.includes('-----BEGIN ENCRYPTED')) throw new UsageError(`${values.key} is encrypted: set $COSIGN_PASSWORD or use --password-stdin`);
      password = '';
    }
    const key = parsePrivateKey(pem, password, values.key);

    const log = commandLogger(io, values['log-level']);
    const registry = await createRegistry(values, io, log);
    try {
      const { ref, digest } = await resolveDigest(subject, registry, io.signal);
      const repo = { registry: ref.registry, repository: ref.repository };
      const docker = ['1', 'true'].includes((envValue(io, 'COSIGN_DOCKER_MEDIA_TYPES') ?? '').toLowerCase());
      const signer = new ImageSigner({ registry, log });
      const result = await signer.sign({ repo, digest }, key, { annotations, newBundleFormat: values['new-bundle-format'] === true, dockerMediaTypes: docker }, io.signal);
      const target = result.format === 'legacy' ? `${formatRepository(repo)}:${result.tag}` : `${formatRepository(repo)}@${result.manifestDigest} (index ${result.tag})`;
      io.stderr.write(result.written ? `Pushing signature to: ${target}\n` : `Signature already present in ${target}; nothing pushed\n`);
      return 0;
    } finally {
      await registry.close();
    }
  });
}
