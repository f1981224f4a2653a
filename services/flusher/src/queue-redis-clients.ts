import { Redis, type RedisOptions } from 'ioredis';
import { settlesWithin } from './settles-within.js';

/** An ioredis client that reports the copies BullMQ makes of it (the worker's blocking client). */
class TrackedRedis extends Redis {
  constructor(
    url: string,
    options: RedisOptions,
    private readonly onDuplicate: (copy: Redis) => void,
  ) {
    super(url, options);
  }

  override duplicate(override?: Partial<RedisOptions>): Redis {
    const copy = super.duplicate(override);
    this.onDuplicate(copy);
    return copy;
  }
}

/**
 * Every ioredis client the flusher holds on the queue Redis, including the blocking client BullMQ's
 * Worker duplicates from the one it is given, so shutdown can end all of them even while the
 * server is unreachable. Plain `quit()` waits forever then (commands queue up offline, because
 * BullMQ needs maxRetriesPerRequest: null), and ioredis' `disconnect()` of a client that is waiting
 * to reconnect neither emits 'end' nor fails its queued commands, which is what left BullMQ's
 * `worker.close()` (it awaits that 'end') and stop() hanging.
 */
export class QueueRedisClients {
  private readonly clients = new Set<Redis>();
  /** Once set, a lost connection ends the client instead of reconnecting. */
  private abandoning = false;

  constructor(private readonly url: string) {}

  create(options: RedisOptions = {}): Redis {
    const client = new TrackedRedis(
      this.url,
      {
        ...options,
        maxRetriesPerRequest: null,
        // ioredis' default backoff, until shutdown gives up on the server.
        retryStrategy: (times) => (this.abandoning ? null : Math.min(times * 50, 2_000)),
      },
      (copy) => this.clients.add(copy),
    );
    this.clients.add(client);
    return client;
  }

  /** True when every client is connected (so an orderly close can still reach the server). */
  allReady(): boolean {
    return [...this.clients].every((client) => client.status === 'ready' || client.status === 'end');
  }

  /** Orderly: QUIT what is connected (bounded by `timeoutMs`), end everything else at once. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all(
      [...this.clients].map(async (client) => {
        if (client.status === 'ready' && (await settlesWithin(client.quit(), timeoutMs))) return;
        await this.end(client, timeoutMs);
      }),
    );
  }

  /**
   * Shutdown gave up on the server: end every client now. Their queued and in-flight commands fail
   * with "Connection is closed", which unblocks whatever awaits them (BullMQ's close among them).
   */
  async abandon(timeoutMs: number): Promise<void> {
    this.abandoning = true;
    await Promise.all([...this.clients].map((client) => this.end(client, timeoutMs)));
  }

  private async end(client: Redis, timeoutMs: number): Promise<void> {
    if (client.status === 'end') return;
    this.abandoning = true;
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    // If the server answers the attempt below after all, close that connection too.
    const onReady = (): void => client.disconnect();
    client.once('ready', onReady);
    client.disconnect();
    // A half-open socket (server paused or partitioned) would wait for the peer's FIN forever.
    client.stream?.destroy();
    // Waiting to reconnect: disconnect() only cleared the timer. One more attempt lets ioredis'
    // close handler see the manual close, emit 'end' and fail the queued commands.
    if (client.status === 'reconnecting') client.connect().catch(() => undefined);
    await settlesWithin(ended, timeoutMs);
    client.off('ready', onReady);
  }
}
