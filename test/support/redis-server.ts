import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerOptions {
  /** `requirepass`; the URL then carries it (`redis://:password@…`). */
  readonly password?: string;
  /** How long to wait for "Ready to accept connections". @defaultValue 15_000 */
  readonly startTimeoutMs?: number;
}

/** A `redis-server` of its own: 127.0.0.1, a free port, AOF on and RDB off, in a temp dir. Always `stop()` it. */
export interface TestRedisServer {
  /** `redis://127.0.0.1:<port>`, with the password when there is one. */
  readonly url: string;
  readonly port: number;
  /** The temp directory: the AOF and the server log live here; removed by `stop()`. */
  readonly dir: string;
  /** SIGTERM (Redis flushes the AOF), wait for exit, remove the dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGTERM, wait for exit, start again on the same port and dir: what was in the AOF comes back. */
  restart(): Promise<void>;
  /** Every key, sorted. */
  keys(): Promise<string[]>;
  /** Every key with its whole value as text (strings, hashes, lists, sets, sorted sets, streams): for leak tests. */
  dump(): Promise<string>;
}

const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Starts a private `redis-server` (Debian's redis-server, Redis 7) with `--save "" --appendonly yes` so that
 * {@link TestRedisServer.restart} keeps queued jobs, and `maxmemory-policy noeviction` as BullMQ wants.
 *
 * @example
 * const redis = await startRedisServer();
 * try { … new BullmqJobQueue({ url: redis.url, … }) … } finally { await redis.stop(); }
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<TestRedisServer> {
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), 'bp-redis-'));
  liveDirs.add(dir);
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  let child: ChildProcess | undefined;
  let port = 0;
  try {
    // redis-server cannot take port 0 (it means "no TCP"): take a free port, and try another if we lose the race.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        child = await launch(dir, port, options.password, timeoutMs);
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  let stopped: Promise<void> | undefined;
  const command = (args: readonly string[]): Promise<Reply> => call(port, options.password, [args]).then((r) => r[0] as Reply);
  const server: TestRedisServer = {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    dir,
    stop() {
      stopped ??= (async () => {
        await terminate(child);
        liveDirs.delete(dir);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    async restart() {
      if (stopped !== undefined) throw new Error('restart() after stop()');
      await terminate(child);
      child = await launch(dir, port, options.password, timeoutMs);
    },
    async keys() {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = (await command(['SCAN', cursor, 'COUNT', '1000'])) as [string, string[]];
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      return keys.sort();
    },
    async dump() {
      const keys = await server.keys();
      const types = (await call(port, options.password, keys.map((k) => ['TYPE', k]))) as string[];
      const reads = keys.map((key, i) => readCommand(key, types[i] ?? 'none'));
      const values = await call(port, options.password, reads);
      return keys.map((key, i) => `${key} (${types[i]})\n${flatten(values[i]).map((v) => `  ${v}`).join('\n')}`).join('\n');
    },
  };
  return server;
}

function readCommand(key: string, type: string): string[] {
  switch (type) {
    case 'string':
      return ['GET', key];
    case 'hash':
      return ['HGETALL', key];
    case 'list':
      return ['LRANGE', key, '0', '-1'];
    case 'set':
      return ['SMEMBERS', key];
    case 'zset':
      return ['ZRANGE', key, '0', '-1', 'WITHSCORES'];
    case 'stream':
      return ['XRANGE', key, '-', '+'];
    default:
      return ['TYPE', key];
  }
}

function flatten(reply: Reply | undefined): string[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) return reply.flatMap((r) => flatten(r));
  return [String(reply)];
}

async function launch(dir: string, port: number, password: string | undefined, timeoutMs: number): Promise<ChildProcess> {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no',
    '--logfile', '',
    ...(password === undefined ? [] : ['--requirepass', password]),
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        child.stdout?.resume(); // keep draining the log
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)));
    child.once('error', reject);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`redis-server not ready after ${timeoutMs} ms:\n${output}`)), timeoutMs);
      }),
    ]);
    return child;
  } catch (error) {
    await terminate(child);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function terminate(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

// A minimal RESP2 client: the harness reads Redis without the queue's own client library.

type Reply = string | number | null | Reply[];

/** Sends `commands` on one fresh connection (after AUTH when needed) and returns their replies in order. */
async function call(port: number, password: string | undefined, commands: readonly (readonly string[])[]): Promise<Reply[]> {
  if (commands.length === 0) return [];
  const all = password === undefined ? commands : [['AUTH', password], ...commands];
  const socket = createConnection({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    socket.write(all.map(encode).join(''));
    const replies = await readReplies(socket, all.length);
    const errors = replies.filter((r): r is ReplyError => r instanceof ReplyError);
    if (errors.length > 0) throw new Error(`redis: ${errors.map((e) => e.message).join('; ')}`);
    return (password === undefined ? replies : replies.slice(1)) as Reply[];
  } finally {
    socket.destroy();
  }
}

function encode(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

class ReplyError extends Error {}

async function readReplies(socket: Socket, count: number): Promise<(Reply | ReplyError)[]> {
  let buffer = Buffer.alloc(0);
  const replies: (Reply | ReplyError)[] = [];
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const parsed = parse(buffer, 0);
      if (parsed === undefined) break;
      replies.push(parsed.value);
      buffer = buffer.subarray(parsed.end);
      if (replies.length === count) return replies;
    }
  }
  throw new Error(`redis closed the connection after ${replies.length} of ${count} replies`);
}

/** One reply starting at `at`, or undefined when the buffer does not hold all of it yet. */
function parse(buffer: Buffer, at: number): { value: Reply | ReplyError; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', at);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[at] ?? 0);
  const line = buffer.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new ReplyError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      const items: Reply[] = [];
      let end = next;
      for (let i = 0; i < length; i++) {
        const item = parse(buffer, end);
        if (item === undefined) return undefined;
        if (item.value instanceof ReplyError) throw item.value;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`unexpected RESP type ${JSON.stringify(type)}`);
  }
}
