import { hostname } from 'node:os';
import type { parseArgs, ParseArgsOptionsConfig } from 'node:util';
import { createLogger, type Logger } from '../log.js';
import { Metrics, startHttpServer, type HttpServer, type Readiness } from '../metrics/index.js';
import type { RegistryClientOptions } from '../oci/index.js';
import type { PromotionObserver } from '../worker/promotion-handler.js';
import type { ReconcileObserver } from '../controller/reconciler.js';
import { parseCommandLine, reportErrors } from './command-support.js';
import { UsageError, type CliIo } from './io.js';
import { positiveInt } from './registry-flags.js';

/** Flags every long-running command takes. */
export const daemonOptions = {
  listen: { type: 'string' },
  'log-level': { type: 'string' },
  'registry-insecure': { type: 'string', multiple: true },
  'registry-ca-cert-path': { type: 'string' },
  'registry-connections': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const daemonUsage = `Common flags:
  --listen ADDR                  serve /metrics, /healthz, /readyz (and /status for run) on ADDR, e.g. :8080 or 127.0.0.1:0
  --log-level LEVEL              trace, debug, info (default), warn, error; or $LOG_LEVEL
  --registry-insecure HOST       speak plain HTTP to HOST, for every promotion (repeatable; per promotion: spec.registry.insecure)
  --registry-ca-cert-path FILE   trust this CA for every registry (per promotion: spec.registry.ca)
  --registry-connections N       connections per registry and direction (default 8)
Environment:
  REDIS_URL                      redis://[:password@]host:port[/db] or rediss:// for TLS`;

export interface DaemonFlagValues {
  listen?: string;
  'log-level'?: string;
  'registry-insecure'?: string[];
  'registry-ca-cert-path'?: string;
  'registry-connections'?: string;
}

type Values<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: false; strict: true }>>['values'];

/**
 * A long-running command: strict flags (usage errors exit 2, `--help` prints `usage`), a JSON logger for
 * `component`, and the CLI's error contract around `body`, which resolves with the exit code once stopped.
 */
export function daemonCommand<const O extends typeof daemonOptions & ParseArgsOptionsConfig>(
  usage: string, options: O, component: string, body: (values: Values<O>, log: Logger, io: CliIo) => Promise<number>,
): (argv: string[], io: CliIo) => Promise<number> {
  return (argv, io) => reportErrors(io, usage, async () => {
    const parsed = parseCommandLine({ args: argv, options, allowPositionals: false, strict: true } as const, usage, io);
    if (parsed === undefined) return 0;
    const values = parsed.values as Values<O>;
    return body(values, daemonLogger(io, (values as DaemonFlagValues)['log-level'], component), io);
  });
}

/** A structured JSON logger on stderr: long-running commands log for machines, not for a terminal. */
export function daemonLogger(io: CliIo, level: string | undefined, component: string): Logger {
  return createLogger({ level: level ?? io.env['LOG_LEVEL'] ?? 'info', destination: { write: (line: string) => void io.stderr.write(line) } }).child({ component });
}

export function registryDefaults(values: DaemonFlagValues, metrics: Metrics): Partial<RegistryClientOptions> {
  return {
    insecure: values['registry-insecure'] ?? [],
    ...(values['registry-ca-cert-path'] !== undefined ? { caFile: values['registry-ca-cert-path'] } : {}),
    connectionsPerRegistry: positiveInt(values['registry-connections'], '--registry-connections', 8),
    observer: metrics.registryObserver(),
  };
}

/** The metrics module seen through the observer interfaces the controller and the worker define. */
export function observersOf(metrics: Metrics): { reconcile: ReconcileObserver; promotion: PromotionObserver } {
  return {
    reconcile: {
      reconciled: (result, seconds) => metrics.reconciled(result, seconds),
      promotionReady: (ref, ready) => metrics.promotionReady(ref, ready),
      promotionFinished: (ref, result, seconds, at) => metrics.promotionFinished(ref, result, seconds, at),
      forgetPromotion: (ref) => metrics.forgetPromotion(ref),
      promotionLastSucceeded: (ref, at) => metrics.promotionLastSucceeded(ref, at),
    },
    promotion: {
      copied: (registry, c) => metrics.copied({
        registry, blobsUploaded: c.blobsUploaded, blobsMounted: c.blobsMounted, blobsPresent: c.blobsPresent, bytes: c.bytes,
        manifestsCopied: c.manifestsCopied, manifestsPresent: c.manifestsPresent,
      }),
      verification: (stage, result, reason) => metrics.verification(stage, result, reason),
    },
  };
}

export async function maybeServe(values: DaemonFlagValues, deps: { metrics: Metrics; log: Logger; ready: () => Promise<Readiness>; status?: () => unknown }): Promise<HttpServer | undefined> {
  if (values.listen === undefined) return undefined;
  const server = await startHttpServer({ listen: values.listen, ...deps });
  deps.log.info({ url: server.url }, 'serving /metrics, /healthz, /readyz');
  return server;
}

export function identity(io: CliIo): string {
  return io.env['POD_NAME'] ?? `${hostname()}-${process.pid}`;
}

export function redisUrlOf(io: CliIo, required: boolean): string | undefined {
  const url = io.env['REDIS_URL'];
  if (required && (url === undefined || url === '')) throw new UsageError('REDIS_URL must name the Redis that holds the job queue (redis://host:6379)');
  return url === '' ? undefined : url;
}

/** Resolves when the command is told to stop (SIGINT/SIGTERM). */
export function untilStopped(io: CliIo): Promise<void> {
  const signal = io.signal;
  if (signal === undefined) return new Promise(() => undefined);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Runs the stop steps in order, each bounded, logging (not throwing) what fails. */
export async function shutdown(log: Logger, steps: readonly [string, (() => Promise<void>) | undefined][]): Promise<void> {
  for (const [name, step] of steps) {
    if (step === undefined) continue;
    try {
      await step();
    } catch (e) {
      log.warn({ step: name, err: (e as Error).message }, 'shutdown step failed');
    }
  }
  log.info('stopped');
}

/** `--job-lock-duration`: how soon a dead worker's job is taken up again (BullMQ's lock and stalled check). */
export function lockOptions(seconds: string | undefined): { lockDurationMs: number; stalledIntervalMs: number } {
  const ms = positiveInt(seconds, '--job-lock-duration', 30) * 1000;
  return { lockDurationMs: ms, stalledIntervalMs: ms };
}
