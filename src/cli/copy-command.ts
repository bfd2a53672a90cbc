import type { Logger } from '../log.js';
import { commandLineValue, commandLogger, parseCommandLine, reportErrors } from './command-support.js';
import { parseReference, parseRepository, formatReference, formatRepository, withTag, type RegistryClient, type RequestStats } from '../oci/index.js';
import { PromotionEngine, type ArtifactKind, type AttachedArtifacts, type PlanRequest, type Progress, type PromotionPlan, type VerificationGate } from '../promote/index.js';
import { counted, isTty, UsageError, type CliIo } from './io.js';
import { createRegistry, positiveInt, registryOptions, registryUsage } from './registry-flags.js';

const options = {
  ...registryOptions,
  bundle: { type: 'string', short: 'b' },
  'to-repo': { type: 'string' },
  'to-tag': { type: 'string', multiple: true },
  'cosign-signatures': { type: 'boolean' },
  include: { type: 'string', multiple: true },
  'include-non-distributable-layers': { type: 'boolean' },
  concurrency: { type: 'string' },
  json: { type: 'boolean' },
  policy: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const SOURCE_TARGET_FLAGS = `  -b, --bundle SRC          the bundle, by tag or digest
      --to-repo DST         the target repository (no tag)`;

export const copyUsage = `Usage: bundle-promoter copy --bundle SRC --to-repo DST [flags]

Copies an imgpkg bundle, every image its .imgpkg/images.yml references (nested bundles too) and, with
--cosign-signatures, their signatures into one repository, digest for digest, as 'imgpkg copy --bundle SRC
--to-repo DST --cosign-signatures' does. Blobs and manifests go first and the bundle's tag last, so a failed
or interrupted copy never leaves the tag on incomplete content, and a re-run copies only what is missing.
Prints a summary on stdout (progress on stderr when it is a terminal). 'bundle-promoter plan' previews it.

${SOURCE_TARGET_FLAGS}
      --to-tag T            tag the bundle T in the target (repeatable; default: the source tag)
      --cosign-signatures   copy cosign signatures (.sig tags and sigstore-bundle referrers)
      --include LIST        also copy att, sbom, referrers (comma-separated, repeatable)
      --include-non-distributable-layers  upload foreign layers too
      --concurrency N       parallel registry operations (default 8)
      --policy FILE         verify signatures with this policy in the source before and in the target after copying
      --json                print the result as JSON on stdout, no progress
${registryUsage}`;

export const planUsage = `Usage: bundle-promoter plan --bundle SRC --to-repo DST [flags]

Shows what 'bundle-promoter copy' with the same flags would do, and writes nothing. Reads the bundle's
closure in SRC and the tags of DST, then prints how many bundles, images and signature tags the promotion
covers and how many of them DST already holds, the manifests and blobs still to copy, and one line per
manifest: 'copy' or 'present', its kind and where it is read from. A bundle already complete in DST is
not read further, so its images and signatures are listed without their insides.

${SOURCE_TARGET_FLAGS}
      --to-tag T            the tags copy would write (repeatable; default: the source tag)
      --cosign-signatures   include cosign signatures (.sig tags and sigstore-bundle referrers)
      --include LIST        also include att, sbom, referrers (comma-separated, repeatable)
      --include-non-distributable-layers  count foreign layers among the blobs to copy
      --concurrency N       parallel registry reads (default 8)
      --policy FILE         accepted so that copy's command line works as is; plan verifies nothing
      --json                print the plan as JSON on stdout
${registryUsage}`;

type Values = NonNullable<ReturnType<typeof parseCommandLine<ReturnType<typeof parse>>>>['values'];

function parse(argv: string[]) {
  return { args: argv, options, allowPositionals: false, strict: true } as const;
}

/** Builds the verification gate for `--policy`; supplied by the cosign module's wiring in cli.ts. */
export type GateFactory = (policyFile: string, registry: RegistryClient, log: Logger, io: CliIo) => Promise<VerificationGate>;

/** Runs `copy` or `plan`; never throws (see reportErrors): usage errors show that command's own usage. */
export function run(command: 'copy' | 'plan', argv: string[], io: CliIo, makeGate?: GateFactory): Promise<number> {
  const usage = command === 'plan' ? planUsage : copyUsage;
  return reportErrors(io, usage, () => runCommand(command, usage, argv, io, makeGate));
}

async function runCommand(command: 'copy' | 'plan', usage: string, argv: string[], io: CliIo, makeGate?: GateFactory): Promise<number> {
  const parsed = parseCommandLine(parse(argv), usage, io);
  if (parsed === undefined) return 0;
  const { values } = parsed;
  const request = toRequest(values);
  const concurrency = positiveInt(values.concurrency, '--concurrency', 8);
  const log = commandLogger(io, values['log-level']);
  const registry = await createRegistry(values, io, log);
  try {
    const engine = new PromotionEngine({ registry, log });
    const planOptions = { concurrency, includeNonDistributable: values['include-non-distributable-layers'] ?? false };
    if (command === 'plan') {
      const plan = await engine.plan(request, planOptions, io.signal);
      io.stdout.write(values.json ? `${JSON.stringify(planJson(plan, registry.stats), null, 2)}\n` : planText(plan));
      return 0;
    }
    if (values.policy !== undefined && !makeGate) throw new UsageError('--policy is not available in this build');
    const gate = values.policy !== undefined && makeGate ? await makeGate(values.policy, registry, log, io) : undefined;
    const progress = !values.json && isTty(io.stderr) ? progressLine(io.stderr) : undefined;
    const started = performance.now();
    const result = await engine.promote(request, { ...planOptions, ...(gate ? { gate } : {}), ...(progress ? { onProgress: progress.update } : {}) }, io.signal);
    progress?.end();
    const seconds = (performance.now() - started) / 1000;
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ ...result, durationSeconds: round(seconds), requests: registry.stats }, null, 2)}\n`);
    } else {
      const c = result.counts;
      io.stdout.write([
        `copy | promoted ${result.source} (${result.sourceDigest}) to ${result.target}${result.tags.length ? ` as ${result.tags.join(', ')}` : ''}`,
        `copy | ${closureText(c.bundles, c.images, c.signatures)}: ${copiedText(c.artifactsCopied, c.artifactsPresent)}`,
        `copy | blobs: ${c.blobs.uploaded} uploaded, ${c.blobs.mounted} mounted, ${c.blobs.present} present${c.blobs.skippedNonDistributable ? `, ${c.blobs.skippedNonDistributable} non-distributable skipped` : ''}; ${mib(c.bytesUploaded)} uploaded in ${seconds.toFixed(1)} s, ${counted(registry.stats.requests, 'request')}`,
        ...nonDistributableWarning(result.nonDistributable),
        '',
        'Succeeded',
        '',
      ].join('\n'));
    }
    return 0;
  } finally {
    await registry.close();
  }
}

/**
 * The summary counts the same things on a first copy and on a no-op re-copy. Decision: it names bundles,
 * images and signature tags, which every plan lists whether or not the target holds them, and not the
 * manifests the plan examined: a bundle already complete in the target is not read further (no index
 * children, no signature manifests), so that number shrinks on a re-run although nothing changed.
 */
function closureText(bundles: number, images: number, signatureTags: number): string {
  return `${counted(bundles, 'bundle')}, ${counted(images, 'image')}, ${counted(signatureTags, 'signature tag')}`;
}

function copiedText(copied: number, present: number): string {
  if (copied === 0) return 'no manifest copied, all already in the target';
  return `${counted(copied, 'manifest')} copied${present > 0 ? ', the rest already in the target' : ''}`;
}

function toRequest(values: Values): PlanRequest {
  if (values.bundle === undefined) throw new UsageError('--bundle is required');
  if (values['to-repo'] === undefined) throw new UsageError('--to-repo is required');
  const bundle = values.bundle;
  const toRepo = values['to-repo'];
  const source = commandLineValue('--bundle', () => parseReference(bundle));
  const target = commandLineValue('--to-repo', () => parseRepository(toRepo));
  for (const tag of values['to-tag'] ?? []) commandLineValue('--to-tag', () => withTag(target, tag));
  const include = new Set((values.include ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean));
  for (const item of include) {
    if (!['att', 'sbom', 'referrers'].includes(item)) throw new UsageError(`--include: unknown '${item}' (expected att, sbom, referrers)`);
  }
  const attached: AttachedArtifacts = {
    signatures: values['cosign-signatures'] ?? false,
    attestations: include.has('att'),
    sboms: include.has('sbom'),
    referrers: include.has('referrers'),
  };
  return { source, target, attached, ...(values['to-tag'] ? { tags: values['to-tag'] } : {}) };
}

function planJson(plan: PromotionPlan, requests: RequestStats): unknown {
  return {
    source: formatReference(plan.source),
    sourceDigest: plan.rootDigest,
    target: formatRepository(plan.target),
    tags: plan.targetTags,
    artifacts: plan.artifacts.map((a) => ({
      digest: a.digest, kind: a.kind, source: formatRepository(a.source), presentInTarget: a.presentInTarget,
      ...(a.uploadTag !== undefined ? { tag: a.uploadTag } : {}), ...(a.origRef !== undefined ? { image: a.origRef } : {}),
    })),
    blobs: blobSummary(plan),
    signatureTags: plan.signatureTags,
    bundles: plan.bundles.map((b) => ({ digest: b.digest, images: b.locations.length, locationsPresentInTarget: b.locationsPresentInTarget })),
    nonDistributable: plan.nonDistributable,
    requests,
  };
}

/** Every blob of the closure, and those of the artifacts the target lacks (copied unless already present). */
function blobSummary(plan: PromotionPlan): { count: number; bytes: number; toCopy: number; bytesToCopy: number } {
  const size = (digests: Iterable<string>) => [...digests].reduce((n, d) => n + (plan.blobs.get(d)?.descriptor.size ?? 0), 0);
  const missing = new Set(plan.artifacts.filter((a) => !a.presentInTarget).flatMap((a) => a.blobs));
  return { count: plan.blobs.size, bytes: size(plan.blobs.keys()), toCopy: missing.size, bytesToCopy: size(missing) };
}

const KIND_ORDER: readonly ArtifactKind[] = ['bundle', 'image', 'index', 'index-child', 'signature', 'attestation', 'sbom', 'referrer'];

function planText(plan: PromotionPlan): string {
  const toCopy = plan.artifacts.filter((a) => !a.presentInTarget);
  const kinds = new Map<string, number>(KIND_ORDER.map((k) => [k, 0]));
  for (const a of toCopy) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1);
  const tally = (items: readonly { presentInTarget: boolean }[], noun: string, present: string) =>
    `plan | ${counted(items.length, noun)}: ${items.filter((i) => i.presentInTarget).length} ${present}`;
  const blobs = blobSummary(plan);
  const lines = [
    `plan | ${formatReference(plan.source)} (${plan.rootDigest}) → ${formatRepository(plan.target)}${plan.targetTags.length ? ` as ${plan.targetTags.join(', ')}` : ''}`,
    // The same units as copy's summary (see closureText), so that a plan and a re-plan compare.
    tally(plan.artifacts.filter((a) => a.kind === 'bundle'), 'bundle', 'already in the target'),
    tally(plan.artifacts.filter((a) => a.kind === 'image' || a.kind === 'index'), 'image', 'already in the target'),
    tally(plan.signatureTags, 'signature tag', 'up to date'),
    tally(plan.bundles.map((b) => ({ presentInTarget: b.locationsPresentInTarget })), 'locations image', 'present'),
    toCopy.length === 0
      ? 'plan | to copy: nothing, the target holds every manifest'
      : `plan | to copy: ${counted(toCopy.length, 'manifest')} (${[...kinds].filter(([, n]) => n > 0).map(([kind, n]) => `${n} ${kind}`).join(', ')}), `
        + `${counted(blobs.toCopy, 'blob')} (${mib(blobs.bytesToCopy)}) unless present`,
    ...nonDistributableWarning(plan.nonDistributable),
    ...plan.artifacts.map((a) => `${a.presentInTarget ? 'present' : 'copy   '} ${a.kind.padEnd(11)} ${formatRepository(a.source)}@${a.digest}`),
    '',
  ];
  return lines.join('\n');
}

function nonDistributableWarning(skipped: PromotionPlan['nonDistributable']): string[] {
  if (skipped.length === 0) return [];
  return [
    'copy | Warning: Skipped the followings layer(s) due to it being non-distributable. If you would like to include non-distributable layers, use the --include-non-distributable-layers flag',
    ...skipped.flatMap((s) => [` - Image: ${s.image}`, '   Layers:', ...s.digests.map((d) => `     - ${d}`)]),
  ];
}

function progressLine(out: NodeJS.WritableStream): { update: (p: Progress) => void; end: () => void } {
  const started = performance.now();
  let last = 0;
  return {
    update(p) {
      const now = performance.now();
      if (now - last < 100 && p.phase === 'blobs') return;
      last = now;
      const rate = p.bytesDone / Math.max((now - started) / 1000, 0.001);
      out.write(`\r\x1b[Kcopy | ${p.phase}: ${p.artifactsDone}/${p.artifactsTotal} artifacts, ${p.blobsDone}/${p.blobsTotal} blobs, ${mib(p.bytesDone)}/${mib(p.bytesTotal)}, ${mib(rate)}/s`);
    },
    end() {
      out.write('\r\x1b[K');
    },
  };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
