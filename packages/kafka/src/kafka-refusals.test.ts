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

  it("a certificate not valid yet, from core's one TLS table", () => {
    const early = new ConnectionError('Connection error: certificate is not yet valid', {
      broker: 'kafka-1:9093',
    });
    Object.assign(early, { code: 'CERT_NOT_YET_VALID' });
    const error = classifyConnectError(early, ['kafka-1:9093']) as WalpurgeError;
    expect(error.code).toBe('WP_KAFKA_SECURITY');
    expect(error.message).toBe(
      "cannot connect to Kafka at kafka-1:9093: TLS: the server's certificate is not valid yet (check the clocks)",
    );
    expect(error.hint).toBe("renew the server's certificate");
  });
});

describe('after a first connect, only verdicts stay fatal', () => {
  const closed = () => new ConnectionError('Connection closed by the server', { broker: 'kafka-1:9093' });
  const reset = () =>
    new ConnectionError(
      'Connection error: Client network socket disconnected before secure TLS connection was established',
      { broker: 'kafka-1:9093' },
    );
  const untrusted = () => {
    const error = new ConnectionError('Connection error: self-signed certificate in certificate chain', {
      broker: 'kafka-1:9093',
    });
    return Object.assign(error, { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
  };
  const badPassword = () => new SaslError('SASL SCRAM SHA512 authentication failed: Authentication failed');

  for (const [what, thrown] of [
    ['a connection closed by the server', closed],
    ['a handshake reset before TLS was set up', reset],
  ] as const) {
    it(`${what}: fatal before, an outage (retriable) after`, () => {
      const first = classifyConnectError(thrown(), ['kafka-1:9093'], false) as WalpurgeError;
      expect(first.code).toBe('WP_KAFKA_SECURITY');
      expect(first.retriable).toBe(false);
      const later = classifyConnectError(thrown(), ['kafka-1:9093'], true) as WalpurgeError;
      expect(later).toBeInstanceOf(WalpurgeError);
      expect(later.code).toBe('WP_KAFKA_UNAVAILABLE');
      expect(later.retriable).toBe(true);
      expect(later.message).toMatch(/^cannot connect to Kafka at kafka-1:9093: /);
    });
  }

  for (const [what, thrown] of [
    ['an untrusted certificate', untrusted],
    ['a wrong SASL password', badPassword],
  ] as const) {
    it(`${what}: fatal before and after`, () => {
      for (const connectedBefore of [false, true]) {
        const error = classifyConnectError(thrown(), ['kafka-1:9093'], connectedBefore) as WalpurgeError;
        expect(error.code).toBe('WP_KAFKA_SECURITY');
        expect(error.retriable).toBe(false);
      }
    });
  }
});
