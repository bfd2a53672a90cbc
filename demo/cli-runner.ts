import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Narrator } from './narrator.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunnerOptions {
  /** The built CLI (`dist/cli.js`), started with this process's Node. */
  readonly cli: string;
  /** Working directory of every command: the demo directory, so the printed commands work there as shown. */
  readonly cwd: string;
  readonly narrator: Narrator;
  /** Variables added to this process's environment (`COSIGN_PASSWORD`…). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Runs one-shot `bundle-promoter` commands as child processes, printing each as the user would type it. */
export class CliRunner {
  readonly #options: CliRunnerOptions;

  constructor(options: CliRunnerOptions) {
    this.#options = options;
  }

  /** Prints the command, runs it to completion (killed on `signal`) and returns its exit code and output. */
  async run(args: readonly string[], signal: AbortSignal): Promise<CliResult> {
    const { cli, cwd, narrator, env } = this.#options;
    narrator.command(args);
    const child = spawn(process.execPath, [cli, ...args], {
      cwd, env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGTERM',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    child.on('error', () => { /* the abort; reported through 'close' and the signal */ });
    const [code, killedBy] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    signal.throwIfAborted();
    return { code: code ?? (killedBy === 'SIGKILL' ? 137 : 143), stdout, stderr };
  }
}
