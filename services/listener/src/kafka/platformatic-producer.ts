import { Producer } from '@platformatic/kafka';
import type { Message } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { platformaticConnection, type tlsOptions } from '@walpurge/kafka';
import { keyHash } from './murmur2.js';
import { classifyPlatformaticError } from './platformatic-errors.js';
import type { SinkProducer } from './producer-thread.js';

type Bytes = string | Buffer;
type PlatformaticClient = Producer<Bytes, Bytes, string, Bytes>;

export interface PlatformaticProducerOptions {
  /** kafkajs `ssl` as tlsOptions read it (PEM files read once per start): node:tls options as they are. */
  tls: ReturnType<typeof tlsOptions>;
  /** Another client of this process connected with these settings (see classifyPlatformaticError). */
  connectedBefore: boolean;
  connectTimeoutMs?: number;
  /**
   * Retries of each operation (default 2, see RETRIES). At least 2: the client turns
   * fewer into unlimited retries for an idempotent producer.
   */
  retries?: number;
}

/**
 * Few and short: this client looks the partition leaders up once and retries against the same
 * leader (only a stale-metadata answer refreshes them), so 8 retries with kafkajs's backoff kept a
 * restarting leader's partitions waiting about a minute. After these the sink fails the request
 * (retriable) and the listener replays it on a fresh producer, which reads the metadata anew.
 */
const RETRIES = 2;
const retryDelay = (_client: unknown, _operation: string, attempt: number): number => {
  const base = Math.min(300 * 2 ** Math.max(0, attempt - 1), 1_000);
  // ±20% as kafkajs's factor: producers that failed together do not retry in lockstep.
  return Math.round(base * (0.8 + Math.random() * 0.4));
};

/** Strings as UTF-8, as kafkajs encodes them (keys hash the same bytes, so land in the same partition). */
function toBuffer(data?: Bytes): Buffer | undefined {
  if (data === undefined) return undefined;
  return typeof data === 'string' ? Buffer.from(data) : data;
}

let unkeyed = 0;

/**
 * The same key → partition mapping as kafkajs's DefaultPartitioner (Java-compatible murmur2): a row's
 * events stay in one partition whichever client wrote them. The producer takes the modulo.
 */
function partitioner(_message: unknown, key: Buffer | undefined): number {
  if (key === undefined) return (unkeyed = (unkeyed + 1) & 0x7fffffff);
  return keyHash(key);
}

/**
 * The listener's producer on @platformatic/kafka (kafka.producerClient: platformatic), with the
 * guarantees of the kafkajs one: idempotent (which makes the client send with acks from all in-sync
 * replicas, one request in flight per connection), bounded retries, no topic auto-creation, the same
 * partitions. The sink sends one request at a time and starts a fresh producer after any failure, as
 * with kafkajs: the idempotent sequence state of a failed producer is never reused.
 */
export class PlatformaticProducer implements SinkProducer {
  private readonly client: PlatformaticClient;
  private connectedBefore: boolean;

  constructor(
    private readonly config: KafkaConfig,
    options: PlatformaticProducerOptions,
  ) {
    this.connectedBefore = options.connectedBefore;
    // Brokers, client id, TLS with SNI, SASL: as the kafkajs client connects.
    const connection = platformaticConnection(config, options.tls);
    try {
      this.client = new Producer<Bytes, Bytes, string, Bytes>({
        ...connection,
        idempotent: true,
        acks: -1,
        autocreateTopics: false,
        partitioner,
        serializers: { key: toBuffer, value: toBuffer, headerKey: toBuffer, headerValue: toBuffer },
        connectTimeout: options.connectTimeoutMs ?? 5_000,
        // As kafkajs: the broker waits up to 30 s for the in-sync replicas, and so do we.
        timeout: 30_000,
        // A little past the broker's own 30 s, so its answer (even a timeout) arrives first.
        requestTimeout: 35_000,
        retries: Math.max(2, options.retries ?? RETRIES),
        retryDelay,
      });
    } catch (error) {
      // Options it refuses (a client id with spaces): the same on every attempt.
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `the platformatic Kafka producer refused its settings`,
        {
          retriable: false,
          cause: error,
          hint: "check kafka.clientId, or use producerClient 'kafkajs'",
        },
      );
    }
  }

  /** Its producer id (the first contact: TLS, SASL) and the topic's partitions, before the first send. */
  async connect(): Promise<void> {
    try {
      await this.client.initIdempotentProducer({});
      await this.client.metadata({ topics: [this.config.topic] });
      this.connectedBefore = true;
    } catch (error) {
      throw this.classify(error, 'connect');
    }
  }

  async send(request: { topic: string; acks: -1; messages: Message[] }): Promise<void> {
    const { topic } = request;
    const messages = request.messages.map((message) => ({
      topic,
      key: message.key ?? undefined,
      value: message.value ?? undefined,
      headers: message.headers as Record<string, Bytes> | undefined,
      ...(message.timestamp !== undefined ? { timestamp: BigInt(message.timestamp) } : {}),
    }));
    try {
      await this.client.send({ messages });
    } catch (error) {
      throw this.classify(error, 'send');
    }
  }

  async disconnect(): Promise<void> {
    // force: a send still retrying is abandoned (it fails; the listener replays from its durable LSN).
    await this.client.close(true);
  }

  private classify(error: unknown, phase: 'connect' | 'send'): WalpurgeError {
    return classifyPlatformaticError(error, {
      brokers: this.config.brokers,
      topic: this.config.topic,
      phase,
      connectedBefore: this.connectedBefore,
    });
  }
}
