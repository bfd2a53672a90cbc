/** Runs the built CLI (dist/cli.js, from `make build`) as a child process, the way a user does. */
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');

export interface CliRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export interface CliOptions {
  stdin?: string;
  /** Leave stdin open (a password prompt that is never answered). @defaultValue false */
  keepStdinOpen?: boolean;
  /** Replaces the environment; default: this process's. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The program to start, with `args` after it; default: this Node with dist/cli.js. */
  command?: string[];
  onStart?: (kill: (signal?: NodeJS.Signals) => void) => void;
}

export function cli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  const [program, ...pre] = options.command ?? [process.execPath, CLI];
  const child = spawn(program ?? process.execPath, [...pre, ...args], {
    env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  if (options.keepStdinOpen !== true) child.stdin.end(options.stdin ?? '');
  options.onStart?.((signal = 'SIGKILL') => child.kill(signal));
  return once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }));
}

/**
 * A "registry" on 127.0.0.1, port 0, that accepts every request and never answers: a command talking to
 * it waits until it is interrupted. `requested` resolves at the first request (the command is running).
 */
export class StallingRegistry {
  readonly #server: Server;
  readonly #events = new EventEmitter();
  readonly host: string;

  private constructor(server: Server, host: string) {
    this.#server = server;
    this.host = host;
    server.on('request', (req: IncomingMessage) => this.#events.emit('request', req));
  }

  static async start(): Promise<StallingRegistry> {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new StallingRegistry(server, `127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  /** The first request from now on, or a rejection after `timeoutMs`. */
  async nextRequest(timeoutMs = 20_000): Promise<IncomingMessage> {
    const [req] = await once(this.#events, 'request', { signal: AbortSignal.timeout(timeoutMs) });
    return req as IncomingMessage;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
  }
}

/** Starts a command against `registry` and sends it SIGINT once its first request has arrived. */
export async function interruptAtFirstRequest(registry: StallingRegistry, args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  const first = registry.nextRequest();
  return cli(args, {
    ...options,
    onStart: (kill) => { void first.then(() => kill('SIGINT'), () => kill('SIGKILL')); },
  });
}
