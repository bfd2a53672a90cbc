import { defineConfig } from 'vitest/config';

// .ci/run sets BP_TEST_REPORT to a file: vitest then also writes its JSON report there, which
// test/support/skip-report.ts reads to count skips and fail CI on one not in test/skip-allowlist.txt.
const report = process.env['BP_TEST_REPORT'];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: integration files each start their own registries; more forks only thrash.
    maxWorkers: 2,
    ...(report ? { reporters: ['default', ['json', { outputFile: report }]] } : {}),
  },
});
