import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtCliTests, setup, staleDist } from '../../support/global-setup.js';

describe('the dist freshness check of the global setup', () => {
  let root: string;
  const put = async (rel: string, mtimeSec: number, content = ''): Promise<void> => {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), content);
    await utimes(join(root, rel), mtimeSec, mtimeSec);
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dist-fresh-'));
    await put('src/cli.ts', 1000);
    await put('src/promote/plan.ts', 1000);
    await put('dist/cli.js', 2000);
    await put('dist/promote/plan.js', 2000);
  });
  afterEach(async () => rm(root, { recursive: true, force: true }));

  it('when every source is older than its output, finds nothing stale', () => {
    expect(staleDist(root)).toBeUndefined();
  });

  it('when a source changed after the build, names it and says to run make build', async () => {
    await put('src/promote/plan.ts', 3000);
    expect(staleDist(root)).toBe("dist/ is older than src/: src/promote/plan.ts changed after dist/promote/plan.js was built; run 'make build' (make test does it first)");
  });

  it('when a source has no output (a new file, or no build at all), names the missing file', async () => {
    await put('src/promote/new-thing.ts', 1500);
    expect(staleDist(root)).toMatch(/^dist\/promote\/new-thing\.js is missing: run 'make build'/);
  });

  it('finds the test files that start the built CLI', async () => {
    // Spelled in pieces, so that this file is not itself taken for a test of the built CLI.
    await put('test/integration/cli/a.test.ts', 1, `import { cli } from './${'run-cli'}.js';`);
    await put('test/integration/run/b.test.ts', 1, `import { startCommand } from '../../support/${'cli-process'}.js';`);
    await put('test/unit/c.test.ts', 1, "import { x } from '../../src/x.js';");
    expect(builtCliTests(root).sort()).toEqual(['test/integration/cli/a.test.ts', 'test/integration/run/b.test.ts']);
  });

  it('as vitest calls it, with file filters naming no such test, does not look at dist', () => {
    expect(() => setup({ vitest: { filenamePattern: ['test/unit/oci/manifest.test.ts'] } })).not.toThrow();
  });
});
