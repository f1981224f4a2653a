/**
 * Entry of the listener's Kafka producer thread: it owns one kafkajs producer and turns the main
 * thread's requests into produce requests. Record batching, CRCs, partitioning and the socket
 * (most of the listener's CPU per change) run here, beside the main thread's decoding.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Producer } from 'kafkajs';
import { createLogger } from '@walpurge/core';
import { createKafka } from '@walpurge/kafka';
import { listenerProducerConfig } from './producer-settings.js';
import {
  serializeError,
  unpackRecords,
  type FromProducerThread,
  type ProducerThreadData,
  type ToProducerThread,
} from './producer-thread-messages.js';

const port = parentPort;
if (port === null) throw new Error('producer-worker runs only as a worker thread');

const data = workerData as ProducerThreadData;
const post = (message: FromProducerThread): void => port.postMessage(message);
const logger = createLogger({
  level: data.logLevel,
  pretty: false,
  destination: { write: (line: string) => post({ type: 'log', line }) },
});
// The main thread's TLS material and connect history: this client is one more of the same process.
const producer: Producer = createKafka(data.config, {
  logger,
  tls: data.tls,
  connectedBefore: data.connectedBefore,
}).producer(listenerProducerConfig());

async function handle(request: ToProducerThread): Promise<void> {
  switch (request.type) {
    case 'connect':
      await producer.connect();
      return;
    case 'send':
      await producer.send({ topic: request.topic, acks: -1, messages: unpackRecords(request.records) });
      return;
    case 'disconnect':
      await producer.disconnect();
      return;
  }
}

// Requests are answered in the order they finish; the main thread sends one produce request at a
// time, so per-row order is the main thread's to keep, as with an in-process producer.
port.on('message', (request: ToProducerThread) => {
  handle(request).then(
    () => post({ type: 'done', id: request.id }),
    (error: unknown) => post({ type: 'failed', id: request.id, error: serializeError(error) }),
  );
});
