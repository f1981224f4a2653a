import { describe, expect, it } from 'vitest';
import { KafkaConfig, WalpurgeConfig } from '@walpurge/config';
import { createLogger } from '@walpurge/core';
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
