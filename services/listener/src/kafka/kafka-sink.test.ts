import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { KafkaConfig, WalpurgeConfig } from '@walpurge/config';
import { ErrorCode, createLogger, type WalpurgeError } from '@walpurge/core';
import type { ChangeEvent } from '@walpurge/protocol';
import { createKafkaSink } from './kafka-sink.js';

const logger = createLogger({ level: 'silent', pretty: false });
// Never contacted: creating a sink opens no connection.
const brokers = ['127.0.0.1:9'];

describe('kafka.maxMessageBytes → Kafka sink', () => {
  it('defaults to 1,000,000 bytes', async () => {
    const sink = createKafkaSink({ config: KafkaConfig.parse({ brokers }), logger });
    expect(sink.maxMessageBytes).toBe(1_000_000);
    await sink.close();
  });

  it('takes the limit from the kafka section of walpurge.yaml, and the option overrides it', async () => {
    const { kafka } = WalpurgeConfig.parse({ transport: 'kafka', kafka: { brokers, maxMessageBytes: 4096 } });
    const fromConfig = createKafkaSink({ config: kafka as KafkaConfig, logger });
    const overridden = createKafkaSink({ config: kafka as KafkaConfig, logger, maxMessageBytes: 2048 });
    expect(fromConfig.maxMessageBytes).toBe(4096);
    expect(overridden.maxMessageBytes).toBe(2048);
    await Promise.all([fromConfig.close(), overridden.close()]);
  });

  it('rejects a limit too small for any message', () => {
    const result = KafkaConfig.safeParse({ brokers, maxMessageBytes: 100 });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toContain('at least 1024');
  });
});

function insert(id: string): ChangeEvent {
  return {
    v: 1,
    op: 'c',
    source: {
      db: 'app',
      schema: 'public',
      table: 'docs',
      lsn: '0/16B3748',
      xid: 7,
      commitTs: '2026-11-22T14:00:00.000Z',
      origin: null,
    },
    key: { id },
    before: null,
    after: { id },
    unchanged: [],
  };
}

describe('Kafka sink after a failed publish', () => {
  it('refuses every later call until it is connected again, so nothing after the gap is written', async () => {
    const sink = createKafkaSink({ config: KafkaConfig.parse({ brokers, maxMessageBytes: 1024 }), logger });
    const refused = (promise: Promise<void>): Promise<WalpurgeError> =>
      promise.then(
        () => {
          throw new Error('publish succeeded');
        },
        (error: unknown) => error as WalpurgeError,
      );
    // Made back to back, as the listener pipelines transactions: the second call comes before the
    // caller could see the first one fail. Neither reaches Kafka (none is reachable at 127.0.0.1:9).
    const tooBig = refused(sink.publish([insert('k'.repeat(1500))]));
    const after = refused(sink.publish([insert('short')]));
    const [first, second] = await Promise.all([tooBig, after]);
    expect(first.code).toBe(ErrorCode.EventInvalid);
    expect(first.retriable).toBe(false);
    expect(second).toBe(first);
    await sink.close();
  });
});

describe('Kafka sink: calls withdrawn by their signal', () => {
  it('withdraws every queued call of an aborted signal at once, with one abort listener for all of them', async () => {
    const sink = createKafkaSink({ config: KafkaConfig.parse({ brokers }), logger });
    const controller = new AbortController();
    const outcome = (promise: Promise<void>): Promise<unknown> =>
      promise.then(
        () => 'published',
        (e: unknown) => e,
      );
    // The first call is taken into a produce request at once (waiting for the unreachable broker):
    // started, it can no longer be withdrawn. The thousand behind it are only queued.
    let firstSettled = false;
    const first = outcome(sink.publish([insert('first')], controller.signal)).finally(() => {
      firstSettled = true;
    });
    const queued = Array.from({ length: 1000 }, (_, i) =>
      outcome(sink.publish([insert(String(i))], controller.signal)),
    );
    // One listener, not one per call: registering and removing one per transaction is what the
    // listener's thousands of single-row transactions in flight cannot afford.
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    const withdrawn = await Promise.all(queued);
    expect(withdrawn.every((e) => (e as WalpurgeError).code === ErrorCode.Aborted)).toBe(true);
    expect(firstSettled).toBe(false);
    // Closing ends it (the sink's own refusal, not the abort's); the connect attempt to the
    // unreachable broker is left to fail in the background.
    void sink.close();
    expect(((await first) as WalpurgeError).message).toBe('Kafka sink closed');
  });
});
