import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface LogOptions {
  /** @defaultValue 'info' */
  level?: string;
  /** Where lines go. @defaultValue stderr, so that stdout stays free for `--json` results. */
  destination?: DestinationStream;
}

/**
 * The root logger. Only allow-listed fields are ever logged; redaction is a safety net for the names a
 * credential could hide under, not the mechanism that keeps secrets out.
 */
export function createLogger(options: LogOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'bundle-promoter' },
      redact: {
        paths: [
          'password', 'token', 'auth', 'authorization', 'identitytoken', 'registrytoken',
          '*.password', '*.token', '*.auth', '*.authorization', '*.identitytoken', '*.registrytoken',
          'headers.authorization', 'headers.Authorization', '*.headers.authorization', '*.headers.Authorization',
        ],
        censor: '[REDACTED]',
      },
    },
    options.destination ?? pino.destination(2),
  );
}

/** A logger that writes nothing, for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
