import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Programs the integration tests and the benchmark start; all come from Debian packages. */
export const REQUIRED_PROGRAMS = [
  { program: 'docker-registry', apt: 'docker-registry' },
  { program: 'htpasswd', apt: 'apache2-utils' },
  { program: 'openssl', apt: 'openssl' },
  { program: 'skopeo', apt: 'skopeo' },
] as const;

/** Returns the programs of {@link REQUIRED_PROGRAMS} that are not executable anywhere on `PATH`. */
export function missingPrograms(path: string = process.env['PATH'] ?? ''): string[] {
  const dirs = path.split(delimiter).filter((d) => d !== '');
  return REQUIRED_PROGRAMS.filter(({ program }) => !dirs.some((dir) => isExecutable(join(dir, program)))).map(
    ({ program, apt }) => `${program} (apt package ${apt})`,
  );
}

/** vitest globalSetup: fail fast, before any worker starts, when a required program is missing. */
export function setup(): void {
  const missing = missingPrograms();
  if (missing.length > 0) {
    throw new Error(
      `Missing on PATH: ${missing.join(', ')}. The tests use the real programs; .ci/run installs them with apt ` +
        '(apt-get install -y docker-registry apache2-utils openssl skopeo).',
    );
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
