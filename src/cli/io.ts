import { addAbortSignal, type Readable } from 'node:stream';

/** The process's streams and environment, injected so that commands run in tests without a child process. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** Cancelled on SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

/** A usage mistake: exit code 2 and the command's usage line. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Reads a stream to its end; `signal` (the command's interrupt) stops the wait: Ctrl-C exits 130 there too. */
export async function readAll(stream: NodeJS.ReadableStream, signal?: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  if (signal) addAbortSignal(signal, stream as Readable);
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export function isTty(stream: NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

/** `1 bundle`, `2 bundles`, `0 signature tags`: a count and its noun, in the plural unless the count is 1. */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
