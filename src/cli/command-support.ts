/** What the cosign-style commands (verify, sign, generate-key-pair) share: error reporting, logging, refs. */
import { PromoteError, isPromoteError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { formatReference, parseReference, type Reference, type Registry } from '../oci/index.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, type CliIo } from './io.js';

/**
 * Runs a command body, turning failures into the CLI contract: `bundle-promoter: error: <message>` on
 * stderr, exit 2 for usage errors (with the usage text), 1 for everything else.
 */
export async function reportErrors(io: CliIo, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`bundle-promoter: error: ${err.message}\n\n${usage}\n`);
      return 2;
    }
    if (io.signal?.aborted === true) {
      io.stderr.write('bundle-promoter: interrupted\n');
      return 130;
    }
    if (err instanceof PromoteError) {
      io.stderr.write(`bundle-promoter: error: [${err.code}] ${err.message}\n`);
      return 1;
    }
    io.stderr.write(`bundle-promoter: error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** A logger writing to the command's stderr (warn by default, `--log-level` or `$LOG_LEVEL` to change). */
export function commandLogger(io: CliIo, level: string | undefined): Logger {
  return createLogger({ level: level ?? io.env['LOG_LEVEL'] ?? 'warn', destination: { write: (line: string) => void io.stderr.write(line) } });
}

/**
 * Parses a value given on the command line (a flag's or a positional's): its INVALID_REFERENCE or
 * INVALID_ARGUMENT becomes a usage error naming `what` (`--bundle`, `REF`), so that a mistyped value exits
 * 2 with the usage like any other command-line mistake, not 1 like a failure.
 */
export function commandLineValue<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (isPromoteError(err, 'INVALID_REFERENCE') || isPromoteError(err, 'INVALID_ARGUMENT')) throw new UsageError(`${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Parses REF (a string: a usage error when malformed) and resolves a tag to the digest of the manifest (or index) it names, as cosign does. */
export async function resolveDigest(ref: string | Reference, registry: Registry, signal?: AbortSignal): Promise<{ ref: Reference; digest: string }> {
  const parsed = typeof ref === 'string' ? commandLineValue('REF', () => parseReference(ref)) : ref;
  if (parsed.digest !== undefined) {
    // One HEAD: signing or verifying a digest the repository does not hold is a mistake, not "unsigned".
    if ((await registry.headManifest(parsed, signal)) === undefined) throw new PromoteError('MANIFEST_NOT_FOUND', `${typeof ref === 'string' ? ref : formatReference(ref)} does not exist`);
    return { ref: parsed, digest: parsed.digest };
  }
  const raw = await registry.getManifest(parsed, signal);
  return { ref: parsed, digest: raw.digest };
}

/** A value of an env var or `undefined` when unset (an empty string is a value: an empty password). */
export function envValue(io: CliIo, name: string): string | undefined {
  return Object.hasOwn(io.env, name) ? io.env[name] : undefined;
}

/**
 * A command line parsed strictly, its complaints turned into usage errors (exit 2 with the usage text).
 * `undefined` means `--help` was asked for and the usage has been printed: the command returns 0.
 */
export function parseCommandLine<const T extends ParseArgsConfig & { options: { help: { type: 'boolean' } } }>(config: T, usage: string, io: CliIo): ReturnType<typeof parseArgs<T>> | undefined {
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    io.stdout.write(`${usage}\n`);
    return undefined;
  }
  return parsed;
}
