import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

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

/** What vitest passes to `setup`: the project, whose `vitest.filenamePattern` holds the CLI's file filters. */
export interface SetupProject {
  readonly vitest?: { readonly filenamePattern?: readonly string[] };
}

/**
 * vitest globalSetup: fail fast, before any worker starts, when a required program is missing, and when this run
 * includes tests of the built CLI (`dist/cli.js`) but dist/ is older than src/ (they would test yesterday's code).
 * Called without a project (as the harness tests do), only the programs are checked.
 */
export function setup(project?: SetupProject): void {
  const missing = missingPrograms();
  if (missing.length > 0) {
    throw new Error(
      `Missing on PATH: ${missing.join(', ')}. The tests use the real programs; .ci/run installs them with apt ` +
        '(apt-get install -y docker-registry apache2-utils openssl skopeo).',
    );
  }
  if (project === undefined) return;
  const filters = project.vitest?.filenamePattern ?? [];
  const users = builtCliTests(ROOT).filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)));
  if (users.length === 0) return;
  const stale = staleDist(ROOT);
  if (stale !== undefined) throw new Error(`${stale}. ${users.length} test file(s) of this run start dist/cli.js (e.g. ${users[0]}).`);
}

/** Test files (relative to `root`) that run the built CLI: they import its launchers or build the path to dist/cli.js. */
export function builtCliTests(root: string): string[] {
  return walk(join(root, 'test'))
    .filter((f) => f.endsWith('.test.ts'))
    .filter((f) => /from '[^']*\/(run-cli|cli-process)\.js'|'dist', 'cli\.js'|join\(ROOT, 'dist'\)/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(root, f));
}

/**
 * Why `root`/dist cannot be trusted to be `root`/src compiled, or `undefined` when every `src/**\/*.ts` has a
 * `dist/**\/*.js` at least as new. (tsc rewrites every output file on each build.)
 */
export function staleDist(root: string): string | undefined {
  for (const file of walk(join(root, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
    const rel = relative(join(root, 'src'), file);
    const out = join(root, 'dist', rel.replace(/\.ts$/, '.js'));
    let built: number;
    try {
      built = statSync(out).mtimeMs;
    } catch {
      return `dist/${rel.replace(/\.ts$/, '.js')} is missing: run 'make build' (make test does it first)`;
    }
    if (statSync(file).mtimeMs > built) {
      return `dist/ is older than src/: src/${rel} changed after dist/${rel.replace(/\.ts$/, '.js')} was built; run 'make build' (make test does it first)`;
    }
  }
  return undefined;
}

function walk(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? (e.name === 'node_modules' ? [] : walk(join(dir, e.name))) : [join(dir, e.name)]));
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
