import { Redis, type Command, type RedisOptions } from 'ioredis';
import { settlesWithin } from '@walpurge/core';
import { redisTlsOptions, type RedisConnection } from '@walpurge/config';

/**
 * What every command on the queue Redis fails with once shutdown has given up on it. Deliberately
 * not a connection error: BullMQ retries those without pause while closing (it expects the server
 * to come back), which on an ended client becomes a busy loop that starves the event loop.
 */
export class QueueAbandonedError extends Error {
  constructor() {
    super('the flusher stopped using the queue Redis (shutdown gave up on it)');
    this.name = 'QueueAbandonedError';
  }
}

interface SharedState {
  abandoned: boolean;
  readonly clients: Set<Redis>;
}

/** An ioredis client that registers its copies (BullMQ's blocking client) and obeys abandonment. */
class TrackedRedis extends Redis {
  private readonly shared: SharedState;

  constructor(shared: SharedState, options: RedisOptions, url?: string) {
    if (url === undefined) super(options);
    else super(url, options);
    this.shared = shared;
    shared.clients.add(this);
  }

  override duplicate(override?: Partial<RedisOptions>): Redis {
    return new TrackedRedis(this.shared, { ...this.options, ...override });
  }

  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    if (this.shared.abandoned) {
      command.reject(new QueueAbandonedError());
      return command.promise;
    }
    return super.sendCommand(command, stream);
  }
}

/**
 * Every ioredis client the flusher holds on the queue Redis, including the blocking client BullMQ's
 * Worker duplicates from the one it is given, so shutdown can end all of them even while the
 * server is unreachable. Plain `quit()` waits forever then (commands queue up offline, because
 * BullMQ needs maxRetriesPerRequest: null), and ioredis' `disconnect()` of a client that is waiting
 * to reconnect neither emits 'end' nor fails its queued commands, which is what left BullMQ's
 * `worker.close()` (it awaits that 'end') and with it stop() hanging.
 */
export class QueueRedisClients {
  private readonly state: SharedState = { abandoned: false, clients: new Set() };

  constructor(private readonly connection: RedisConnection) {}

  create(options: RedisOptions = {}): Redis {
    return new TrackedRedis(
      this.state,
      {
        ...redisTlsOptions(this.connection),
        ...options,
        maxRetriesPerRequest: null,
        // ioredis' default backoff, until shutdown gives up on the server.
        retryStrategy: (times: number) => (this.state.abandoned ? null : Math.min(times * 50, 2_000)),
      },
      this.connection.url,
    );
  }

  /** True when every client is connected or already closed (an orderly close can still work). */
  allReady(): boolean {
    return [...this.state.clients].every((client) => client.status === 'ready' || client.status === 'end');
  }

  /** Orderly: QUIT what is connected (bounded by `timeoutMs`), end everything else at once. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all(
      [...this.state.clients].map(async (client) => {
        if (client.status === 'ready' && (await settlesWithin(client.quit(), timeoutMs))) return;
        await end(client, timeoutMs);
      }),
    );
  }

  /**
   * Shutdown gave up on the server: from now on every command fails with QueueAbandonedError, and
   * each client is ended; commands that were waiting for a connection fail too. That unblocks
   * whatever awaits them (the flush jobs in flight, BullMQ's close).
   */
  async abandon(timeoutMs: number): Promise<void> {
    this.state.abandoned = true;
    await Promise.all([...this.state.clients].map((client) => end(client, timeoutMs)));
  }
}

async function end(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'end') return;
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  // Should the server answer the extra attempt below after all, close that connection as well.
  const onReady = (): void => client.disconnect();
  client.once('ready', onReady);
  client.disconnect();
  // A half-open socket (server paused or partitioned) would wait for the peer's FIN forever.
  (client.stream as typeof client.stream | undefined)?.destroy();
  // Waiting to reconnect: disconnect() only cleared the timer. One more attempt lets ioredis' close
  // handler see the manual close, emit 'end' and fail the queued commands.
  if (client.status === 'reconnecting') client.connect().catch(() => undefined);
  await settlesWithin(ended, timeoutMs);
  client.off('ready', onReady);
}
