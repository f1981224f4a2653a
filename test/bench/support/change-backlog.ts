import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { toKafkaMessage } from '@walpurge/listener';
import type { ChangeEvent } from '@walpurge/protocol';

/** Messages per produce call: ~300 bytes each stays far below the broker's 1 MiB batch limit, even on one partition. */
const PER_SEND = 1000;
/** Produce calls in flight: the order of a backlog's events does not matter to the benchmark. */
const IN_FLIGHT = 8;

/**
 * Writes eventOf(0) … eventOf(count − 1) to `topic` as the listener writes them: its message (key,
 * value and headers, toKafkaMessage) and its partitioner (murmur2 of the key), so an invalidator
 * reading this backlog decodes and spreads exactly what it would read in production. Returns the
 * seconds it took.
 */
export async function writeChangeBacklog(
  brokers: string[],
  topic: string,
  count: number,
  eventOf: (i: number) => ChangeEvent,
): Promise<number> {
  const producer = new Kafka({ brokers, logLevel: logLevel.NOTHING }).producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const started = performance.now();
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < count) {
          const from = next;
          next = Math.min(count, next + PER_SEND);
          const messages = [];
          for (let i = from; i < next; i++) messages.push(toKafkaMessage(eventOf(i)));
          await producer.send({ topic, messages });
        }
      }),
    );
  } finally {
    await producer.disconnect();
  }
  return (performance.now() - started) / 1000;
}
