import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { outcomesOf, parseAllowlist, render, summariseSkips } from '../../support/skip-report.js';

const run = promisify(execFile);
const cwd = process.cwd();

/** A vitest JSON report with one file holding these tests. */
function report(tests: { path: string[]; status: string }[], fileStatus = 'passed'): unknown {
  return {
    testResults: [{
      name: join(cwd, 'test/unit/x.test.ts'),
      status: fileStatus,
      assertionResults: tests.map((t) => ({ ancestorTitles: t.path.slice(0, -1), title: t.path.at(-1), status: t.status })),
    }],
  };
}

describe('skip-report (.ci/run\'s summary)', () => {
  const allow = parseAllowlist('# optional peer absent\ntest/unit/x.test.ts > when imgpkg is available\n');

  it('when every skip is on the allow-list, counts it and passes', () => {
    const { outcomes, failedFiles } = outcomesOf(report([
      { path: ['A', 'passes'], status: 'passed' },
      { path: ['when imgpkg is available', 'copies'], status: 'skipped' },
    ]));
    const { lines, ok } = render(summariseSkips(outcomes, failedFiles, allow));
    expect(lines).toEqual([
      'skipped (allowed: optional peer absent): test/unit/x.test.ts > when imgpkg is available > copies',
      // Last, alone on its line: the summary CI reads.
      'tests: 1 passed, 0 failed, 1 skipped',
    ]);
    expect(ok).toBe(true);
  });

  it('when a test is skipped that the allow-list does not name (pending and todo included), fails naming it', () => {
    const { outcomes, failedFiles } = outcomesOf(report([
      { path: ['when imgpkg is availableX', 'a'], status: 'skipped' }, // a prefix must end at a ' > ' boundary
      { path: ['B', 'b'], status: 'pending' },
      { path: ['B', 'c'], status: 'todo' },
    ]));
    const s = summariseSkips(outcomes, failedFiles, allow);
    expect(s.unexpectedSkips).toEqual(['test/unit/x.test.ts > when imgpkg is availableX > a', 'test/unit/x.test.ts > B > b', 'test/unit/x.test.ts > B > c']);
    expect(render(s).ok).toBe(false);
  });

  it('when a file failed without a failing test (an import error), fails', () => {
    const { outcomes, failedFiles } = outcomesOf(report([], 'failed'));
    expect(failedFiles).toEqual(['test/unit/x.test.ts']);
    expect(render(summariseSkips(outcomes, failedFiles, allow)).ok).toBe(false);
  });

  it('refuses an allow-list entry without a comment saying why', () => {
    expect(() => parseAllowlist('test/unit/x.test.ts > A\n')).toThrow(/no comment above it/);
  });

  it('the repository\'s allow-list parses, and every entry names an existing test file', async () => {
    for (const entry of parseAllowlist(await readFile('test/skip-allowlist.txt', 'utf8'))) {
      await expect(readFile(entry.pattern.split(' > ')[0]!), entry.pattern).resolves.toBeDefined();
    }
  });

  it('as a command: prints the summary, exits 1 on an unexpected skip and when the report is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skip-report-'));
    try {
      const file = join(dir, 'report.json');
      await writeFile(file, JSON.stringify(report([{ path: ['B', 'b'], status: 'skipped' }, { path: ['B', 'c'], status: 'passed' }])));
      const script = 'test/support/skip-report.ts';
      const bad = await run(process.execPath, [script, file, 'test/skip-allowlist.txt']).then(() => undefined, (e: { code: number; stdout: string }) => e);
      expect(bad?.code).toBe(1);
      expect(bad?.stdout).toContain('tests: 1 passed, 0 failed, 1 skipped\n');
      expect(bad?.stdout).toContain('SKIPPED, NOT ON test/skip-allowlist.txt: test/unit/x.test.ts > B > b');
      const missing = await run(process.execPath, [script, join(dir, 'none.json'), 'test/skip-allowlist.txt']).then(() => undefined, (e: { code: number; stderr: string }) => e);
      expect(missing?.code).toBe(1);
      expect(missing?.stderr).toContain('the test run did not finish');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
