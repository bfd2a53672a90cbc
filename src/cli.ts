#!/usr/bin/env node
// The process entry: everything else is importable without side effects (see src/cli/main.ts).
import { main } from './cli/main.js';

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort(new Error(sig)));
process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: controller.signal,
});
