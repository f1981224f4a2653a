import kafkajs, { type KafkaMessage } from 'kafkajs';
import { uniqueName } from './isolation.js';

/**
 * Reads `count` records of `topic` from the beginning (a fresh consumer group), each mapped by
 * `toRecord`, in the order the consumer received them (per partition: offset order). Fails naming
 * how many it read when they do not all arrive within `timeoutMs`.
 */
export async function readTopicRecords<T>(
  brokers: string[],
  topic: string,
  count: number,
  toRecord: (message: KafkaMessage, partition: number) => T,
  timeoutMs = 60_000,
): Promise<T[]> {
  const kafka = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('read') });
  const records: T[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        records.push(toRecord(message, partition));
        if (records.length >= count) resolve();
      },
    });
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`read ${records.length} of ${count} records`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return records;
}
