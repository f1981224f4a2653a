import { context, trace } from '@opentelemetry/api';
import type { Message } from 'kafkajs';
import { producerClientProblems, type KafkaConfig } from '@walpurge/config';
import {
  ErrorCode,
  WalpurgeError,
  activeTracer,
  errorMessage,
  type Logger,
  type Registry,
} from '@walpurge/core';
import { qualifiedTable, traceHeaders, type ChangeEvent, type ChangeSink } from '@walpurge/protocol';
import { createKafkaSinkMetrics, type KafkaSinkMetrics } from '../metrics.js';
import {
  createKafka,
  ensureTopics,
  nodeRunsPlatformatic,
  tlsOptions,
  topicMaxMessageBytes,
  watchWalpurgeTopics,
  type EnsureTopicsOptions,
  type TopicConfigReader,
} from '@walpurge/kafka';
import { pendingEventBytes } from '../stream/pending-bytes.js';
import { fitMessage, fitsBatch } from './message-size.js';
import { listenerProducerConfig } from './producer-settings.js';
import { ThreadProducer, type SinkProducer } from './producer-thread.js';

export { toKafkaMessage } from './message-size.js';

export interface KafkaSinkOptions {
  config: KafkaConfig;
  logger: Logger;
  registry?: Registry;
  /** Most messages per produce call (several publish calls are batched together up to this). */
  maxBatchMessages?: number;
  /**
   * Largest message (key + value + headers) Kafka accepts: the topic's max.message.bytes. Bigger
   * events lose their largest non-key columns (see fitMessage). Default: `config.maxMessageBytes`
   * (the `kafka.maxMessageBytes` key, 1,000,000 unless set).
   */
  maxMessageBytes?: number;
  /**
   * Run the producer in its own worker thread (default: `config.producerThread`), so that its work
   * per record runs beside the main thread's decoding instead of taking turns with it.
   */
  producerThread?: boolean;
}

/** A ChangeSink whose overlapping `publish` calls become durable in call order. */
export interface KafkaSink extends ChangeSink {
  readonly preservesCallOrder: true;
  /**
   * Calls it takes in flight: one per transaction, batched together into its produce requests, so
   * thousands of single-row transactions share one request. Memory stays bounded by the listener's
   * pending limits (each call holds at least one event), not by this.
   */
  readonly maxCallsInFlight: number;
  /** The size limit in force (from the config or the option), for logs and tests. */
  readonly maxMessageBytes: number;
  /** The event's record size, encoded once and reused when it is sent (see pendingEventBytes). */
  eventBytes(event: ChangeEvent, traced: boolean): number;
  /**
   * Creates the topic when missing and connects the producer; idempotent, retried by callers. Also
   * ends the refusal that follows a failed publish: call it before replaying.
   */
  connect(): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  messages: Message[];
  sizes: number[];
  /** Messages before this index were acknowledged by Kafka. */
  sent: number;
  /** Part of it is (or was) in a produce request: it can no longer be withdrawn. */
  started: boolean;
  /** The caller's: once aborted, the call is withdrawn unless started. */
  signal: AbortSignal | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

/** The messages of one produce request: whole or partial publish calls, in queue order. */
interface Slice {
  pending: Pending;
  end: number;
}

/**
 * Publishes change events to Kafka with an idempotent producer (acks from all in-sync replicas,
 * one request in flight, so retries can neither duplicate nor reorder). Publish calls are queued and
 * sent one produce request at a time, several calls batched into one request and big calls split
 * over several, so that no request exceeds maxMessageBytes (Kafka limits each partition's record
 * batch to it): per-row order holds across calls, and a call resolves only once Kafka acknowledged
 * every one of its messages. A failed request (or an event that cannot be encoded) rejects it and
 * everything queued behind it, and every later publish call until the next `connect`: so nothing
 * after a gap is written, even by calls the caller made before it saw the failure, until the
 * listener reconnects and replays from its last durable position.
 */
/**
 * An existing topic (created by hand, or by an older version) whose max.message.bytes is below
 * kafka.maxMessageBytes refuses the events in between: every replay would be refused again. Refused
 * at start instead, with both ways out.
 */
async function assertTopicAccepts(
  admin: TopicConfigReader,
  topic: string,
  maxBytes: number,
  logger: Logger,
): Promise<void> {
  let limit: number | undefined;
  try {
    limit = await topicMaxMessageBytes(admin, topic);
  } catch (error) {
    // Reading topic settings needs DescribeConfigs, which a producer-only ACL may not grant.
    logger.warn(
      { topic, err: error, hint: `check that the topic's max.message.bytes is at least ${maxBytes}` },
      'could not read the Kafka topic max.message.bytes; events above the topic limit would be refused',
    );
    return;
  }
  if (limit === undefined || limit >= maxBytes) return;
  throw new WalpurgeError(
    ErrorCode.ConfigInvalid,
    `Kafka topic "${topic}" accepts messages up to ${limit} bytes (max.message.bytes), below kafka.maxMessageBytes (${maxBytes}): larger change events would be refused and replayed forever`,
    {
      hint: `raise the topic's limit (kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config max.message.bytes=${maxBytes}) or set kafka.maxMessageBytes: ${limit}`,
    },
  );
}

/** At the listener's default maxPendingEvents: the pending limits, not this, bound what waits. */
const MAX_CALLS_IN_FLIGHT = 20_000;

export function createKafkaSink(options: KafkaSinkOptions): KafkaSink {
  const { config } = options;
  const logger = options.logger.child({ component: 'kafka-sink' });
  const metrics: KafkaSinkMetrics | undefined = options.registry
    ? createKafkaSinkMetrics(options.registry)
    : undefined;
  const maxBatch = options.maxBatchMessages ?? 5000;
  const maxBytes = options.maxMessageBytes ?? config.maxMessageBytes;
  // Read once: the producer thread takes the same TLS material instead of reading the files again.
  const tls = tlsOptions(config.ssl);
  const kafka = createKafka(config, { logger, tls });
  // Decided once: without tracing no header is built and nothing is allocated per record.
  const tracing = activeTracer('@walpurge/listener') !== undefined;
  const queue: Pending[] = [];
  const producerThread = options.producerThread ?? config.producerThread;
  let producer: SinkProducer | undefined;
  let connecting: Promise<SinkProducer> | undefined;
  let topicReady = false;
  let durabilityWatch: { stop(): void } | undefined;
  let sending = false;
  let closed = false;
  /** Set by a failed publish; later calls are refused with it until `connect` (the replay) clears it. */
  let failure: unknown;

  async function ensureTopic(): Promise<void> {
    if (topicReady) return;
    // Created as the invalidator creates it (replication, min.insync.replicas, a size limit that
    // accepts what the sink may send); an existing topic is left alone, its durability checked.
    const topicConfig = { ...config, maxMessageBytes: maxBytes };
    const ensureOptions: EnsureTopicsOptions = {
      topics: ['changes'],
      logger,
      registry: options.registry,
      verdicts: new Map(),
    };
    await ensureTopics(kafka, topicConfig, ensureOptions);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await assertTopicAccepts(admin, config.topic, maxBytes, logger);
    } finally {
      await admin.disconnect().catch(() => {});
    }
    topicReady = true;
    if (!closed) durabilityWatch ??= watchWalpurgeTopics(kafka, topicConfig, ensureOptions);
  }

  /**
   * validate and the config loader refuse what the platformatic client cannot honour; a config built
   * in code (or the producerThread option) is refused here, the same way, before anything connects.
   */
  function assertClientSupported(): void {
    const [problem] = producerClientProblems({ ...config, producerThread });
    if (problem)
      throw new WalpurgeError(ErrorCode.ConfigInvalid, `kafka.producerClient: ${problem.message}`, {
        retriable: false,
      });
    if (config.producerClient === 'platformatic' && !nodeRunsPlatformatic(process.versions.node))
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `kafka.producerClient: platformatic needs Node.js 20.19.4+, 22.18+ or 24.6+ (this is ${process.versions.node})`,
        { retriable: false, hint: "upgrade Node.js, or set kafka.producerClient: 'kafkajs'" },
      );
  }

  async function openProducer(): Promise<SinkProducer> {
    let created: SinkProducer | undefined;
    try {
      assertClientSupported();
      await ensureTopic();
      // Created only once this sink's admin has connected (ensureTopic): a handshake reset on the
      // producer's first connect is a broker restarting, not a refusal of the settings.
      if (config.producerClient === 'platformatic') {
        // Loaded only when chosen: the default path neither pays for it nor needs its Node version.
        const { PlatformaticProducer } = await import('./platformatic-producer.js');
        created = new PlatformaticProducer(config, { tls, connectedBefore: true });
      } else if (producerThread) created = new ThreadProducer(config, logger, { tls, connectedBefore: true });
      else created = kafka.producer(listenerProducerConfig());
      await created.connect();
      producer = created;
      return created;
    } catch (error) {
      await created?.disconnect().catch(() => {});
      // A refusal about the topic itself, or a TLS/SASL refusal (classified by @walpurge/kafka's
      // connect()), is not an outage: retrying would not change it, so the role stops with its line.
      if (error instanceof WalpurgeError && !error.retriable) throw error;
      throw new WalpurgeError(
        ErrorCode.KafkaUnavailable,
        `cannot connect to Kafka (${config.brokers.join(', ')}): ${errorMessage(error)}`,
        {
          retriable: true,
          hint: 'check kafka.brokers and that the brokers are up; walpurge keeps retrying and holds the replication slot meanwhile',
          cause: error,
        },
      );
    }
  }

  function getProducer(): Promise<SinkProducer> {
    if (producer) return Promise.resolve(producer);
    connecting ??= openProducer().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  /** After a failed request the idempotent producer's sequence state is suspect: start a fresh one. */
  async function dropProducer(): Promise<void> {
    const old = producer;
    producer = undefined;
    await old?.disconnect().catch(() => {});
  }

  /**
   * One abort listener per signal, not per call: the listener keeps thousands of small calls (one
   * per transaction) queued at once, and a listener each would cost a registration and a removal
   * per transaction. Calls not yet sent when their signal aborts are withdrawn (once sent, Kafka
   * decides).
   */
  const watchedSignals = new WeakSet<AbortSignal>();
  function watchAbort(signal: AbortSignal): void {
    if (watchedSignals.has(signal)) return;
    watchedSignals.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        const withdrawn: Pending[] = [];
        const kept: Pending[] = [];
        for (const pending of queue)
          (pending.signal === signal && !pending.started ? withdrawn : kept).push(pending);
        if (withdrawn.length === 0) return;
        queue.length = 0;
        for (const pending of kept) queue.push(pending);
        for (const pending of withdrawn)
          pending.reject(new WalpurgeError(ErrorCode.Aborted, 'publish aborted', { retriable: true }));
      },
      { once: true },
    );
  }

  /** The next produce request: from the queue's head, up to maxBatch messages and maxBytes. */
  function nextRequest(): { slices: Slice[]; count: number; bytes: number } {
    const slices: Slice[] = [];
    let count = 0;
    let bytes = 0;
    for (const pending of queue) {
      let end = pending.sent;
      while (end < pending.messages.length) {
        const size = pending.sizes[end] as number;
        if (count > 0 && (count + 1 > maxBatch || !fitsBatch(bytes + size, maxBytes))) break;
        count += 1;
        bytes += size;
        end += 1;
      }
      if (end > pending.sent) {
        pending.started = true;
        slices.push({ pending, end });
      }
      if (end < pending.messages.length) break;
    }
    return { slices, count, bytes };
  }

  async function pump(): Promise<void> {
    if (sending) return;
    sending = true;
    try {
      while (queue.length > 0) {
        const { slices, count, bytes } = nextRequest();
        const messages = slices.flatMap(({ pending, end }) => pending.messages.slice(pending.sent, end));
        const began = performance.now();
        try {
          const active = await getProducer();
          await active.send({ topic: config.topic, acks: -1, messages });
          metrics?.sendSeconds.observe((performance.now() - began) / 1000);
          metrics?.messages.inc(count);
          metrics?.bytes.inc(bytes);
          for (const { pending, end } of slices) pending.sent = end;
          // One splice per request: shifting them one by one is quadratic with thousands queued.
          let finished = 0;
          while (finished < queue.length) {
            const pending = queue[finished] as Pending;
            if (pending.sent < pending.messages.length) break;
            finished += 1;
          }
          for (const pending of queue.splice(0, finished)) pending.resolve();
        } catch (error) {
          metrics?.errors.inc();
          const failed = queue.splice(0);
          const wrapped =
            error instanceof WalpurgeError
              ? error
              : new WalpurgeError(
                  ErrorCode.KafkaUnavailable,
                  `Kafka did not acknowledge ${count} change events: ${errorMessage(error)}`,
                  {
                    retriable: true,
                    cause: error,
                  },
                );
          failure ??= wrapped;
          logger.warn({ err: wrapped, events: count, bytes }, 'publishing to Kafka failed');
          await dropProducer();
          for (const pending of failed) pending.reject(wrapped);
        }
      }
    } finally {
      sending = false;
    }
  }

  /**
   * The trace context of the caller's span (the listener's transaction), one set of headers for
   * every record of the call; the span also learns where its records go.
   */
  function currentTraceHeaders(): Record<string, string> | undefined {
    const active = context.active();
    trace.getSpan(active)?.setAttributes({
      'messaging.system': 'kafka',
      'messaging.destination.name': config.topic,
      'messaging.operation.type': 'send',
    });
    const headers = traceHeaders(active);
    return Object.keys(headers).length > 0 ? headers : undefined;
  }

  function toMessages(events: readonly ChangeEvent[]): { messages: Message[]; sizes: number[] } {
    const messages: Message[] = [];
    const sizes: number[] = [];
    const extraHeaders = tracing ? currentTraceHeaders() : undefined;
    for (const event of events) {
      const { message, bytes, omitted } = fitMessage(event, maxBytes, extraHeaders);
      if (omitted.length > 0) {
        metrics?.oversized.inc();
        logger.warn(
          { table: qualifiedTable(event), lsn: event.source.lsn, key: event.key, omitted, maxBytes },
          'change event too big for one Kafka message: sent without its largest columns (consumers treat them as unknown and purge by fallback)',
        );
      }
      messages.push(message);
      sizes.push(bytes);
    }
    return { messages, sizes };
  }

  return {
    preservesCallOrder: true,
    maxCallsInFlight: MAX_CALLS_IN_FLIGHT,
    maxMessageBytes: maxBytes,
    eventBytes: pendingEventBytes,
    async connect() {
      if (closed) throw new WalpurgeError(ErrorCode.Aborted, 'Kafka sink is closed');
      failure = undefined;
      await getProducer();
    },
    publish(events, signal) {
      if (events.length === 0) return Promise.resolve();
      if (closed)
        return Promise.reject(
          new WalpurgeError(ErrorCode.Aborted, 'Kafka sink is closed', { retriable: true }),
        );
      if (failure !== undefined) return Promise.reject(failure);
      if (signal?.aborted === true)
        return Promise.reject(new WalpurgeError(ErrorCode.Aborted, 'publish aborted', { retriable: true }));
      let encoded: { messages: Message[]; sizes: number[] };
      try {
        encoded = toMessages(events);
      } catch (error) {
        failure ??= error;
        return Promise.reject(error);
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({
          messages: encoded.messages,
          sizes: encoded.sizes,
          sent: 0,
          started: false,
          signal,
          resolve,
          reject,
        });
        if (signal !== undefined) watchAbort(signal);
        if (!sending) void pump();
      });
    },
    async close() {
      closed = true;
      durabilityWatch?.stop();
      for (const pending of queue.splice(0))
        pending.reject(new WalpurgeError(ErrorCode.Aborted, 'Kafka sink closed', { retriable: true }));
      await connecting?.catch(() => undefined);
      await dropProducer();
    },
  };
}
