import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a redis-server, for faults a real server will not produce on demand: connections cut
 * mid-session, and replies that never arrive.
 *
 * @example
 * const proxy = await startRedisProxy(redis.port);
 * const queue = new BullmqJobQueue({ url: proxy.url, … });
 * proxy.swallowRepliesTo(/\r\nsubscribe\r\n/i); // connections that send SUBSCRIBE from now on get no more replies
 * proxy.dropConnections();                       // every client reconnects
 */
export interface TestRedisProxy {
  readonly url: string;
  /** Connections whose replies are being swallowed. */
  readonly swallowing: number;
  /** From now on, a connection whose client sends bytes matching `pattern` gets no reply again. */
  swallowRepliesTo(pattern: RegExp): void;
  /** Cuts every open connection, as a Redis restart or a network failure would. */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startRedisProxy(redisPort: number): Promise<TestRedisProxy> {
  const pairs = new Set<{ readonly client: Socket; readonly upstream: Socket }>();
  let swallowPattern: RegExp | undefined;
  let swallowing = 0;
  const server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    let swallowed = false;
    client.on('data', (chunk: Buffer) => {
      if (!swallowed && swallowPattern?.test(chunk.toString('latin1')) === true) {
        swallowed = true;
        swallowing++;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!swallowed) client.write(chunk);
    });
    // Either side ending ends both, as a server that closes its side would.
    const end = (): void => {
      if (pairs.delete(pair) && swallowed) swallowing--;
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('end', end);
      socket.on('close', end);
      socket.on('error', end);
    }
  });
  const dropConnections = (): void => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
  };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    get swallowing() {
      return swallowing;
    },
    swallowRepliesTo(pattern) {
      swallowPattern = pattern;
    },
    dropConnections,
    async close() {
      dropConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
