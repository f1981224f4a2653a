import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { Admin, Kafka } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfigError, formatPath, Rule, type ConfigProblem } from '@walpurge/config';
import { createMetricsRegistry } from '@walpurge/core';
import { validateRulesAgainstSchema } from '@walpurge/rules';
import { createIsolatedDatabase, type IsolatedDatabase } from '@walpurge/testing';
import {
  changeEvent,
  connectProducer,
  deleteKeys,
  invalidatorConfig,
  kafkaClient,
  logger,
  metricValue,
  startInvalidator,
  uniqueNames,
  waitForAllCommitted,
} from '../test/harness.js';
import { createInvalidator } from './create-invalidator.js';

const services = inject('services');
const fixtures = new URL('../../../packages/protocol/src/__fixtures__/', import.meta.url);

let database: IsolatedDatabase;
let sql: pg.Client;
let kafka: Kafka;
let admin: Admin;
let redis: Redis;
const topics: string[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'inv_rules');
  sql = new pg.Client({ connectionString: database.url });
  await sql.connect();
  await sql.query(`
    CREATE TABLE users (id int PRIMARY KEY, email text, name text, bio text, age int);
    CREATE TABLE accounts (id int PRIMARY KEY, email text);
    ALTER TABLE accounts REPLICA IDENTITY FULL;
    CREATE TABLE log_lines (id int, line text);`);
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
  await sql?.end();
  await database?.drop();
});

const problemAt = (path: ReadonlyArray<PropertyKey>, message: string): ConfigProblem => ({
  path: formatPath(path),
  message,
});

describe('rules against the live schema', () => {
  it('refuses to start on unknown tables and columns and on old values REPLICA IDENTITY cannot deliver, naming each rule', async () => {
    const names = uniqueNames('inv_schema');
    const config = invalidatorConfig(services, names, {
      database: { url: database.url },
      rules: [
        {
          table: 'users',
          name: 'users-by-old-email',
          on: ['update'],
          redis: { keys: ['by_email:{old.email}'] },
        },
        { table: 'public.ghosts', name: 'ghosts', redis: { keys: ['ghost:{id}'] } },
        { table: 'users', when: { changed: ['nme'] }, redis: { keys: ['user:{id}', 'u:{emial}'] } },
        { table: 'users', on: ['delete'], cdn: { urls: ['https://x.test/by-email/{email}'] } },
        { table: 'accounts', redis: { keys: ['account_by_email:{old.email}'] } },
        { table: 'users', on: ['insert'], redis: { keys: ['new:{email}', 'old:{old.email}'] } },
        { table: 'log_lines', on: ['update'], redis: { keys: ['line:{old.id}'] } },
        {
          table: 'users',
          name: 'with-fallback',
          on: ['update'],
          redis: { keys: ['user:{id}'] },
          fallback: { redis: { patterns: ['user:{old.name}:*'] } },
        },
      ],
    });
    const invalidator = createInvalidator({
      config,
      logger,
      registry: createMetricsRegistry({ defaultMetrics: false }),
      consume: 'kafka',
      configFile: 'walpurge.yaml',
    });
    const error = await invalidator.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await invalidator.stop();
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.code).toBe('WP_SCHEMA_MISMATCH');
    expect(configError.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "rules[0].redis.keys[0]: rule 'users-by-old-email': {old.email} needs the old value of 'email', but public.users has REPLICA IDENTITY DEFAULT, which only sends the old values of id; run ALTER TABLE public.users REPLICA IDENTITY FULL",
      "rules[1].table: rule 'ghosts': unknown table public.ghosts (no such table, or not visible to this role)",
      "rules[2].when.changed[0]: unknown column 'nme' in public.users",
      "rules[2].redis.keys[1]: unknown column 'emial' in public.users",
      "rules[3].cdn.urls[0]: {email} on delete (rendered from the deleted row) needs the old value of 'email', but public.users has REPLICA IDENTITY DEFAULT, which only sends the old values of id; run ALTER TABLE public.users REPLICA IDENTITY FULL",
      "rules[6].redis.keys[0]: {old.id} needs the old value of 'id', but public.log_lines has REPLICA IDENTITY DEFAULT, but the table has no primary key, so no old values are sent; run ALTER TABLE public.log_lines REPLICA IDENTITY FULL",
      "rules[7].fallback.redis.patterns[0]: rule 'with-fallback': {old.name} needs the old value of 'name', but public.users has REPLICA IDENTITY DEFAULT, which only sends the old values of id; run ALTER TABLE public.users REPLICA IDENTITY FULL",
    ]);
    expect(configError.message).toContain('walpurge.yaml: 7 problems');
    // It failed before consuming anything: not even the topic was created.
    expect(await admin.listTopics()).not.toContain(names.topic);

    // Fixing the table (not the rules) is enough for the rules that only lacked old values.
    await sql.query('ALTER TABLE users REPLICA IDENTITY FULL');
    try {
      const fixed = invalidatorConfig(services, names, {
        database: { url: database.url },
        rules: config.rules.filter((_, index) => [0, 3, 4, 5, 7].includes(index)),
      });
      topics.push(names.topic, names.deadLetterTopic);
      prefixes.push(names.prefix.slice(0, -1));
      const running = await startInvalidator(fixed);
      await running.stop();
    } finally {
      await sql.query('ALTER TABLE users REPLICA IDENTITY DEFAULT');
    }
  });

  it('refuses to start on a generated column, the old side of an update and a truncate it cannot purge', async () => {
    await sql.query(
      'CREATE TABLE IF NOT EXISTS slugs (id int PRIMARY KEY, slug text, parent int, slug_lower text GENERATED ALWAYS AS (lower(slug)) STORED)',
    );
    const names = uniqueNames('inv_refuse');
    const invalidator = createInvalidator({
      config: invalidatorConfig(services, names, {
        database: { url: database.url },
        rules: [
          { table: 'slugs', name: 'generated', on: ['insert'], redis: { keys: ['s:{slug_lower}'] } },
          { table: 'slugs', name: 'old-side', on: ['update'], redis: { keys: ['children:{parent}'] } },
          { table: 'slugs', name: 'truncate', on: ['truncate'], redis: { tags: ['slug-{id}'] } },
        ],
      }),
      logger,
      registry: createMetricsRegistry({ defaultMetrics: false }),
      consume: 'none',
    });
    const error = await invalidator.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await invalidator.stop();
    expect(error).toBeInstanceOf(ConfigError);
    // The truncate check needs no database: it is reported first, on its own.
    expect((error as ConfigError).problems.map((p) => p.path)).toEqual(['rules[2].redis.tags[0]']);

    const fixed = createInvalidator({
      config: invalidatorConfig(services, names, {
        database: { url: database.url },
        rules: [
          { table: 'slugs', name: 'generated', on: ['insert'], redis: { keys: ['s:{slug_lower}'] } },
          { table: 'slugs', name: 'old-side', on: ['update'], redis: { keys: ['children:{parent}'] } },
        ],
      }),
      logger,
      registry: createMetricsRegistry({ defaultMetrics: false }),
      consume: 'none',
    });
    const schemaError = await fixed.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await fixed.stop();
    expect(schemaError).toBeInstanceOf(ConfigError);
    expect((schemaError as ConfigError).problems.map((p) => `${p.path}: ${p.message.slice(0, 90)}`)).toEqual([
      "rules[0].redis.keys[0]: rule 'generated': 'slug_lower' is a generated column of public.slugs, which logical replic",
      "rules[1].redis.keys[0]: rule 'old-side': an update also purges the entry of the old value of {parent}, but public.",
    ]);
  });

  it('refuses to start on a version column that is missing or does not order versions, and starts once it does', async () => {
    await sql.query(
      'CREATE TABLE IF NOT EXISTS revisions (id int PRIMARY KEY, rev bigint, updated_at timestamptz, note text)',
    );
    const names = uniqueNames('inv_version');
    const rulesWith = (first: string, second: string) => [
      { table: 'revisions', name: 'by-note', version: first, redis: { keys: ['r:{id}'] } },
      { table: 'revisions', version: second, redis: { keys: ['q:{id}'] } },
    ];
    const refused = createInvalidator({
      config: invalidatorConfig(services, names, {
        database: { url: database.url },
        rules: rulesWith('note', 'revision'),
      }),
      logger,
      registry: createMetricsRegistry({ defaultMetrics: false }),
      consume: 'none',
    });
    const error = await refused.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await refused.stop();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('WP_SCHEMA_MISMATCH');
    expect((error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "rules[0].version: rule 'by-note': version column 'note' of public.revisions is text, which does not order the row's versions; use a counter (smallint, integer, bigint or numeric) or a timestamp, timestamptz or date column set by every write",
      "rules[1].version: version column 'revision' does not exist in public.revisions; name a column every write sets (a bigint counter, or updated_at)",
    ]);
    // The same check as `walpurge validate` (validateRulesAgainstSchema): what it accepts starts.
    expect(
      await validateRulesAgainstSchema(
        rulesWith('rev', 'updated_at').map((rule) => Rule.parse(rule)),
        sql,
        problemAt,
      ),
    ).toEqual([]);
    const accepted = createInvalidator({
      config: invalidatorConfig(services, names, {
        database: { url: database.url },
        rules: rulesWith('rev', 'updated_at'),
      }),
      logger,
      registry: createMetricsRegistry({ defaultMetrics: false }),
      consume: 'none',
    });
    await accepted.start(new AbortController().signal);
    await accepted.stop();
  });

  it('refuses to start on a CDN url whose scheme or host comes from a row value', async () => {
    const names = uniqueNames('inv_cdn_host');
    const invalidator = createInvalidator({
      config: invalidatorConfig(services, names, {
        database: { url: database.url },
        rules: [
          {
            table: 'slugs',
            name: 'page',
            on: ['update'],
            cdn: { urls: ['{slug}', 'https://ex.com/s/{id}'] },
          },
        ],
      }),
      logger,
      registry: createMetricsRegistry({ defaultMetrics: false }),
      consume: 'none',
    });
    const error = await invalidator.start(new AbortController().signal).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await invalidator.stop();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.path)).toEqual(['rules[0].cdn.urls[0]']);
  });

  it('warns about templates of TOAST-able columns that updates may not send, unless the rule has a fallback or the table FULL identity', async () => {
    const rules = [
      Rule.parse({
        table: 'users',
        name: 'bio',
        on: ['insert', 'update'],
        // Old values of bio and age are not sent (DEFAULT): accepted explicitly, not about TOAST.
        oldValues: 'ignore-missing',
        redis: { keys: ['bio:{bio}', 'age:{age}', 'email:{new.email}'] },
      }),
      Rule.parse({
        table: 'users',
        on: ['update'],
        redis: { keys: ['bio:{bio}'] },
        fallback: { redis: { patterns: ['bio:*'] } },
      }),
      Rule.parse({ table: 'users', on: ['insert', 'delete'], redis: { keys: ['by_id:{id}:{new.bio}'] } }),
      Rule.parse({ table: 'accounts', redis: { keys: ['account:{email}'] } }),
    ];
    const warnings: ConfigProblem[] = [];
    expect(await validateRulesAgainstSchema(rules, sql, problemAt, warnings)).toEqual([]);
    // rules[1]: its fallback is purged on every update, since the old bio is never sent.
    expect(warnings.map((w) => w.path)).toEqual([
      'rules[0].redis.keys[0]',
      'rules[0].redis.keys[2]',
      'rules[1].redis.keys[0]',
    ]);
    expect(warnings[2]?.message).toContain("every update that could change 'bio' purges the rule's fallback");
    expect(warnings[0]?.message).toMatch(/^rule 'bio': 'bio' can be stored out of line \(TOAST\)/);
    expect(warnings[0]?.message).toContain('declare a fallback');
  });

  it('an unchanged TOAST value at run time purges the rule fallback and is counted', async () => {
    const names = uniqueNames('inv_toast');
    topics.push(names.topic, names.deadLetterTopic);
    prefixes.push(names.prefix.slice(0, -1));
    const running = await startInvalidator(
      invalidatorConfig(services, names, {
        rules: [
          {
            table: 'docs',
            name: 'docs',
            on: ['update'],
            redis: { keys: ['doc:{id}:{body}'] },
            fallback: { redis: { patterns: ['doc:{id}:*'] } },
          },
          {
            table: 'docs',
            name: 'docs-no-fallback',
            on: ['update'],
            redis: { keys: ['title:{title}:{body}'] },
          },
        ],
      }),
    );
    const producer = await connectProducer(kafka);
    const { prefix } = names;
    const purged = ['doc:5:a', 'doc:5:b', 'doc:6:x', 'doc:8:long body'];
    const survivors = ['doc:7:y', 'doc:50:z', 'doc:8:other', 'title:new title:a', 'title:t:x'];
    try {
      await redis.mset(...[...purged, ...survivors].flatMap((key) => [prefix + key, 'cached']));
      await producer.sendRaw(names.topic, [
        {
          key: '{"id":5}',
          value: readFileSync(new URL('debezium-update-toast.json', fixtures), 'utf8'),
        },
      ]);
      await producer.sendEvents(names.topic, [
        changeEvent('u', 'docs', {
          key: { id: 6 },
          before: null,
          after: { id: 6, title: 't' },
          unchanged: ['body'],
        }),
        // REPLICA IDENTITY FULL: the old row supplies the unchanged value, so the exact key is purged.
        changeEvent('u', 'docs', {
          key: { id: 8 },
          before: { id: 8, title: 'u', body: 'long body' },
          after: { id: 8, title: 'u' },
          unchanged: ['body'],
        }),
      ]);
      await waitForAllCommitted(admin, names.group, names.topic);
      const left = await Promise.all([...purged, ...survivors].map((key) => redis.exists(prefix + key)));
      expect(Object.fromEntries([...purged, ...survivors].map((key, i) => [key, left[i]]))).toEqual({
        ...Object.fromEntries(purged.map((key) => [key, 0])),
        ...Object.fromEntries(survivors.map((key) => [key, 1])),
      });
      const unknown = (rule: string, fallback: string) =>
        metricValue(running.registry, 'walpurge_invalidator_unknown_values_total', {
          rule,
          reason: 'unchanged-toast',
          fallback,
        });
      expect(await unknown('docs', 'true')).toBe(2);
      expect(await unknown('docs-no-fallback', 'false')).toBe(2);
      expect(await metricValue(running.registry, 'walpurge_invalidator_unknown_values_total')).toBe(4);
    } finally {
      await producer.producer.disconnect();
      await running.stop();
    }
  });
});
