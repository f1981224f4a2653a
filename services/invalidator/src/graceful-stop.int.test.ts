/**
 * A graceful stop commits everything purged before it leaves the group, and nothing more: a stop
 * begun while the last chunk is being purged must still commit it, or the next start purges it
 * again (harmless, but a stop that loses commits could as well lose track of a purge).
 */
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PurgeTargets } from '@walpurge/rules';
import type { Purger } from './targets/purger.js';
import {
  changeEvent,
  committedOffsets,
  connectProducer,
  endOffsets,
  invalidatorConfig,
  kafkaClient,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
  type Running,
} from '../test/harness.js';

const services = inject('services');

let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
});

/** A Redis-stage purger that records keys and calls `onKey` as each is purged. */
function recordingPurger(onKey: (key: string) => void): Purger {
  return {
    name: 'redis',
    stage: 'redis',
    count: (targets: PurgeTargets) => targets.redis.keys.length,
    purge: async (targets: PurgeTargets) => {
      for (const key of targets.redis.keys) onKey(key);
    },
    close: async () => undefined,
  };
}

describe('graceful stop of the Kafka invalidator', () => {
  it('begun the moment the last chunk is purged, commits every purged offset before leaving; a restart purges nothing again', async () => {
    const names = uniqueNames('graceful_stop');
    const config = invalidatorConfig(services, names, {
      partitions: 3,
      rules: [{ table: 'items', redis: { keys: ['item:{id}'] } }],
      // Chunks of 10: a partition's later commits queue behind the one in flight.
      invalidator: { maxBatchEvents: 10 },
    });
    const ids = Array.from({ length: 300 }, (_, i) => i);
    const purged = new Set<string>();
    let running: Running | undefined;
    let stopping: Promise<void> | undefined;
    running = await startInvalidator(config, {
      purgers: [
        recordingPurger((key) => {
          purged.add(key);
          // Not awaited: the stop starts while the purge of the last chunk is still on the stack,
          // before its offset was handed over for commit.
          if (purged.size === ids.length) stopping ??= running?.stop();
        }),
      ],
    });
    const producer = await connectProducer(kafka);
    try {
      for (let start = 0; start < ids.length; start += 50)
        await producer.sendEvents(
          names.topic,
          ids
            .slice(start, start + 50)
            .map((id) => changeEvent('u', 'items', { key: { id }, before: null, after: { id } })),
        );
      await expect.poll(() => stopping !== undefined, { timeout: 30_000 }).toBe(true);
      await stopping;
      expect(purged.size).toBe(ids.length);
      expect(await committedOffsets(admin, names.group, names.topic)).toEqual(
        await endOffsets(admin, names.topic),
      );

      const again: string[] = [];
      running = await startInvalidator(config, { purgers: [recordingPurger((key) => again.push(key))] });
      const marker = 10_000;
      await producer.sendEvents(names.topic, [
        changeEvent('u', 'items', { key: { id: marker }, before: null, after: { id: marker } }),
      ]);
      await waitForAllCommitted(admin, names.group, names.topic);
      // Only the new event: nothing the first process purged came back.
      expect(again).toEqual([`item:${marker}`]);
    } finally {
      await producer.producer.disconnect();
      await running?.stop();
    }
  });
});
