/**
 * Peak memory of each role under big work (not part of the test suite): the listener and a Kafka
 * invalidator, each as a compiled `walpurge run --role …` process, with the default byte bounds and
 * with small ones.
 *
 *   npm run bench:memory        (BENCH_* variables below change the parameters)
 *
 * Scenarios (BENCH_SCENARIOS=transaction,backlog,big-rows picks them), each in a fresh database:
 *   transaction: one INSERT … SELECT generate_series of BENCH_TX_ROWS rows (1,000,000);
 *   backlog:     BENCH_BACKLOG inserts (10,000,000) in BENCH_BACKLOG_TX_ROWS-row transactions (500);
 *   big-rows:    BENCH_BIG_ROWS rows (200) of BENCH_ROW_BYTES bytes of text (1,000,000), one transaction.
 * The workload is written while walpurge is stopped (one slot per bound, created before it), so the
 * listener starts on all of it. Then, per bound, a listener catches it up into its own topic; then,
 * per bound, an invalidator (its own consumer group) catches up the topic the default-bound listener
 * wrote, purging one exact Redis key per change.
 *
 * Bounds: the defaults (database.maxPendingBytes, invalidator.maxFetchBytes), then
 * BENCH_SMALL_PENDING_BYTES (8 MiB) for the listener and BENCH_SMALL_FETCH_BYTES (1 MiB) for the
 * invalidator. Peak RSS is VmHWM read from /proc when the last change was seen; the heap, external
 * memory and the listener's pending bytes and events are scraped from each process's /metrics every
 * 500 ms, to tell a bound in use from memory held per event (BENCH_NODE_ARGS=--trace-gc adds the heap
 * left after each collection to the process logs). Listener window:
 * first to last record in its topic (polled every 20 ms); invalidator window: first to last offset
 * committed by its group (polled every 50 ms). BENCH_PARTITIONS (6) per topic; BENCH_TIMEOUT_SECONDS
 * (1800) bounds each run; BENCH_NODE_ARGS go to walpurge's node. Uses WALPURGE_TEST_* services when
 * set, else starts local ones (@walpurge/testing).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import { DatabaseConfig, InvalidatorConfig } from '@walpurge/config';
import {
  KAFKA_VERSION,
  createIsolatedDatabase,
  deleteRedisKeys,
  freePort,
  startTestEnvironment,
  uniqueName,
  withPgClient,
} from '@walpurge/testing';
import { createBenchTopic, topicRecordCount, watchTopic } from './support/bench-topic.js';
import { deleteGroup, watchGroupCatchUp } from './support/consumer-group.js';
import { invalidatorYaml, listenerYaml, type RunNames } from './support/memory-configs.js';
import { backlog, bigRows, oneTransaction, type MemoryScenario } from './support/memory-workloads.js';
import { deleteTopics, envNumber, loadLine, machineLine } from './support/report.js';
import { runRole, type RoleRun } from './support/role-run.js';
import { buildWalpurge } from './support/walpurge-process.js';

const TX_ROWS = envNumber('BENCH_TX_ROWS', 1_000_000);
const BACKLOG = envNumber('BENCH_BACKLOG', 10_000_000);
const BACKLOG_TX_ROWS = envNumber('BENCH_BACKLOG_TX_ROWS', 500);
const BIG_ROWS = envNumber('BENCH_BIG_ROWS', 200);
const ROW_BYTES = envNumber('BENCH_ROW_BYTES', 1_000_000);
const SMALL_PENDING_BYTES = envNumber('BENCH_SMALL_PENDING_BYTES', 8 * 2 ** 20);
const SMALL_FETCH_BYTES = envNumber('BENCH_SMALL_FETCH_BYTES', 2 ** 20);
const PARTITIONS = envNumber('BENCH_PARTITIONS', 6);
const TIMEOUT_SECONDS = envNumber('BENCH_TIMEOUT_SECONDS', 1800);
const SCENARIOS = (process.env['BENCH_SCENARIOS'] ?? 'transaction,backlog,big-rows')
  .split(',')
  .map((s) => s.trim());
const repoRoot = resolve(import.meta.dirname, '../..');

interface Bound {
  label: 'default' | 'small';
  pendingBytes: number;
  fetchBytes: number;
}

interface Row {
  scenario: string;
  role: 'listener' | 'invalidator';
  bound: string;
  run: RoleRun;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const mib = (bytes: number | undefined): string => ((bytes ?? NaN) / 2 ** 20).toFixed(0);

async function main(): Promise<void> {
  const loadAtStart = loadLine('at the start');
  buildWalpurge(log);
  const env = await startTestEnvironment({ log: () => {} });
  const { databaseUrl, redisUrl, kafkaBrokers } = env.urls as {
    databaseUrl: string;
    redisUrl: string;
    kafkaBrokers: string[];
  };
  const serverVersion = await withPgClient(
    databaseUrl,
    async (c) => (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version,
  );
  // Process logs and config files of the last run, kept for a look afterwards (test-results/ is not committed).
  const workDir = join(repoRoot, 'test-results', 'bench-memory-logs');
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });

  const defaultPending = DatabaseConfig.parse({ url: 'postgres://x@localhost/x' }).maxPendingBytes;
  const defaultFetch = InvalidatorConfig.parse({}).maxFetchBytes;
  const bounds: Bound[] = [
    { label: 'default', pendingBytes: defaultPending, fetchBytes: defaultFetch },
    { label: 'small', pendingBytes: SMALL_PENDING_BYTES, fetchBytes: SMALL_FETCH_BYTES },
  ];
  const scenarios = [
    oneTransaction(TX_ROWS),
    backlog(BACKLOG, BACKLOG_TX_ROWS),
    bigRows(BIG_ROWS, ROW_BYTES),
  ].filter((s) => SCENARIOS.includes(s.name));
  process.stdout.write(
    `${[
      'walpurge memory: peak RSS of the listener and of a Kafka invalidator under big work, with the default and with small byte bounds',
      machineLine(),
      `services: PostgreSQL ${serverVersion}, Kafka ${KAFKA_VERSION} (${env.providers['kafka']}), Redis (${env.providers['redis']}), all on this machine with walpurge and this benchmark`,
      loadAtStart,
      `parameters: ${scenarios.map((s) => `${s.name}: ${s.workload.title}`).join('; ')}; ${PARTITIONS} partitions per topic`,
      `bounds: default = database.maxPendingBytes ${mib(defaultPending)} MiB (listener), invalidator.maxFetchBytes ${mib(defaultFetch)} MiB (invalidator); small = ${mib(SMALL_PENDING_BYTES)} MiB and ${mib(SMALL_FETCH_BYTES)} MiB; everything else at its default`,
      `processes: walpurge run --role listener|invalidator --config <file>, compiled JavaScript, Node ${process.version}; the workload is written while walpurge is stopped; each listener catches it up into its own topic, each invalidator (its own group) the topic of the default-bound listener, one exact-key UNLINK per change`,
      'window: first → last record in the topic (listener) or offset committed (invalidator); RSS at first / at last: VmRSS when the first / last change was seen; peak RSS: VmHWM of the process at the last change; peak heap used: the highest nodejs_heap_size_used_bytes scraped from its /metrics every 500 ms',
      '',
      '| scenario    | role        | byte bound     |    changes | seconds | changes/s | RSS at first MiB | RSS at last MiB | peak RSS MiB | peak heap used MiB | load before → after |',
      '| ----------- | ----------- | -------------- | ---------: | ------: | --------: | ---------------: | --------------: | -----------: | -----------------: | ------------------- |',
    ].join('\n')}\n`,
  );

  const rows: Row[] = [];
  try {
    for (const scenario of scenarios) {
      const report = (row: Row): void => {
        rows.push(row);
        // Printed as each run ends, so a later failure keeps what was measured.
        process.stdout.write(`${formatRow(row)}\n`);
      };
      await runScenario(scenario, bounds, { databaseUrl, redisUrl, brokers: kafkaBrokers, workDir }, report);
    }
  } finally {
    await env.stop();
  }
  const lines = ['', 'per run:'];
  for (const r of rows) lines.push(`  ${details(r)}`);
  lines.push('', 'peak RSS, small bound / default bound:');
  for (const scenario of scenarios)
    for (const role of ['listener', 'invalidator'] as const) {
      const of = (label: string): RoleRun | undefined =>
        rows.find((r) => r.scenario === scenario.name && r.role === role && r.bound.startsWith(label))?.run;
      const [small, dflt] = [of('small'), of('default')];
      if (small && dflt)
        lines.push(
          `  ${scenario.name} ${role}: ${mib(small.atLast?.peakRssBytes)} / ${mib(dflt.atLast?.peakRssBytes)} MiB`,
        );
    }
  lines.push('', loadLine('at the end'), `process logs and config files: ${workDir}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  const failed = rows.filter((r) => r.run.error !== undefined);
  if (failed.length > 0) throw new Error(`${failed.length} run(s) failed: see "per run"`);
}

interface Services {
  databaseUrl: string;
  redisUrl: string;
  brokers: string[];
  workDir: string;
}

async function runScenario(
  scenario: MemoryScenario,
  bounds: Bound[],
  services: Services,
  report: (row: Row) => void,
): Promise<void> {
  const { workload } = scenario;
  const { brokers, workDir } = services;
  const db = await createIsolatedDatabase(services.databaseUrl, `mem_${scenario.name.replace('-', '_')}`);
  const publication = uniqueName('mem_pub');
  const names = new Map<Bound, RunNames>(
    bounds.map((bound) => {
      const name = uniqueName(`mem_${scenario.name.replace('-', '_')}_${bound.label}`);
      return [bound, { slot: name, publication, topic: name, group: name }];
    }),
  );
  const all = [...names.values()];
  const topicConfig: Record<string, string> =
    scenario.maxMessageBytes === undefined ? {} : { 'max.message.bytes': String(scenario.maxMessageBytes) };
  try {
    log(`${scenario.name}: preparing the table, the publication and a slot per bound…`);
    await withPgClient(db.url, async (client) => {
      await workload.prepare(client);
      await client.query(`CREATE PUBLICATION ${publication} FOR TABLE ${workload.table}`);
      for (const { slot } of all)
        await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    });
    for (const { topic } of all) await createBenchTopic(brokers, topic, PARTITIONS, topicConfig);
    log(`${scenario.name}: writing ${workload.title} while walpurge is stopped…`);
    const writeStarted = performance.now();
    await withPgClient(db.url, (client) => workload.write(client));
    log(`${scenario.name}: written in ${((performance.now() - writeStarted) / 1000).toFixed(1)} s`);

    for (const bound of bounds) {
      const run = names.get(bound) as RunNames;
      log(`${scenario.name}: listener, ${bound.label} bound, catching up…`);
      const configFile = join(workDir, `${run.slot}-listener.yaml`);
      const httpPort = await freePort();
      writeFileSync(
        configFile,
        listenerYaml({
          databaseUrl: db.url,
          table: workload.table,
          names: run,
          brokers,
          partitions: PARTITIONS,
          maxPendingBytes: bound.pendingBytes,
          maxMessageBytes: scenario.maxMessageBytes,
          httpPort,
        }),
      );
      const result = await runRole(
        'listener',
        configFile,
        join(workDir, `${run.slot}-listener.log`),
        httpPort,
        (hooks) =>
          watchTopic({
            brokers,
            topic: run.topic,
            expected: workload.changes,
            timeoutMs: TIMEOUT_SECONDS * 1000,
            ...hooks,
          }).then((p) => ({ changes: workload.changes, startedAt: p.firstSeenAt, endedAt: p.lastSeenAt })),
      );
      report({
        scenario: scenario.name,
        role: 'listener',
        bound: boundLabel(bound, 'pendingBytes'),
        run: result,
      });
    }

    // Every invalidator reads the same records: those the default-bound listener wrote.
    const source = all[0] as RunNames;
    const records = await countRecords(brokers, source.topic);
    for (const bound of bounds) {
      const run = { ...(names.get(bound) as RunNames), topic: source.topic };
      log(`${scenario.name}: invalidator, ${bound.label} bound, catching up ${records} records…`);
      const configFile = join(workDir, `${run.group}-invalidator.yaml`);
      const httpPort = await freePort();
      writeFileSync(
        configFile,
        invalidatorYaml({
          table: workload.table,
          names: run,
          brokers,
          partitions: PARTITIONS,
          redisUrl: services.redisUrl,
          maxFetchBytes: bound.fetchBytes,
          httpPort,
        }),
      );
      const result = await runRole(
        'invalidator',
        configFile,
        join(workDir, `${run.group}-invalidator.log`),
        httpPort,
        ({ alive, onFirst, onLast }) =>
          watchGroupCatchUp({
            brokers,
            groupId: run.group,
            topic: run.topic,
            expected: records,
            timeoutMs: TIMEOUT_SECONDS * 1000,
            alive,
            onStart: onFirst,
            onEnd: onLast,
          }),
      );
      report({
        scenario: scenario.name,
        role: 'invalidator',
        bound: boundLabel(bound, 'fetchBytes'),
        run: result,
      });
    }
  } finally {
    await db.drop();
    await deleteTopics(
      brokers,
      all.flatMap((n) => [n.topic, `${n.topic}.dlq`, `${n.group}.dlq`, `${n.group}.cdn`]),
    );
    const redis = new Redis(services.redisUrl);
    for (const { group } of all) {
      await deleteGroup(brokers, group);
      await deleteRedisKeys(redis, `${group}:`);
    }
    redis.disconnect();
  }
}

async function countRecords(brokers: string[], topic: string): Promise<number> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return await topicRecordCount(admin, topic);
  } finally {
    await admin.disconnect();
  }
}

function boundLabel(bound: Bound, which: 'pendingBytes' | 'fetchBytes'): string {
  return `${bound.label} ${mib(bound[which])} MiB`;
}

function formatRow({ scenario, role, bound, run }: Row): string {
  const cells = [
    scenario.padEnd(11),
    role.padEnd(11),
    bound.padEnd(14),
    run.changes.toLocaleString('en-US').padStart(10),
    run.windowSeconds.toFixed(1).padStart(7),
    (run.error ? 'FAILED' : Math.round(run.changes / run.windowSeconds).toLocaleString('en-US')).padStart(9),
    mib(run.atFirst?.rssBytes).padStart(16),
    mib(run.atLast?.rssBytes).padStart(15),
    mib(run.atLast?.peakRssBytes).padStart(12),
    mib(run.peaks.heapUsedBytes).padStart(18),
    `${run.loadBefore} → ${run.loadAfter}`,
  ];
  return `| ${cells.join(' | ')} |`;
}

function details({ scenario, role, bound, run }: Row): string {
  const cpu = (run.atLast?.cpuSeconds ?? NaN) - (run.atFirst?.cpuSeconds ?? NaN);
  return [
    `${scenario} ${role} (${bound}): ${run.totalSeconds.toFixed(1)} s from the process's start to the last change`,
    `${cpu.toFixed(1)} CPU-s in the window`,
    `peaks scraped from /metrics (${run.peaks.samples} scrapes): heap used ${mib(run.peaks.heapUsedBytes)} MiB, external ${mib(run.peaks.externalBytes)} MiB${role === 'listener' ? `, pending at most ${mib(run.peaks.pendingBytes)} MiB and ${run.peaks.pendingEvents.toLocaleString('en-US')} events` : ''}`,
    `${run.logProblems} warning/error log lines`,
    ...(run.error ? [`FAILED: ${run.error}`] : []),
  ].join('; ');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
