/**
 * Reads vitest's JSON report (jest-compatible: `testResults[].assertionResults[]`) and an allow-list of tests that
 * may be skipped, prints `tests: N passed, N failed, N skipped` and every skip, and fails when a test was skipped
 * that the allow-list does not name. `.ci/run` runs it after `make test`:
 *
 *   node test/support/skip-report.ts <report.json> test/skip-allowlist.txt
 *
 * Plain Node (type stripping, Node >= 23.6) and node:fs only: it runs outside vitest.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AllowEntry {
  /** `test/…/x.test.ts > describe > … > test`, matched as a prefix at a ` > ` boundary (or exactly). */
  readonly pattern: string;
  /** The `#` comment lines above the entry: why the skip is acceptable. */
  readonly reason: string;
  readonly line: number;
}

export interface TestOutcome {
  /** `file > ancestor > … > title`, the file relative to the working directory. */
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'skipped';
}

export interface SkipSummary {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  /** Test files that failed outside any test (import error, failing hook with no test to blame). */
  readonly failedFiles: readonly string[];
  readonly allowedSkips: readonly { name: string; entry: AllowEntry }[];
  readonly unexpectedSkips: readonly string[];
}

/** Parses the allow-list: `#` comments (required before every entry: the reason), blank lines, one entry per line. */
export function parseAllowlist(text: string): AllowEntry[] {
  const entries: AllowEntry[] = [];
  let comment: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') {
      comment = [];
      return;
    }
    if (line.startsWith('#')) {
      comment.push(line.replace(/^#\s?/, ''));
      return;
    }
    if (comment.length === 0) throw new Error(`skip allow-list line ${i + 1}: '${line}' has no comment above it saying why it may be skipped`);
    if (!/^test\/\S+\.test\.ts( > .+)?$/.test(line)) throw new Error(`skip allow-list line ${i + 1}: expected 'test/….test.ts > describe > … > test', got '${line}'`);
    entries.push({ pattern: line, reason: comment.join(' '), line: i + 1 });
  });
  return entries;
}

/** Flattens a vitest JSON report into one outcome per test. */
export function outcomesOf(report: unknown, cwd: string = process.cwd()): { outcomes: TestOutcome[]; failedFiles: string[] } {
  const files = (report as { testResults?: unknown } | null)?.testResults;
  if (!Array.isArray(files)) throw new Error('not a vitest JSON report: no testResults array');
  const outcomes: TestOutcome[] = [];
  const failedFiles: string[] = [];
  for (const file of files as { name: string; status: string; assertionResults?: { ancestorTitles: string[]; title: string; status: string }[] }[]) {
    const path = relative(cwd, file.name);
    const tests = file.assertionResults ?? [];
    for (const t of tests) {
      const status = t.status === 'passed' ? 'passed' : t.status === 'failed' ? 'failed' : 'skipped'; // skipped, pending, todo
      outcomes.push({ name: [path, ...t.ancestorTitles, t.title].join(' > '), status });
    }
    if (file.status === 'failed' && !tests.some((t) => t.status === 'failed')) failedFiles.push(path);
  }
  return { outcomes, failedFiles };
}

function matches(name: string, pattern: string): boolean {
  return name === pattern || name.startsWith(`${pattern} > `);
}

export function summariseSkips(outcomes: readonly TestOutcome[], failedFiles: readonly string[], allow: readonly AllowEntry[]): SkipSummary {
  const allowedSkips: { name: string; entry: AllowEntry }[] = [];
  const unexpectedSkips: string[] = [];
  for (const o of outcomes) {
    if (o.status !== 'skipped') continue;
    const entry = allow.find((e) => matches(o.name, e.pattern));
    if (entry) allowedSkips.push({ name: o.name, entry });
    else unexpectedSkips.push(o.name);
  }
  return {
    passed: outcomes.filter((o) => o.status === 'passed').length,
    failed: outcomes.filter((o) => o.status === 'failed').length,
    skipped: allowedSkips.length + unexpectedSkips.length,
    failedFiles,
    allowedSkips,
    unexpectedSkips,
  };
}

/** The lines `.ci/run` prints, and whether CI passes on skips and failures. */
export function render(s: SkipSummary): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  for (const f of s.failedFiles) lines.push(`failed test file (no test ran to blame): ${f}`);
  for (const a of s.allowedSkips) lines.push(`skipped (allowed: ${a.entry.reason}): ${a.name}`);
  for (const u of s.unexpectedSkips) lines.push(`SKIPPED, NOT ON test/skip-allowlist.txt: ${u}`);
  if (s.unexpectedSkips.length > 0) {
    lines.push(`ci: ${s.unexpectedSkips.length} test(s) skipped without an entry in test/skip-allowlist.txt: make them run, or add them there with a comment saying why`);
  }
  // Last, alone on its line: the summary CI reads.
  lines.push(`tests: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped`);
  return { lines, ok: s.failed === 0 && s.failedFiles.length === 0 && s.unexpectedSkips.length === 0 };
}

function main(argv: readonly string[]): number {
  const [reportFile, allowFile] = argv;
  if (reportFile === undefined || allowFile === undefined) {
    console.error('usage: node test/support/skip-report.ts <vitest-report.json> <skip-allowlist.txt>');
    return 2;
  }
  let report: unknown;
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8'));
  } catch (e) {
    console.error(`ci: no readable vitest JSON report at ${reportFile} (${(e as Error).message}): the test run did not finish`);
    return 1;
  }
  const { outcomes, failedFiles } = outcomesOf(report);
  const { lines, ok } = render(summariseSkips(outcomes, failedFiles, parseAllowlist(readFileSync(allowFile, 'utf8'))));
  for (const l of lines) console.log(l);
  return ok ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
