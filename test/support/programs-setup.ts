import { setup as checkPrograms } from './global-setup.js';

/**
 * vitest globalSetup of runs that never start dist/cli.js (vitest.mutation.config.ts): only the programs check.
 * The full one would refuse a Stryker sandbox, whose src/ is always newer than its dist/.
 */
export function setup(): void {
  checkPrograms();
}
