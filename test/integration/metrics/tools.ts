import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * The absolute path of `program` on PATH. A missing program fails the test with the apt package to
 * install: these tests exist to run the real tools, so skipping them would hide the gap.
 */
export function requireProgram(program: string, aptPackage: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '')) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return join(dir, program);
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${program} is not on PATH; these tests run the real tool: apt-get install -y ${aptPackage}`);
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to its end (at most `timeoutMs`), feeding `input` on stdin. */
export async function run(file: string, args: readonly string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(file, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(options.input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A loopback port that was free a moment ago (for programs that cannot be told to pick port 0). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Polls `probe` until it returns a value (not `undefined`) or `deadlineMs` passes; the error then names
 * `what` and the probe's last failure. Polling waits for a condition; it is not a fixed sleep.
 */
export async function waitFor<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) {
      throw new Error(`gave up after ${deadlineMs} ms waiting for ${what}${last === undefined ? '' : `: ${last instanceof Error ? last.message : String(last)}`}`);
    }
    await delay(100);
  }
}
