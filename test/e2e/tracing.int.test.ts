import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import kafkajs from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseLsn } from '@walpurge/protocol';
import {
  createIsolatedDatabase,
  installInMemoryTracing,
  uniqueName,
  waitFor,
  type InMemoryTracing,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { readTopic } from '../../services/invalidator/test/harness.js';
import { RecordingServer } from '../../services/invalidator/test/recording-server.js';
import {
  E2E_STACK_CONFIG,
  parseE2eConfig,
  startStack,
  type WalpurgeStack,
} from './support/walpurge-stack.js';

/**
 * Traces from commit to purge, on real PostgreSQL, Kafka and Redis: the listener's transaction span
 * (commit LSN, xid), its context in the Kafka record's traceparent header, the invalidator's batch
 * span linked to it and the per-target child spans under the batch; embedded, the same tree in one
 * process. And with tracing off, records carry no trace header.
 */
const services = inject('services');

/** The CDN queue topic is the suite's own too (the shared config leaves it at its default). */
const CONFIG = `${E2E_STACK_CONFIG.replace('  deadLetterTopic: ${NAME}_dlq\n', '  deadLetterTopic: ${NAME}_dlq\n  cdnTopic: ${NAME}_cdn\n')}cdn:
  http:
    endpoint: \${CDN_ENDPOINT}
  coalesceWindowMs: 50
rules:
  - table: public.users
    on: [update]
    oldValues: ignore-missing
    redis:
      keys: ['user:{id}']
      patterns: ['user:{id}:*']
      tags: ['team-{team_id}']
    cdn:
      urls: ['https://cdn.test/users/{id}']
`;

interface Database {
  db: IsolatedDatabase;
  sql: pg.Client;
}

async function usersDatabase(): Promise<Database> {
  const db = await createIsolatedDatabase(services.databaseUrl, 'e2e_tracing');
  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  await sql.query('CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, team_id int NOT NULL)');
  await sql.query(`INSERT INTO users VALUES (1, 'ann', 7)`);
  return { db, sql };
}

/** A committed UPDATE: its xid (as pgoutput sends it, 32 bits) and the WAL positions around it. */
async function committedUpdate(
  sql: pg.Client,
  name: string,
): Promise<{ xid: number; walBefore: bigint; walAfter: bigint }> {
  const before = await sql.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  await sql.query('BEGIN');
  await sql.query('UPDATE users SET name = $1 WHERE id = 1', [name]);
  const { rows } = await sql.query<{ xid: string }>('SELECT (txid_current() % 4294967296)::text AS xid');
  await sql.query('COMMIT');
  const after = await sql.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return {
    xid: Number(rows[0]?.xid),
    walBefore: parseLsn(before.rows[0]?.lsn ?? ''),
    walAfter: parseLsn(after.rows[0]?.lsn ?? ''),
  };
}

const kafka = new kafkajs.Kafka({
  clientId: 'tracing-test',
  brokers: services.kafkaBrokers,
  logLevel: kafkajs.logLevel.NOTHING,
});
type Topic = Awaited<ReturnType<typeof readTopic>>;

async function deleteTopics(topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
}

function stackConfig(transport: 'kafka' | 'inline', name: string, url: string, cdnEndpoint: string) {
  return parseE2eConfig(CONFIG, {
    CDN_ENDPOINT: cdnEndpoint,
    TRANSPORT: transport,
    DATABASE_URL: url,
    NAME: name,
    KAFKA_BROKER: services.kafkaBrokers[0] ?? '',
    REDIS_URL: services.redisUrl,
    PREFIX: `${name}:`,
  });
}

const WAIT = { timeoutMs: 60_000, intervalMs: 50 };
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

const modes = [
  { transport: 'kafka', roles: ['invalidator', 'listener'] },
  { transport: 'inline', roles: ['all'] },
] as const;

describe.each(modes)('tracing on, transport: $transport', ({ transport, roles }) => {
  const name = uniqueName(`trace_${transport}`);
  let tracing: InMemoryTracing;
  let database: Database;
  let stack: WalpurgeStack | undefined;
  let topic: Topic | undefined;
  const cdn = new RecordingServer();

  beforeAll(async () => {
    tracing = installInMemoryTracing();
    database = await usersDatabase();
    const endpoint = await cdn.start();
    stack = await startStack(stackConfig(transport, name, database.db.url, endpoint), roles);
    if (transport === 'kafka') topic = await readTopic(kafka, name);
  });

  afterAll(async () => {
    await topic?.stop();
    await stack?.stop();
    await tracing?.uninstall();
    await cdn.stop();
    await database?.sql.end();
    await database?.db.drop();
    if (transport === 'kafka') await deleteTopics([name, `${name}_dlq`, `${name}_cdn`]);
  });

  it('an UPDATE gives a transaction span, a batch span linked to it and target spans under the batch', async () => {
    const { xid, walBefore, walAfter } = await committedUpdate(database.sql, 'bob');
    const spans = (): ReadableSpan[] => tracing.spans();

    const transaction = await waitFor(
      `the transaction span of xid ${xid}`,
      async () =>
        spans().find(
          (span) => span.name === 'walpurge.transaction' && span.attributes['walpurge.xid'] === xid,
        ),
      WAIT,
    );
    expect(transaction.kind).toBe(SpanKind.PRODUCER);
    const lsn = parseLsn(String(transaction.attributes['walpurge.commit_lsn']));
    expect(lsn).toBeGreaterThanOrEqual(walBefore);
    expect(lsn).toBeLessThan(walAfter);
    expect(transaction.attributes['walpurge.change_count']).toBe(1);
    expect(transaction.attributes['walpurge.tables']).toEqual(['public.users']);
    expect(Date.parse(String(transaction.attributes['walpurge.commit_time']))).not.toBeNaN();
    const { traceId, spanId } = transaction.spanContext();

    const linksToTransaction = (span: ReadableSpan): boolean =>
      span.links.some((link) => link.context.traceId === traceId && link.context.spanId === spanId);
    const batch = await waitFor(
      'a batch span under or linked to the transaction',
      async () =>
        spans().find(
          (span) =>
            span.name === 'walpurge.batch' &&
            (linksToTransaction(span) || span.parentSpanContext?.spanId === spanId),
        ),
      WAIT,
    );
    expect(batch.attributes['walpurge.event_count']).toBeGreaterThanOrEqual(1);
    if (transport === 'inline') {
      // One process: the batch is part of the transaction's own trace, under its span (not
      // linked to it as well).
      expect(batch.spanContext().traceId).toBe(traceId);
      expect(batch.parentSpanContext?.spanId).toBe(spanId);
      expect(linksToTransaction(batch)).toBe(false);
    } else {
      // A batch serves many transactions: a root of its own, linked to each.
      expect(batch.parentSpanContext).toBeUndefined();
      expect(linksToTransaction(batch)).toBe(true);
      expect(transaction.attributes['messaging.destination.name']).toBe(name);
      // The record of this update: the one whose traceparent names the transaction's trace.
      const record = await waitFor(
        'the record with a traceparent header',
        async () =>
          topic?.messages.find(
            (message) => TRACEPARENT.exec(message.headers['traceparent'] ?? '')?.[1] === traceId,
          ),
        WAIT,
      );
      expect(TRACEPARENT.exec(record.headers['traceparent'] ?? '')?.[2]).toBe(spanId);
      expect(parseLsn(record.headers['lsn'] ?? '')).toBe(lsn);
    }

    for (const kind of ['keys', 'patterns', 'tags']) {
      const child = spans().find(
        (span) =>
          span.name === `walpurge.redis.${kind}` &&
          span.parentSpanContext?.spanId === batch.spanContext().spanId,
      );
      expect(child, `walpurge.redis.${kind} under the batch span`).toBeDefined();
      expect(child?.spanContext().traceId).toBe(batch.spanContext().traceId);
      expect(child?.attributes['db.system.name']).toBe('redis');
      expect(child?.attributes['walpurge.count']).toBe(1);
    }

    // The CDN work is queued under the batch; the lane's call to the provider is a span of its own.
    const enqueue = spans().find(
      (span) =>
        span.name === 'walpurge.cdn.enqueue' && span.parentSpanContext?.spanId === batch.spanContext().spanId,
    );
    expect(enqueue?.attributes['walpurge.event_count']).toBe(1);
    const cdnCall = await waitFor(
      'the CDN call span',
      async () => spans().find((span) => span.name === 'walpurge.cdn.http'),
      WAIT,
    );
    expect(cdnCall.attributes['walpurge.cdn.kind']).toBe('urls');
    expect(cdnCall.attributes['walpurge.count']).toBe(1);
    // Under the lane's batch span, a trace of its own; the CDN topic carries the transaction's
    // context to it (the embedded mode's queue table does not).
    const laneBatch = spans().find(
      (span) =>
        span.name === 'walpurge.cdn.batch' && span.spanContext().spanId === cdnCall.parentSpanContext?.spanId,
    );
    expect(laneBatch?.attributes['walpurge.cdn.provider']).toBe('http');
    expect(laneBatch?.parentSpanContext).toBeUndefined();
    expect(laneBatch && linksToTransaction(laneBatch)).toBe(transport === 'kafka');
    expect(cdn.requests.some((request) => request.path === '/users/1')).toBe(true);
  });
});

describe('tracing off', () => {
  const name = uniqueName('trace_off');
  let database: Database;
  let stack: WalpurgeStack | undefined;
  let topic: Topic | undefined;

  beforeAll(async () => {
    database = await usersDatabase();
    stack = await startStack(stackConfig('kafka', name, database.db.url, 'http://127.0.0.1:9'), ['listener']);
    topic = await readTopic(kafka, name);
  });

  afterAll(async () => {
    await topic?.stop();
    await stack?.stop();
    await database?.sql.end();
    await database?.db.drop();
    await deleteTopics([name]);
  });

  it('no record carries a traceparent header', async () => {
    await committedUpdate(database.sql, 'cy');
    await committedUpdate(database.sql, 'di');
    const received = await waitFor(
      'both updates on the topic',
      async () => ((topic?.messages.length ?? 0) >= 2 ? topic?.messages : undefined),
      WAIT,
    );
    for (const message of received) {
      expect(message.headers['lsn']).toBeDefined();
      expect(message.headers['traceparent']).toBeUndefined();
      expect(message.headers['tracestate']).toBeUndefined();
    }
  });
});
