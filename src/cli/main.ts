import type { CliIo } from './io.js';
import { reportErrors } from './command-support.js';
import { run as runCopy, copyUsage } from './copy-command.js';
import type { GateFactory } from './copy-command.js';

const usage = `Usage: bundle-promoter <command> [flags]

Commands:
  run                controller and workers in one process over a directory of BundlePromotion YAML files (no cluster, no Redis needed)
  controller         watch BundlePromotions on Kubernetes, enqueue promotion jobs, write status (leader-elected)
  worker             carry out promotion jobs from the queue at REDIS_URL
  copy               copy a bundle, its images and signatures to a repository (imgpkg copy --bundle compatible)
  plan               print what copy would do, writing nothing
  verify             verify cosign signatures and required annotations of an image or bundle (cosign verify compatible)
  sign               append a cosign signature to an image's .sig (or attach a sigstore bundle with --new-bundle-format)
  generate-key-pair  write a cosign-format encrypted key pair (cosign.key, cosign.pub)
  help               this text; 'bundle-promoter <command> --help' for a command's flags

Exit codes: 0 success, 1 failure (the reason on stderr), 2 usage error, 130 interrupted.`;

type Command = (argv: string[], io: CliIo) => Promise<number>;

// Signature code (and @sigstore/*) is loaded only by the commands that use it: a plain copy starts faster
// and smaller without it.
const policyGate: GateFactory = async (...args) => (await import('./policy-gate.js')).createPolicyGate(...args);

const commands: Record<string, Command> = {
  copy: (argv, io) => reportErrors(io, copyUsage, () => runCopy('copy', argv, io, policyGate)),
  plan: (argv, io) => reportErrors(io, copyUsage, () => runCopy('plan', argv, io)),
  verify: async (argv, io) => (await import('./verify-command.js')).run(argv, io),
  sign: async (argv, io) => (await import('./sign-command.js')).run(argv, io),
  'generate-key-pair': async (argv, io) => (await import('./generate-key-pair-command.js')).run(argv, io),
  run: async (argv, io) => (await import('./run-command.js')).run(argv, io),
  controller: async (argv, io) => (await import('./controller-command.js')).run(argv, io),
  worker: async (argv, io) => (await import('./worker-command.js')).run(argv, io),
};

/** Runs one command line; never throws: every failure becomes a message on stderr and an exit code (see reportErrors). */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(`${usage}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    io.stderr.write(`bundle-promoter: error: unknown command '${name}'\n\n${usage}\n`);
    return 2;
  }
  return command(rest, io);
}
