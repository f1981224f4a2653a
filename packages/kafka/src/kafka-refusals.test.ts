import { KafkaJSConnectionError, KafkaJSSASLAuthenticationError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { WalpurgeError } from '@walpurge/core';
import { classifyConnectError, securityFailure } from './kafka-refusals.js';

// kafkajs's typings give its error classes no constructor arguments; the classes take a message and
// (connection errors) { broker }.
const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
const ConnectionError = KafkaJSConnectionError as unknown as new (
  message: string,
  details?: { broker?: string; cause?: unknown },
) => Error;

describe('TLS and SASL refusals at connect()', () => {
  it("a mechanism the broker does not enable, as kafkajs's authenticator reports it", () => {
    const thrown = new SaslError('SASL PLAIN mechanism is not supported by the server');
    const error = classifyConnectError(thrown, ['kafka-1:9096']) as WalpurgeError;
    expect(error).toBeInstanceOf(WalpurgeError);
    expect(error.code).toBe('WP_KAFKA_SECURITY');
    expect(error.retriable).toBe(false);
    expect(error.message).toBe(
      'cannot connect to Kafka at kafka-1:9096: SASL: the broker does not offer this mechanism',
    );
    expect(error.hint).toMatch(/kafka\.sasl\.mechanism/);
  });

  it('a connection dropped during SASL is not a wrong password', () => {
    const failure = securityFailure(
      new SaslError('SASL PLAIN authentication failed: Connection closed by the server'),
    );
    expect(failure?.reason).not.toMatch(/authentication failed/);
    expect(failure?.reason).toMatch(/closed the connection/);
  });

  it('names the one broker that failed, deep in the chain, before the configured list', () => {
    const tls = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    const inner = new ConnectionError('Connection error: self-signed certificate in certificate chain', {
      broker: 'kafka-2:9093',
    });
    (inner as { cause?: unknown }).cause = tls;
    const outer = Object.assign(new Error('Failed to connect: ...'), { cause: inner });
    Object.defineProperty(outer, 'brokers', { value: ['kafka-1:9093', 'kafka-2:9093'] });
    const error = classifyConnectError(outer, ['kafka-1:9093', 'kafka-2:9093']) as WalpurgeError;
    expect(error.message).toMatch(/^cannot connect to Kafka at kafka-2:9093: TLS: /);
  });

  it('leaves an unreachable broker to the retrying paths', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' });
    expect(classifyConnectError(refused, ['127.0.0.1:9092'])).toBe(refused);
  });
});
