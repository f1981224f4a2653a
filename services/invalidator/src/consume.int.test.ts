import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { messageKey } from '@walpurge/protocol';
import {
  changeEvent,
  connectProducer,
  deleteKeys,
  endOffsets,
  invalidatorConfig,
  kafkaClient,
  metricValue,
  readTopic,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
  type RawMessage,
} from '../test/harness.js';
import { deadLetterHeaders } from './kafka/dead-letter.js';

const services = inject('services');
const fixtures = new URL('../../../packages/protocol/src/__fixtures__/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8');

let kafka: Kafka;
let admin: Admin;
let redis: Redis;
const topics: string[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  kafka = kafkaClient(services);
  admin = kafka.admin();
  await admin.connect();
  redis = new Redis(services.redisUrl);
});
afterAll(async () => {
  await admin?.deleteTopics({ topics }).catch(() => undefined);
  for (const prefix of prefixes) await deleteKeys(redis, prefix);
  await admin?.disconnect();
  redis?.disconnect();
});

/** Which of `keys` (unprefixed) still exist under `prefix`. */
async function existing(prefix: string, keys: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const key of keys) if ((await redis.exists(prefix + key)) === 1) found.push(key);
  return found;
}

async function seed(
  prefix: string,
  keys: readonly string[],
  tags: Record<string, string[]> = {},
): Promise<void> {
  const multi = redis.multi();
  for (const key of keys) multi.set(prefix + key, 'cached');
  for (const [tag, members] of Object.entries(tags)) multi.sadd(`${prefix}tag:${tag}`, ...members);
  await multi.exec();
}

describe('invalidator consuming Kafka', () => {
  it('purges keys, patterns and tags for protocol v1 and Debezium events; poison goes to the dead-letter topic and the partition goes on', async () => {
    const names = uniqueNames('consume');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix.slice(0, -1));
    const { prefix } = names;
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        rules: [
          {
            table: 'public.users',
            name: 'users',
            redis: {
              keys: ['user:{id}', 'user_by_email:{old.email}', 'user_by_email:{new.email}'],
              patterns: ['user:{id}:*'],
              tags: ['user-{id}'],
            },
            // A truncate cannot render user-{id}: this tag (of every user entry) covers it.
            fallback: { redis: { tags: ['users'] } },
          },
          { table: 'billing.invoices', redis: { keys: ['invoice:{id}'], tags: ['invoices'] } },
        ],
      }),
    );
    const producer = await connectProducer(kafka);
    try {
      const purged = [
        ...['user:1', 'user:1:posts', 'user:1:likes', 'user_by_email:a@old', 'user_by_email:a@new'],
        ...['page:1', 'page:1b', 'user:42', 'user:42:x', 'user_by_email:old@example.com'],
        ...['user_by_email:new@example.com', 'user:7', 'user_by_email:x@example.com'],
        ...['invoice:1', 'invoice:2:lines', 'inv-page', 'user:1000', 'user:1000:a'],
      ];
      const survivors = [
        ...['user:2', 'user:2:posts', 'user:10:posts', 'user:100', 'user_by_email:other'],
        ...['page:2', 'invoices:total', 'user:7x', 'user:4200'],
      ].filter((key) => !purged.includes(key));
      await seed(prefix, [...purged, ...survivors], {
        'user-1': ['page:1', 'page:1b'],
        'user-2': ['page:2'],
        invoices: ['inv-page'],
      });

      const after = changeEvent('d', 'users', { key: { id: 1000 }, before: { id: 1000 }, after: null });
      const poisonKey = messageKey(after);
      const poison: RawMessage[] = [
        { key: poisonKey, value: 'not json {' },
        { key: poisonKey, value: '{"v":2,"op":"u"}' },
        { key: poisonKey, value: '{"hello":"world"}' },
        { key: poisonKey, value: JSON.stringify({ ...after, op: 'u', after: null }) },
        {
          key: poisonKey,
          value: '{"payload":{"op":"x","source":{}},"schema":{}}',
          headers: { trace: 'abc' },
        },
      ];
      const v1Update = changeEvent('u', 'users', {
        key: { id: 1 },
        before: { id: 1, email: 'a@old' },
        after: { id: 1, email: 'a@new' },
      });
      await producer.sendEvents(names.topic, [v1Update]);
      await producer.sendRaw(names.topic, [
        { key: fixture('debezium-key-with-schema.json'), value: fixture('debezium-update-with-schema.json') },
        { key: '{"id":7}', value: fixture('debezium-insert-no-schema.json') },
        {
          key: fixture('debezium-key-with-schema.json'),
          value: fixture('debezium-delete-default-identity.json'),
        },
        { key: null, value: fixture('debezium-truncate.json') },
        // A tombstone and a logical decoding message carry no row change: skipped, not dead-lettered.
        { key: '{"id":42}', value: null },
        { key: null, value: fixture('debezium-message.json') },
        ...poison,
      ]);
      // Behind the poison, on its partition: must still be handled.
      await producer.sendEvents(names.topic, [after]);

      await waitForAllCommitted(admin, names.group, names.topic);
      expect(await existing(prefix, purged)).toEqual([]);
      expect(await existing(prefix, survivors)).toEqual(survivors);
      // Purged tag members are removed from their set; other tag sets are untouched.
      expect(await redis.exists(`${prefix}tag:user-1`)).toBe(0);
      expect(await redis.smembers(`${prefix}tag:user-2`)).toEqual(['page:2']);

      const dlq = await readTopic(kafka, names.deadLetterTopic);
      try {
        await expect.poll(() => dlq.messages.length, { timeout: 20_000, interval: 100 }).toBe(poison.length);
      } finally {
        await dlq.stop();
      }
      expect(dlq.messages.map((m) => m.value)).toEqual(poison.map((m) => m.value));
      expect(new Set(dlq.messages.map((m) => m.key))).toEqual(new Set([poisonKey]));
      const partitions = new Set(dlq.messages.map((m) => m.headers[deadLetterHeaders.partition]));
      expect(partitions.size).toBe(1);
      const offsets = dlq.messages.map((m) => Number(m.headers[deadLetterHeaders.offset]));
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      for (const message of dlq.messages) {
        expect(message.headers[deadLetterHeaders.reason]).toBe('undecodable');
        expect(message.headers[deadLetterHeaders.errorCode]).toBe('WP_EVENT_INVALID');
        expect(message.headers[deadLetterHeaders.topic]).toBe(names.topic);
        expect(message.headers[deadLetterHeaders.error]?.length).toBeGreaterThan(5);
      }
      expect(dlq.messages[0]?.headers[deadLetterHeaders.error]).toMatch(/^not JSON/);
      expect(dlq.messages[1]?.headers[deadLetterHeaders.error]).toMatch(/not a walpurge v1 change event: v/);
      expect(dlq.messages[2]?.headers[deadLetterHeaders.error]).toMatch(/neither a walpurge v1/);
      expect(dlq.messages[3]?.headers[deadLetterHeaders.error]).toMatch(/after: op 'u' needs an 'after' row/);
      expect(dlq.messages[4]?.headers[deadLetterHeaders.error]).toMatch(
        /not a Debezium PostgreSQL change event/,
      );
      // Original headers travel with the message.
      expect(dlq.messages[4]?.headers['trace']).toBe('abc');

      const { registry } = running;
      expect(
        await metricValue(registry, 'walpurge_invalidator_dead_letters_total', { reason: 'undecodable' }),
      ).toBe(poison.length);
      // v1 update, Debezium update/insert/delete/truncate, v1 delete.
      expect(await metricValue(registry, 'walpurge_invalidator_events_total')).toBe(6);
      expect(await metricValue(registry, 'walpurge_invalidator_events_total', { op: 't' })).toBe(1);
      expect(
        await metricValue(registry, 'walpurge_invalidator_purges_total', {
          target: 'redis',
          kind: 'keys',
          outcome: 'success',
        }),
      ).toBeGreaterThanOrEqual(8);
      expect(
        await metricValue(registry, 'walpurge_invalidator_purges_total', {
          target: 'redis',
          outcome: 'failure',
        }),
      ).toBe(0);
      // Deletes without the old email (Debezium under REPLICA IDENTITY DEFAULT, the v1 delete of
      // 1000): {old.email} is unknown and counted, once per event.
      expect(
        await metricValue(registry, 'walpurge_invalidator_unknown_values_total', {
          rule: 'users',
          reason: 'old-value-unavailable',
        }),
      ).toBe(2);
      await expect
        .poll(() => metricValue(registry, 'walpurge_invalidator_consumer_lag_messages'), { timeout: 5_000 })
        .toBe(0);
      expect((await endOffsets(admin, names.topic)).reduce((a, b) => a + b, 0)).toBe(13);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });

  it('hostile row values (*, ?, [, ], \\) and a hostile key prefix never widen a purge: neighbouring keys survive', async () => {
    const names = uniqueNames('hostile');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix.slice(0, -1));
    const base = names.prefix.slice(0, -1);
    // Unescaped, this prefix as a glob would also match the neighbour prefix below.
    const prefix = `${base}:[*?]\\:`;
    const neighbourPrefix = `${base}:*:`;
    const running = await startInvalidator(
      invalidatorConfig(
        services,
        { ...names, prefix },
        {
          rules: [
            // One pattern per event: a server-side SCAN MATCH per pattern.
            {
              table: 'one',
              on: ['insert', 'update', 'delete'],
              redis: { keys: ['h:{name}'], patterns: ['h:{name}:*'], tags: ['h-{name}'] },
            },
            // Four patterns per event: one SCAN pass checked client-side against every pattern.
            { table: 'four', redis: { patterns: ['a:{name}:*', 'b:{name}:*', 'c:{name}:*', 'd:{name}:*'] } },
          ],
          invalidator: { coalesceWindowMs: 50 },
        },
      ),
    );
    const producer = await connectProducer(kafka);
    try {
      const hostile = ['*', '?', '[', ']', '\\', '[ab]', 'a*', '\\*', 'x?y', '[^a]', 'a-z'];
      const neighbours = ['a', 'b', 'ab', 'x', 'xzy', 'xy', 'a-', 'z', '', 'aa'];
      const groups = ['h', 'a', 'b', 'c', 'd'];
      const hostileKeys = groups
        .flatMap((g) => hostile.map((n) => `${g}:${n}:1`))
        .concat(
          hostile.map((n) => `h:${n}`),
          hostile.map((n) => `m:${n}`),
        );
      const neighbourKeys = groups
        .flatMap((g) => neighbours.map((n) => `${g}:${n}:1`))
        .concat(
          neighbours.map((n) => `h:${n}`),
          ['m:neighbour'],
        );
      const tags: Record<string, string[]> = { 'h-a': ['m:neighbour'] };
      for (const n of hostile) tags[`h-${n}`] = [`m:${n}`];
      await seed(prefix, [...hostileKeys, ...neighbourKeys], tags);
      await seed(neighbourPrefix, [...hostileKeys, ...neighbourKeys], tags);

      const event = (table: string, name: string) =>
        changeEvent('c', table, { key: { name }, before: null, after: { name } });
      for (const name of hostile) {
        // One at a time, so each batch has a single pattern.
        await producer.sendEvents(names.topic, [event('one', name)]);
        await waitForAllCommitted(admin, names.group, names.topic);
      }
      await producer.sendEvents(
        names.topic,
        hostile.map((name) => event('four', name)),
      );
      await waitForAllCommitted(admin, names.group, names.topic);

      expect(await existing(prefix, hostileKeys)).toEqual([]);
      expect(await existing(prefix, neighbourKeys)).toEqual(neighbourKeys);
      expect(await redis.smembers(`${prefix}tag:h-a`)).toEqual(['m:neighbour']);
      // Nothing under the look-alike prefix was touched.
      expect(await existing(neighbourPrefix, [...hostileKeys, ...neighbourKeys])).toEqual([
        ...hostileKeys,
        ...neighbourKeys,
      ]);
      expect(await redis.scard(`${neighbourPrefix}tag:h-*`)).toBe(1);
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_purges_total', {
          kind: 'patterns',
          outcome: 'success',
        }),
      ).toBe(hostile.length * 5);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });

  it('a purge Redis rejects for good (tag set of another type) dead-letters only its event; the rest of the batch and the partition go on', async () => {
    const names = uniqueNames('wrongtype');
    topics.push(names.topic, names.deadLetterTopic, names.cdnTopic);
    prefixes.push(names.prefix.slice(0, -1));
    const { prefix } = names;
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        partitions: 1,
        rules: [
          {
            table: 'posts',
            on: ['insert', 'update', 'delete'],
            redis: { keys: ['post:{id}'], tags: ['post-{id}'] },
          },
        ],
        invalidator: { coalesceWindowMs: 50 },
      }),
    );
    const producer = await connectProducer(kafka);
    try {
      await seed(prefix, ['post:1', 'post:2', 'post:3', 'post:4', 'page:1', 'page:3'], {
        'post-1': ['page:1'],
        'post-3': ['page:3'],
      });
      await redis.set(`${prefix}tag:post-2`, 'not a set');
      const events = [1, 2, 3].map((id) =>
        changeEvent('c', 'posts', { key: { id }, before: null, after: { id } }),
      );
      await producer.sendEvents(names.topic, events);
      await producer.sendEvents(names.topic, [
        changeEvent('c', 'posts', { key: { id: 4 }, before: null, after: { id: 4 } }),
      ]);
      await waitForAllCommitted(admin, names.group, names.topic);

      expect(await existing(prefix, ['post:1', 'post:2', 'post:3', 'post:4', 'page:1', 'page:3'])).toEqual(
        [],
      );
      const dlq = await readTopic(kafka, names.deadLetterTopic);
      try {
        await expect.poll(() => dlq.messages.length, { timeout: 20_000 }).toBe(1);
      } finally {
        await dlq.stop();
      }
      const [dead] = dlq.messages;
      expect(dead?.value).toBe(JSON.stringify(events[1]));
      expect(dead?.headers[deadLetterHeaders.reason]).toBe('purge-rejected');
      expect(dead?.headers[deadLetterHeaders.offset]).toBe('1');
      expect(dead?.headers[deadLetterHeaders.error]).toContain(
        `tag set ${prefix}tag:post-2 holds another type`,
      );
      // What `walpurge dlq list|redrive` select on.
      expect(dead?.headers[deadLetterHeaders.cause]).toBe('purge-rejected');
      expect(dead?.headers[deadLetterHeaders.target]).toBe('redis');
      expect(dead?.headers[deadLetterHeaders.rules]).toBe('rules[0] public.posts');
      expect(dead?.headers[deadLetterHeaders.table]).toBe('public.posts');
      expect(
        await metricValue(running.registry, 'walpurge_invalidator_dead_letters_total', {
          reason: 'purge-rejected',
        }),
      ).toBe(1);
      // The bad key is left alone: it is not ours to delete.
      expect(await redis.get(`${prefix}tag:post-2`)).toBe('not a set');
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });
});
