import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { z } from 'zod';
import {
  createIsolatedDatabase,
  freePort,
  uniqueName,
  waitFor,
  type IsolatedDatabase,
} from '@walpurge/testing';
import { spawnWalpurge, waitUntilReady, type WalpurgeProcess } from './testing/walpurge-process.js';

/**
 * `walpurge run` as operators run it, with tracing turned on by the standard variables only
 * (OTEL_TRACES_EXPORTER=otlp, OTEL_EXPORTER_OTLP_ENDPOINT): a real process exports its spans over
 * OTLP/HTTP to a receiver this test runs on 127.0.0.1, and SIGTERM flushes the spans it still holds.
 */
const services = inject('services');
const slot = uniqueName('tracing_cli');
const prefix = `${slot}:`;
const dir = mkdtempSync(join(tmpdir(), 'walpurge-tracing-'));
const configFile = join(dir, 'walpurge.yaml');
let database: IsolatedDatabase;
let db: pg.Client;
let redis: Redis;
let receiver: Server;
let receiverPort: number;
let walpurge: WalpurgeProcess | undefined;
/** The bodies POSTed to /v1/traces, with their content type. */
const exports: Array<{ contentType: string | undefined; body: Buffer }> = [];

/** OTLP/JSON (opentelemetry-proto's JSON mapping), the parts this test reads. */
const AnyValue = z.object({
  stringValue: z.string().optional(),
  intValue: z.union([z.string(), z.number()]).optional(),
});
const KeyValue = z.object({ key: z.string(), value: AnyValue });
const OtlpSpan = z.object({
  traceId: z.string(),
  spanId: z.string(),
  parentSpanId: z.string().optional(),
  name: z.string(),
  attributes: z.array(KeyValue).default([]),
  links: z.array(z.object({ traceId: z.string(), spanId: z.string() })).default([]),
});
const ExportRequest = z.object({
  resourceSpans: z.array(
    z.object({
      resource: z.object({ attributes: z.array(KeyValue).default([]) }),
      scopeSpans: z.array(z.object({ spans: z.array(OtlpSpan) })),
    }),
  ),
});
type OtlpSpan = z.infer<typeof OtlpSpan>;

function attribute(attributes: ReadonlyArray<z.infer<typeof KeyValue>>, key: string): string | undefined {
  const value = attributes.find((kv) => kv.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : String(value.intValue));
}

function receivedSpans(): Array<
  OtlpSpan & { serviceName: string | undefined; environment: string | undefined }
> {
  return exports.flatMap(({ body }) =>
    ExportRequest.parse(JSON.parse(body.toString('utf8'))).resourceSpans.flatMap((resourceSpans) =>
      resourceSpans.scopeSpans.flatMap((scope) =>
        scope.spans.map((span) => ({
          ...span,
          serviceName: attribute(resourceSpans.resource.attributes, 'service.name'),
          environment: attribute(resourceSpans.resource.attributes, 'deployment.environment.name'),
        })),
      ),
    ),
  );
}

beforeAll(async () => {
  database = await createIsolatedDatabase(services.databaseUrl, 'cli_tracing');
  db = new pg.Client({ connectionString: database.url });
  await db.connect();
  await db.query('CREATE TABLE items (id int PRIMARY KEY, sku text NOT NULL)');
  await db.query(`INSERT INTO items VALUES (1, 'a')`);
  redis = new Redis(services.redisUrl);
  receiverPort = await freePort();
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/v1/traces')
        exports.push({ contentType: request.headers['content-type'], body: Buffer.concat(chunks) });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(receiverPort, '127.0.0.1', resolve));
  writeFileSync(
    configFile,
    `transport: inline
database:
  url: \${DATABASE_URL}
  slot: ${slot}
  publication: ${slot}
  statusIntervalMs: 500
redis:
  url: \${REDIS_URL}
  keyPrefix: '${prefix}'
log:
  level: info
rules:
  - table: public.items
    on: [update]
    redis:
      keys: ['item:{id}']
`,
  );
});

afterAll(async () => {
  if (walpurge && walpurge.child.exitCode === null) await walpurge.killNow();
  await new Promise((resolve) => receiver?.close(resolve));
  await db?.end().catch(() => {});
  await redis?.unlink(`${prefix}item:1`).catch(() => 0);
  redis?.disconnect();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function startTracedWalpurge(otel: Record<string, string>): Promise<WalpurgeProcess> {
  const opsPort = await freePort();
  walpurge = spawnWalpurge(['run', '--config', configFile, '--http-port', String(opsPort)], {
    DATABASE_URL: database.url,
    REDIS_URL: services.redisUrl,
    ...otel,
  });
  await waitUntilReady(opsPort, walpurge, 60_000);
  return walpurge;
}

/** Commits an UPDATE of item 1 and waits until walpurge purged its key; returns the xid. */
async function commitAndWaitForPurge(sku: string): Promise<string | undefined> {
  await redis.set(`${prefix}item:1`, 'stale');
  await db.query('BEGIN');
  await db.query(`UPDATE items SET sku = $1 WHERE id = 1`, [sku]);
  const { rows } = await db.query<{ xid: string }>('SELECT (txid_current() % 4294967296)::text AS xid');
  await db.query('COMMIT');
  await waitFor('item:1 purged', async () => (await redis.exists(`${prefix}item:1`)) === 0, {
    timeoutMs: 60_000,
    intervalMs: 50,
  });
  return rows[0]?.xid;
}

it('exports the transaction, batch and Redis spans over OTLP/HTTP, and SIGTERM flushes them', async () => {
  walpurge = await startTracedWalpurge({
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiverPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e',
    // Nothing is exported on a timer during the test: only the shutdown can send the spans.
    OTEL_BSP_SCHEDULE_DELAY: '600000',
  });
  expect(walpurge.output()).toContain(
    `tracing on: spans of walpurge-all exported to http://127.0.0.1:${receiverPort}/v1/traces (OTLP http/json)`,
  );

  const xid = await commitAndWaitForPurge('b');
  expect(exports).toHaveLength(0);

  walpurge.child.kill('SIGTERM');
  expect(await walpurge.exited).toBe(0);

  expect(exports.every(({ contentType }) => contentType === 'application/json')).toBe(true);
  const spans = receivedSpans();
  const transaction = spans.find(
    (span) => span.name === 'walpurge.transaction' && attribute(span.attributes, 'walpurge.xid') === xid,
  );
  expect(transaction, `a walpurge.transaction span of xid ${xid} among ${spans.length}`).toBeDefined();
  expect(transaction?.serviceName).toBe('walpurge-all');
  expect(transaction?.environment).toBe('e2e');
  expect(attribute(transaction?.attributes ?? [], 'walpurge.commit_lsn')).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  expect(attribute(transaction?.attributes ?? [], 'walpurge.change_count')).toBe('1');

  // The inline transport: the batch is a child of the transaction span.
  const batch = spans.find(
    (span) => span.name === 'walpurge.batch' && span.parentSpanId === transaction?.spanId,
  );
  expect(batch, 'a walpurge.batch span under the transaction').toBeDefined();
  expect(batch?.traceId).toBe(transaction?.traceId);
  const keys = spans.find(
    (span) => span.name === 'walpurge.redis.keys' && span.parentSpanId === batch?.spanId,
  );
  expect(keys, 'walpurge.redis.keys under the batch').toBeDefined();
  expect(attribute(keys?.attributes ?? [], 'walpurge.count')).toBe('1');
});

it('sends http/protobuf by default', async () => {
  exports.length = 0;
  walpurge = await startTracedWalpurge({
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiverPort}`,
    OTEL_BSP_SCHEDULE_DELAY: '600000',
  });
  expect(walpurge.output()).toContain(`/v1/traces (OTLP http/protobuf)`);
  await commitAndWaitForPurge('c');
  walpurge.child.kill('SIGTERM');
  expect(await walpurge.exited).toBe(0);
  expect(exports.length).toBeGreaterThan(0);
  expect(exports.map(({ contentType }) => contentType)).toEqual(exports.map(() => 'application/x-protobuf'));
  // Protobuf keeps strings as they are: span names, attribute keys and the service name show.
  const body = Buffer.concat(exports.map((request) => request.body));
  for (const text of ['walpurge.transaction', 'walpurge.commit_lsn', 'walpurge.batch', 'walpurge-all'])
    expect(body.includes(text), text).toBe(true);
});

it('logs failed exports as a warning when the collector is unreachable', async () => {
  const closedPort = await freePort();
  walpurge = await startTracedWalpurge({
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closedPort}`,
    OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  await commitAndWaitForPurge('d');
  const running = walpurge;
  await waitFor('an export warning', async () => /"level":40[^\n]*"msg":"tracing: /.test(running.output()), {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  running.child.kill('SIGTERM');
  expect(await running.exited).toBe(0);
});
