import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaConfig } from '@walpurge/config';
import { ErrorCode, type WalpurgeError } from '@walpurge/core';
import { createKafka } from './kafka-client.js';

// A "broker" that drops every connection once the client's TLS hello arrives (destroyed before it,
// the client would see a plain ECONNRESET instead): a TLS handshake reset, as when a broker restarts.
let dropper: net.Server;
let broker = '';

beforeAll(async () => {
  dropper = net.createServer((socket) => socket.once('data', () => socket.destroy()));
  await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
  broker = `127.0.0.1:${(dropper.address() as net.AddressInfo).port}`;
});

afterAll(() => {
  dropper.close();
});

async function connectError(connectedBefore: boolean | undefined): Promise<WalpurgeError> {
  const config = KafkaConfig.parse({ brokers: [broker], ssl: true });
  const admin = createKafka(config, {
    retry: { retries: 0 },
    ...(connectedBefore === undefined ? {} : { connectedBefore }),
  }).admin();
  return admin.connect().then(
    () => {
      throw new Error('connected');
    },
    (error: unknown) => error as WalpurgeError,
  );
}

describe('createKafka: connectedBefore', () => {
  it('a reset TLS handshake on a client of a process that never connected refuses the settings', async () => {
    const error = await connectError(undefined);
    expect(error).toMatchObject({ code: ErrorCode.KafkaSecurity, retriable: false });
  });

  it('the same reset is an outage (retriable) for a client of a process that has connected before', async () => {
    const error = await connectError(true);
    expect(error).toMatchObject({ code: ErrorCode.KafkaUnavailable, retriable: true });
  });
});
