import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/cli/main.js';
import { eventually } from './eventually.js';

/** The built CLI (`make build`/`make test` build it before the tests run). */
export const BUILT_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** A long-running command (`run`, `controller`, `worker`), in this process or a child, with its log lines. */
export interface RunningCommand {
  /** JSON log lines so far (pino), parsed; non-JSON lines as `{ msg: line }`. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the exit code once it has stopped. */
  readonly exited: Promise<number>;
  /** The first log line `match` accepts, waiting for it. */
  waitForLog(what: string, match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM (or its in-process equivalent) and the exit code. */
  stop(): Promise<number>;
}

/** Collects JSON log lines from a byte stream. */
function collect(stream: NodeJS.ReadableStream, logs: Record<string, unknown>[]): void {
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
}

function handle(logs: Record<string, unknown>[], exited: Promise<number>, stop: () => void): RunningCommand {
  return {
    logs,
    exited,
    waitForLog: (what, match, timeoutMs = 30_000) => eventually(what, () => logs.find(match), { timeoutMs }),
    async stop() {
      stop();
      return exited;
    },
  };
}

/** Runs `bundle-promoter ARGS` in this process through `main`, as the CLI entry would. */
export function startCommand(args: string[], env: NodeJS.ProcessEnv = {}): RunningCommand {
  const controller = new AbortController();
  const stderr = new PassThrough();
  const stdout = new PassThrough();
  const logs: Record<string, unknown>[] = [];
  collect(stderr, logs);
  stdout.resume();
  const exited = main(args, { stdout, stderr, stdin: Readable.from([]), env: { ...process.env, LOG_LEVEL: 'info', ...env }, signal: controller.signal });
  return handle(logs, exited, () => controller.abort(new Error('SIGTERM')));
}

/** A child process running the built CLI, as a Deployment would: killable with any signal. */
export interface SpawnedCommand extends RunningCommand {
  readonly child: ChildProcess;
  kill(signal: NodeJS.Signals): Promise<number>;
}

export function spawnCommand(args: string[], env: NodeJS.ProcessEnv = {}): SpawnedCommand {
  const child = spawn(process.execPath, [BUILT_CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  collect(child.stderr, logs);
  child.stdout.resume();
  const exited = once(child, 'exit').then(([code, signal]) => (typeof code === 'number' ? code : 128 + (signal === 'SIGKILL' ? 9 : 15)));
  const base = handle(logs, exited, () => child.kill('SIGTERM'));
  return {
    ...base,
    child,
    async kill(signal) {
      child.kill(signal);
      return exited;
    },
  };
}

/** A one-shot command's outcome. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a one-shot `bundle-promoter ARGS` in this process through `main` and collects its output. */
export async function runCommand(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => { stdout += c.toString(); });
  err.on('data', (c: Buffer) => { stderr += c.toString(); });
  const code = await main([...args], { stdout: out, stderr: err, stdin: Readable.from([]), env: { ...process.env, ...env } });
  return { code, stdout, stderr };
}
