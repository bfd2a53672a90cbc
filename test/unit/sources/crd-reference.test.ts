import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { CRD_PATH, END_MARKER, fieldRows, README_PATH, renderReference, START_MARKER, updateReadme } from '../../../scripts/crd-reference.js';

const SCRIPT = fileURLToPath(new URL('../../../scripts/crd-reference.ts', import.meta.url));
const run = promisify(execFile);

/** Runs the generator as `npm run crd-reference` does; resolves to its exit code and stderr. */
async function generator(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, ['--experimental-strip-types', '--no-warnings', SCRIPT, ...args]);
    return { code: 0, stderr };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: err.code ?? -1, stderr: err.stderr ?? '' };
  }
}

describe('crd-reference', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  describe('when README.md is compared with the CRD', () => {
    it('holds exactly the reference generated from it (run `npm run crd-reference` after editing the CRD)', async () => {
      const [readme, crd] = await Promise.all([readFile(README_PATH, 'utf8'), readFile(CRD_PATH, 'utf8')]);
      const start = readme.indexOf(START_MARKER);
      const end = readme.indexOf(END_MARKER);
      expect(start, 'README.md has no crd-reference markers').toBeGreaterThanOrEqual(0);
      expect(readme.slice(start, end + END_MARKER.length)).toBe(renderReference(crd));
    });
  });

  describe('when the reference is rendered', () => {
    it('has one line per field with its type, default and description', async () => {
      const section = renderReference(await readFile(CRD_PATH, 'utf8'));
      const line = (path: string) => section.split('\n').find((l) => l.startsWith(`| \`${path}\` |`));
      expect(line('spec.copy.concurrency')).toBe('| `spec.copy.concurrency` | integer (1–64) | `8` | Parallel registry operations of one promotion. |');
      expect(line('spec.target.repository')).toMatch(/^\| `spec\.target\.repository` \| string, \*\*required\*\* \| {2}\| The target repository/);
      expect(line('spec.verify.authorities[].tlog')).toContain('string: require \\| if-present \\| ignore');
      expect(line('spec.interval')).toContain('| `"5m"` |');
      expect(line('status.conditions[].type')).toBeDefined();
    });

    it('lists nested fields below arrays with [] and every field once', () => {
      const rows = fieldRows(
        { properties: { a: { type: 'array', description: 'A.', items: { type: 'object', required: ['b'], properties: { b: { type: 'string', description: 'B.' } } } } } },
        'spec',
      );
      expect(rows).toEqual([
        { path: 'spec.a', type: '[]object', required: false, default: '', description: 'A.' },
        { path: 'spec.a[].b', type: 'string', required: true, default: '', description: 'B.' },
      ]);
    });
  });

  describe('when the README section is replaced', () => {
    it('keeps everything outside the markers', () => {
      const readme = `# Title\n\nintro\n\n${START_MARKER}\nold\n${END_MARKER}\n\n## After\n`;
      expect(updateReadme(readme, `${START_MARKER}\nnew\n${END_MARKER}`)).toBe(`# Title\n\nintro\n\n${START_MARKER}\nnew\n${END_MARKER}\n\n## After\n`);
    });

    it('appends the section when the README has no markers yet', () => {
      expect(updateReadme('# Title\n\n', `${START_MARKER}\nnew\n${END_MARKER}`)).toBe(`# Title\n\n${START_MARKER}\nnew\n${END_MARKER}\n`);
    });
  });

  describe('when run with --check', () => {
    it('exits 0 for the repository README', async () => {
      expect(await generator(['--check'])).toEqual({ code: 0, stderr: '' });
    });

    it('exits 1 and leaves the file alone when the README drifted', async () => {
      dir = await mkdtemp(join(tmpdir(), 'crd-reference-'));
      const file = join(dir, 'README.md');
      const readme = (await readFile(README_PATH, 'utf8')).replace('| `spec.copy.concurrency` | integer (1–64) | `8` |', '| `spec.copy.concurrency` | integer (1–64) | `4` |');
      await writeFile(file, readme);
      const result = await generator(['--check', `--readme=${file}`]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('differs from the CRD; run `npm run crd-reference`');
      expect(await readFile(file, 'utf8')).toBe(readme);
    });

    it('is fixed by running it without --check', async () => {
      dir = await mkdtemp(join(tmpdir(), 'crd-reference-'));
      const file = join(dir, 'README.md');
      await writeFile(file, '# Title\n');
      expect((await generator([`--readme=${file}`])).code).toBe(0);
      expect(await generator(['--check', `--readme=${file}`])).toEqual({ code: 0, stderr: '' });
    });
  });
});
