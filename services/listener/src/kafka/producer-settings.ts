import kafkajs, { type ProducerConfig } from 'kafkajs';

const { Partitioners } = kafkajs;

/**
 * The listener's producer, wherever it runs (its own thread or the main one): idempotent, acks from
 * all in-sync replicas, one request in flight, so retries can neither duplicate nor reorder. Retries
 * are bounded: a send that still fails makes the listener replay from its durable LSN.
 */
export function listenerProducerConfig(): ProducerConfig {
  return {
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 8 },
  };
}
