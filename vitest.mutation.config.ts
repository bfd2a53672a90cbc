import { defineConfig } from 'vitest/config';

// What `make mutation` (StrykerJS) runs against each mutant: the in-process tests of the critical modules. Tests
// that start dist/cli.js or a kube-apiserver are left out: Stryker mutates src/ in a sandbox, the CLI would run
// the unmutated build, and the apiserver costs seconds a mutant.
export default defineConfig({
  test: {
    include: [
      'test/unit/{oci,cosign,promote,bundle}/**/*.test.ts',
      'test/integration/{oci,cosign,promote}/**/*.test.ts',
    ],
    globalSetup: ['test/support/programs-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
