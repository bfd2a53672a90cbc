import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/cli/main.js';
import { eventually } from './eventually.js';

/** A long-running command (`run`, `controller`, `worker`) started in this process, with its log lines. */
export interface RunningCommand {
  /** JSON log lines so far (pino), parsed; non-JSON lines as `{ msg: line }`. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the exit code once it has stopped by itself or through {@link stop}. */
  readonly exited: Promise<number>;
  /** The first log line `match` accepts, waiting for it. */
  waitForLog(what: string, match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM-equivalent: aborts the command's signal and waits for its exit code. */
  stop(): Promise<number>;
}

export function startCommand(args: string[], env: NodeJS.ProcessEnv = {}): RunningCommand {
  const controller = new AbortController();
  const stderr = new PassThrough();
  const stdout = new PassThrough();
  const logs: Record<string, unknown>[] = [];
  let pending = '';
  stderr.on('data', (chunk: Buffer) => {
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
  stdout.resume();
  const exited = main(args, { stdout, stderr, stdin: Readable.from([]), env: { ...process.env, LOG_LEVEL: 'info', ...env }, signal: controller.signal });
  return {
    logs,
    exited,
    waitForLog: (what, match, timeoutMs = 30_000) => eventually(what, () => logs.find(match), { timeoutMs }),
    async stop() {
      controller.abort(new Error('SIGTERM'));
      return exited;
    },
  };
}
