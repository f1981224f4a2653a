import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { WalpurgeError } from '@walpurge/core';
import { freePort } from '@walpurge/testing';
import { asConnectionError } from './connection-errors.js';
import { connectOnce } from './queue-redis.js';

describe('connection failures as one operator line', () => {
  it('a kafkajs client that cannot reach its broker (what a role hits at start)', async () => {
    const port = await freePort();
    const kafka = new Kafka({
      clientId: 'walpurge-test',
      brokers: [`127.0.0.1:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    });
    const thrown = await kafka
      .admin()
      .connect()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const error = asConnectionError(thrown);
    expect(error).toBeInstanceOf(WalpurgeError);
    expect(error?.code).toBe('WP_KAFKA_UNAVAILABLE');
    expect(error?.message).toBe(`cannot reach Kafka at 127.0.0.1:${port}: connection refused`);
  });

  it('leaves other errors alone', () => {
    expect(asConnectionError(new Error('boom'))).toBeUndefined();
    expect(asConnectionError(new WalpurgeError('WP_INTERNAL', 'x'))).toBeUndefined();
  });

  it('a Redis that is not there fails at once, naming the address and not the password', async () => {
    const port = await freePort();
    const error = await connectOnce(`redis://:s3cret@127.0.0.1:${port}`, 'the queue Redis').then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(WalpurgeError);
    expect((error as WalpurgeError).message).toBe(
      `cannot reach the queue Redis at 127.0.0.1:${port}: connection refused`,
    );
  });
});
