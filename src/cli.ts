#!/usr/bin/env node
// The process entry: everything else is importable without side effects (see src/cli/main.ts).
//
// Decision: the Node version is checked before anything else is loaded. Static imports are evaluated
// before this module's body runs, and on an old Node undici (under ./cli/main.js) dies while loading
// with a TypeError stack; so the only static import is cli/node-version.js, which imports nothing, and the
// rest is loaded with `await import()` once the version is known to be good.
import { checkNodeVersion } from './cli/node-version.js';

const tooOld = checkNodeVersion(process.versions.node);
if (tooOld !== undefined) {
  process.stderr.write(`bundle-promoter: ${tooOld}\n`);
  process.exitCode = 1;
} else {
  const { main } = await import('./cli/main.js');
  const controller = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort(new Error(sig)));
  process.exitCode = await main(process.argv.slice(2), {
    stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: controller.signal,
  });
}
