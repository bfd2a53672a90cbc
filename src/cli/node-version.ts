/**
 * The Node.js version check the process entry runs before it loads anything else. This module imports
 * nothing and uses no syntax or API newer than Node 18, so that it runs, and explains itself, on the old
 * Node a fresh machine may have (Debian 13 ships 20, where undici 8 throws a TypeError while loading).
 */

/** The oldest Node.js the CLI runs on: package.json `engines.node` (a unit test keeps the two equal). */
export const MIN_NODE_VERSION = '24.15.0';

/**
 * `undefined` when `found` (`process.versions.node`, e.g. `20.20.2`) is at least {@link MIN_NODE_VERSION};
 * otherwise the one line to print before exiting 1.
 */
export function checkNodeVersion(found: string): string | undefined {
  const have = numbers(found);
  const need = numbers(MIN_NODE_VERSION);
  for (let i = 0; i < need.length; i += 1) {
    const a = have[i] ?? 0;
    const b = need[i] ?? 0;
    if (a > b) return undefined;
    if (a < b) {
      const [major, minor] = need;
      return `needs Node.js >= ${major}.${minor} (found v${found.replace(/^v/, '')}); run 'make build' to fetch Node ${major} `
        + `and start it with bin/bundle-promoter, or install Node ${major} from https://nodejs.org`;
    }
  }
  return undefined;
}

function numbers(version: string): number[] {
  return version.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((part) => Number.parseInt(part, 10) || 0);
}
