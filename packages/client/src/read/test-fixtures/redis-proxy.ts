import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface RedisProxy {
  url: string;
  /** Connections accepted so far, in order. */
  readonly connections: number;
  /** Stops passing Redis' replies and pushes to connection `index` (0-based); the socket stays open. */
  mute(index: number): void;
  close(): Promise<void>;
}

/**
 * TCP proxy in front of a real Redis that can silently drop what Redis sends to one connection: a
 * lost pub/sub message, or a server that hangs without disconnecting. 127.0.0.1 only.
 */
export async function startRedisProxy(target: string): Promise<RedisProxy> {
  const { hostname, port } = new URL(target);
  const muted = new Set<number>();
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((client) => {
    const index = accepted++;
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!muted.has(index)) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get connections() {
      return accepted;
    },
    mute: (index) => void muted.add(index),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
