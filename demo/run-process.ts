import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { DemoFailure } from './demo-failure.js';
import { waitFor } from './wait-for.js';

export interface RunProcessOptions {
  /** The built CLI (`dist/cli.js`). */
  readonly cli: string;
  /** `run` and its flags. */
  readonly args: readonly string[];
  readonly cwd: string;
  /** The child's log (JSON lines from stderr) goes here. */
  readonly logFile: string;
  /** How long to wait for the `url` log line. @defaultValue 30_000 */
  readonly startTimeoutMs?: number;
  /** How long SIGTERM may take before SIGKILL. @defaultValue 30_000 */
  readonly stopTimeoutMs?: number;
}

/**
 * `bundle-promoter run --promotions DIR --listen 127.0.0.1:0` as a child process: started once its HTTP
 * server logs its `url`, stopped with SIGTERM (SIGKILL after a grace period). `stop()` is idempotent, and
 * a last-resort exit hook kills the child if the demo itself dies without calling it.
 */
export class RunProcess {
  readonly #child: ChildProcess;
  readonly #log: WriteStream;
  readonly #lines: Record<string, unknown>[] = [];
  readonly #exited: Promise<number>;
  readonly #options: RunProcessOptions;
  readonly #exitHook = (): void => { this.#child.kill('SIGKILL'); };
  #stopping: Promise<number> | undefined;

  private constructor(options: RunProcessOptions) {
    this.#options = options;
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info' };
    delete env['REDIS_URL']; // the embedded default: the job queue lives in the process
    this.#child = spawn(process.execPath, [options.cli, ...options.args], { cwd: options.cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    process.once('exit', this.#exitHook);
    this.#log = createWriteStream(options.logFile);
    let pending = '';
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.#log.write(chunk);
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          this.#lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.#lines.push({ msg: line });
        }
      }
    });
    this.#exited = new Promise((resolve) => {
      this.#child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        process.off('exit', this.#exitHook);
        this.#log.end();
        resolve(code ?? (signal === 'SIGKILL' ? 137 : 143));
      });
      this.#child.once('error', () => resolve(1));
    });
  }

  /** Starts the child and resolves with it once it serves HTTP; stops it again when it does not get there. */
  static async start(options: RunProcessOptions, signal: AbortSignal): Promise<{ run: RunProcess; url: string }> {
    const run = new RunProcess(options);
    try {
      const url = await waitFor('bundle-promoter run to serve HTTP', async () => {
        if (run.#child.exitCode !== null || run.#child.signalCode !== null) {
          throw new DemoFailure(`bundle-promoter run exited (${run.#child.exitCode ?? run.#child.signalCode}); see ${options.logFile}`);
        }
        const line = run.#lines.find((l) => typeof l['url'] === 'string');
        return line?.['url'] as string | undefined;
      }, { timeoutMs: options.startTimeoutMs ?? 30_000, intervalMs: 50, signal });
      return { run, url };
    } catch (e) {
      await run.stop();
      throw e;
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** SIGTERM, then SIGKILL after the grace period; the exit code. Idempotent. */
  stop(): Promise<number> {
    this.#stopping ??= (async () => {
      if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), this.#options.stopTimeoutMs ?? 30_000);
      try {
        return await this.#exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.#stopping;
  }

  /** Resolves when the child has exited, whoever stopped it. */
  get exited(): Promise<number> {
    return this.#exited;
  }
}
