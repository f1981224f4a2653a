/**
 * walpurge's listener against Debezium (not part of the test suite): catch-up of the same backlog into
 * the same Kafka broker, one system after the other.
 *
 *   npm run bench:debezium        (BENCH_* variables below change the parameters)
 *
 * For each workload a fresh database gets one slot, publication and topic per system (created before
 * the backlog is written, so every system sees all of it), then the backlog is written, then each
 * system runs alone over it: walpurge as `walpurge run --role listener` (compiled), Debezium
 * (BENCH_DEBEZIUM_VERSION from Maven Central) as its embedded engine with a KafkaProducer sink, the
 * way Debezium Server runs it. Catch-up is the window between the first and the last record the
 * broker appended (LogAppendTime) to the system's topic, verified complete by reading the topic back.
 * CPU seconds come from /proc/<pid>/stat over that window, peak RSS from VmHWM.
 *
 * BENCH_INSERTS (500,000) in BENCH_TX_ROWS-row transactions (500); BENCH_UPDATES (200,000) single-row
 * UPDATE transactions over BENCH_UPDATE_ROWS rows (10,000); BENCH_PARTITIONS (6) for every topic;
 * BENCH_WORKLOADS=inserts,updates picks workloads; BENCH_DEBEZIUM_UNTUNED=1 also runs Debezium on its
 * defaults; BENCH_TIMEOUT_SECONDS (900) bounds each system's run; BENCH_SYSTEMS (comma-separated, of
 * walpurge, walpurge-platformatic, debezium-tuned, debezium-defaults) runs only the named systems;
 * `walpurge` is the listener with its default producer client (kafkajs), `walpurge-platformatic` with
 * kafka.producerClient: platformatic; BENCH_PRODUCER_THREAD=1 runs the kafkajs listener with
 * kafka.producerThread: true;
 * BENCH_NODE_ARGS go to the listener's node (e.g. --cpu-prof). Uses WALPURGE_TEST_* services when set, else starts local ones (@walpurge/testing).
 * Results also go to test-results/bench-debezium.json.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  KAFKA_VERSION,
  createIsolatedDatabase,
  startTestEnvironment,
  uniqueName,
  withPgClient,
} from '@walpurge/testing';
import { createBenchTopic, readBackTopic, watchTopic, type ReadBack } from './support/bench-topic.js';
import { insertWorkload, updateWorkload, type BacklogWorkload } from './support/backlog-workloads.js';
import {
  DEBEZIUM_VERSION,
  ensureDebeziumBench,
  startDebezium,
  type DebeziumProfile,
} from './support/debezium-engine.js';
import { readProcessUsage, type ProcessUsage } from './support/process-usage.js';
import { deleteTopics, envNumber, loadAverages, loadLine, machineLine } from './support/report.js';
import { buildWalpurge, startWalpurge } from './support/walpurge-process.js';

const INSERTS = envNumber('BENCH_INSERTS', 500_000);
const TX_ROWS = envNumber('BENCH_TX_ROWS', 500);
const UPDATES = envNumber('BENCH_UPDATES', 200_000);
const UPDATE_ROWS = envNumber('BENCH_UPDATE_ROWS', 10_000);
const PARTITIONS = envNumber('BENCH_PARTITIONS', 6);
const TIMEOUT_SECONDS = envNumber('BENCH_TIMEOUT_SECONDS', 900);
const UNTUNED = process.env['BENCH_DEBEZIUM_UNTUNED'] === '1';
/** BENCH_SYSTEMS=walpurge (comma-separated) runs only those systems: for profiling one side, no ratio. */
const ONLY_SYSTEMS = process.env['BENCH_SYSTEMS']?.split(',').map((s) => s.trim());
/** BENCH_PRODUCER_THREAD=1: the listener's producer in its own thread (kafka.producerThread: true). */
const PRODUCER_THREAD = process.env['BENCH_PRODUCER_THREAD'] === '1';
const WORKLOADS = (process.env['BENCH_WORKLOADS'] ?? 'inserts,updates').split(',').map((w) => w.trim());
const repoRoot = resolve(import.meta.dirname, '../..');

type SystemName = 'walpurge' | 'walpurge-platformatic' | 'debezium-tuned' | 'debezium-defaults';
/** The listener's producer client per walpurge system (kafka.producerClient). */
const WALPURGE_CLIENTS: Partial<Record<SystemName, 'kafkajs' | 'platformatic'>> = {
  walpurge: 'kafkajs',
  'walpurge-platformatic': 'platformatic',
};
const LABELS: Record<SystemName, string> = {
  walpurge: 'walpurge listener (kafkajs)',
  'walpurge-platformatic': 'walpurge listener (platformatic)',
  'debezium-tuned': `Debezium ${DEBEZIUM_VERSION} tuned`,
  'debezium-defaults': `Debezium ${DEBEZIUM_VERSION} defaults`,
};

interface SystemResult {
  system: SystemName;
  changesPerSecond: number;
  catchUpSeconds: number;
  /** CPU over the catch-up window, per million changes. */
  cpuSecondsPerMillion: number;
  /** CPU from process start to the last change (JVM/Node start, connecting, the catch-up). */
  cpuSecondsTotal: number;
  peakRssBytes: number;
  readBack: ReadBack;
  complete: boolean;
  loadBefore: string;
  loadAfter: string;
  /** Warning and error lines in the process's log (a reconnect or a connector restart shows here). */
  logProblems: number;
  /** Why the run ended before the topic held every change (stall, exit, time limit). */
  error?: string;
}

interface Running {
  pid: number;
  alive(): boolean;
  stop(): Promise<void>;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const settings = new Map<SystemName, string[]>();

async function main(): Promise<void> {
  const loadAtStart = loadLine('at the start');
  const classpath = ensureDebeziumBench(log);
  buildWalpurge(log);
  const env = await startTestEnvironment({ redis: false, log: () => {} });
  const { databaseUrl, kafkaBrokers } = env.urls as { databaseUrl: string; kafkaBrokers: string[] };
  const serverVersion = await withPgClient(
    databaseUrl,
    async (c) => (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version,
  );
  // Process logs and config files of the last run, kept for a look afterwards (test-results/ is not committed).
  const workDir = join(repoRoot, 'test-results', 'bench-debezium-logs');
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const systems = (
    [
      'walpurge',
      'walpurge-platformatic',
      'debezium-tuned',
      ...(UNTUNED ? ['debezium-defaults'] : []),
    ] as SystemName[]
  ).filter((system) => ONLY_SYSTEMS === undefined || ONLY_SYSTEMS.includes(system));
  const workloads = [insertWorkload(INSERTS, TX_ROWS), updateWorkload(UPDATES, UPDATE_ROWS)].filter((w) =>
    WORKLOADS.includes(w.name),
  );

  const header = [
    `walpurge listener vs Debezium ${DEBEZIUM_VERSION}: catch-up of a backlog into Kafka`,
    machineLine(),
    `services: PostgreSQL ${serverVersion}, Kafka ${KAFKA_VERSION} (${env.providers['kafka']}), all on this machine; every topic ${PARTITIONS} partitions, replication factor 1, LogAppendTime`,
    loadAtStart,
    'fairness: both systems read the same backlog of the same database through their own slot and publication (created before the backlog was written), write to the same broker, and run one after the other, never at once; the order alternates between workloads',
    "catch-up: first to last record appended by the broker to the system's topic (broker clock), verified by reading the topic back (every change's (id, v) exactly once); CPU: utime+stime of the process over that window; RSS: peak (VmHWM) of the process",
  ];
  process.stdout.write(`${header.join('\n')}\n`);

  const results: WorkloadResult[] = [];
  const outFile = join(repoRoot, 'test-results', 'bench-debezium.json');
  for (const [index, workload] of workloads.entries()) {
    // Alternate who goes first, so neither always reads a backlog the other has just warmed up.
    const order = index % 2 === 0 ? systems : [...systems.slice(1), systems[0] as SystemName];
    const result: WorkloadResult = {
      workload,
      order,
      ...(await runWorkload(workload, order, databaseUrl, kafkaBrokers, classpath, workDir)),
    };
    results.push(result);
    // Printed and saved as each workload ends, so a later failure keeps what was measured.
    process.stdout.write(`\n${describeWorkload(result).join('\n')}\n`);
    writeResults(outFile, { serverVersion, loadAtStart, results });
  }
  const loadAtEnd = loadLine('at the end');
  const lines = ['', loadAtEnd, 'settings:'];
  for (const system of systems) {
    lines.push(`  ${LABELS[system]}:`);
    for (const line of settings.get(system) ?? []) lines.push(`    ${line}`);
  }
  lines.push(`results written to ${outFile}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResults(outFile, { serverVersion, loadAtStart, loadAtEnd, results });

  await env.stop();
  if (results.some((r) => r.systems.some((s) => !s.complete)))
    throw new Error('a system failed or a topic read back incomplete: see the tables');
}

interface WorkloadResult {
  workload: BacklogWorkload;
  writeSeconds: number;
  order: SystemName[];
  systems: SystemResult[];
}

function describeWorkload({ workload, writeSeconds, order, systems: measured }: WorkloadResult): string[] {
  return [
    `workload: ${workload.title} (backlog written in ${writeSeconds.toFixed(1)} s; run order: ${order.join(', ')})`,
    ...table(measured),
    ...measured.map(
      (r) =>
        `  ${LABELS[r.system]}: load ${r.loadBefore} → ${r.loadAfter}; ${r.logProblems} warning/error lines in its log${r.error ? `; FAILED: ${r.error}` : ''}`,
    ),
  ];
}

function writeResults(
  file: string,
  run: {
    serverVersion: string | undefined;
    loadAtStart: string;
    loadAtEnd?: string;
    results: WorkloadResult[];
  },
): void {
  mkdirSync(join(file, '..'), { recursive: true });
  const json = {
    machine: machineLine(),
    postgres: run.serverVersion,
    kafka: KAFKA_VERSION,
    debezium: DEBEZIUM_VERSION,
    loadAtStart: run.loadAtStart,
    loadAtEnd: run.loadAtEnd,
    partitions: PARTITIONS,
    workloads: run.results.map((r) => ({
      name: r.workload.name,
      title: r.workload.title,
      changes: r.workload.changes,
      writeSeconds: r.writeSeconds,
      order: r.order,
      systems: r.systems,
    })),
    settings: Object.fromEntries(settings),
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
}

async function runWorkload(
  workload: BacklogWorkload,
  order: SystemName[],
  databaseUrl: string,
  brokers: string[],
  classpath: string,
  workDir: string,
): Promise<{ writeSeconds: number; systems: SystemResult[] }> {
  const db = await createIsolatedDatabase(databaseUrl, `bench_${workload.name}`);
  const names = new Map(
    order.map((system) => [system, uniqueName(`${system.replace('-', '_')}_${workload.name}`)]),
  );
  try {
    log(`${workload.name}: preparing the table and a slot, publication and topic per system…`);
    await withPgClient(db.url, async (client) => {
      await workload.prepare(client);
      for (const name of names.values()) {
        await client.query(`CREATE PUBLICATION ${name} FOR TABLE ${workload.table}`);
        await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
      }
    });
    for (const name of names.values()) await createBenchTopic(brokers, name, PARTITIONS);

    log(`${workload.name}: writing the backlog (${workload.title})…`);
    const writeStarted = performance.now();
    await withPgClient(db.url, (client) => workload.write(client));
    const writeSeconds = (performance.now() - writeStarted) / 1000;

    const measured: SystemResult[] = [];
    for (const system of order) {
      const name = names.get(system) as string;
      log(`${workload.name}: ${LABELS[system]} catching up…`);
      const start = (): Running => {
        const client = WALPURGE_CLIENTS[system];
        if (client) {
          const configFile = join(workDir, `${name}.yaml`);
          const yaml = walpurgeConfig(db.url, name, workload.table, brokers, client);
          writeFileSync(configFile, yaml);
          settings.set(system, [
            `walpurge run --role listener --config <file>, compiled JavaScript, Node ${process.version}; its own producer settings (acks=all, idempotent), nothing tuned in the file:`,
            ...yaml
              .trimEnd()
              .split('\n')
              .map((l) => l.replace(db.url, '<database url>').replaceAll(name, '<per run>')),
          ]);
          return startWalpurge('listener', configFile, join(workDir, `${name}.log`));
        }
        const profile: DebeziumProfile = system === 'debezium-tuned' ? 'tuned' : 'defaults';
        const debezium = startDebezium({
          classpath,
          profile,
          databaseUrl: db.url,
          slot: name,
          publication: name,
          table: `public.${workload.table}`,
          topic: name,
          brokers,
          offsetsFile: join(workDir, `${name}.offsets`),
          logFile: join(workDir, `${name}.log`),
        });
        return {
          pid: debezium.pid,
          alive: () => debezium.alive(),
          stop: async () => {
            if (!settings.has(system)) settings.set(system, debezium.settings().map(withoutRunNames));
            await debezium.stop();
          },
        };
      };
      measured.push(await measure(system, workload, start, name, brokers, join(workDir, `${name}.log`)));
    }
    return { writeSeconds, systems: measured };
  } catch (error) {
    log(`${workload.name} failed; the processes' logs are in ${workDir}`);
    throw error;
  } finally {
    await db.drop();
    await deleteTopics(brokers, [...names.values()]);
  }
}

async function measure(
  system: SystemName,
  workload: BacklogWorkload,
  start: () => Running,
  topic: string,
  brokers: string[],
  logFile: string,
): Promise<SystemResult> {
  const loadBefore = loadAverages();
  const running = start();
  let atFirst: ProcessUsage | undefined;
  let atLast: ProcessUsage | undefined;
  let error: string | undefined;
  try {
    await watchTopic({
      brokers,
      topic,
      expected: workload.changes,
      timeoutMs: TIMEOUT_SECONDS * 1000,
      alive: () => running.alive(),
      onFirst: () => (atFirst = readProcessUsage(running.pid)),
      onLast: () => (atLast = readProcessUsage(running.pid)),
    });
  } catch (caught) {
    // One system failing (stalled, exited, too slow) must not lose the other's figures.
    error = caught instanceof Error ? caught.message : String(caught);
    atLast = readProcessUsage(running.pid) ?? atLast;
    log(`${workload.name}: ${LABELS[system]} failed: ${error}`);
  } finally {
    await running.stop();
  }
  const loadAfter = loadAverages();
  const readBack = await readBackTopic(brokers, topic);
  const catchUpSeconds = Math.max(0.001, (readBack.lastAppendMs - readBack.firstAppendMs) / 1000);
  const cpuWindow = atFirst && atLast ? atLast.cpuSeconds - atFirst.cpuSeconds : NaN;
  return {
    system,
    changesPerSecond: readBack.records / catchUpSeconds,
    catchUpSeconds,
    cpuSecondsPerMillion: (cpuWindow / Math.max(1, readBack.records)) * 1e6,
    cpuSecondsTotal: atLast?.cpuSeconds ?? NaN,
    peakRssBytes: atLast?.peakRssBytes ?? NaN,
    readBack,
    complete:
      error === undefined &&
      readBack.records === workload.changes &&
      readBack.distinctChanges === workload.changes &&
      readBack.unreadable === 0,
    ...(error === undefined ? {} : { error }),
    loadBefore,
    loadAfter,
    logProblems: readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((line) => /\b(ERROR|WARN)\b|"level":(40|50|60)\b/.test(line)).length,
  };
}

function walpurgeConfig(
  databaseUrl: string,
  name: string,
  table: string,
  brokers: string[],
  client: 'kafkajs' | 'platformatic',
): string {
  return `transport: kafka
database:
  url: ${databaseUrl}
  slot: ${name}
  publication: ${name}
  createPublication: false
  tables: [${table}]
  heartbeatIntervalMs: 0
kafka:
  brokers: [${brokers.map((b) => `'${b}'`).join(', ')}]
  topic: ${name}
  partitions: ${PARTITIONS}
  deadLetterTopic: ${name}.dlq${PRODUCER_THREAD && client === 'kafkajs' ? '\n  producerThread: true' : ''}
  producerClient: ${client}
http:
  port: 0
  host: 127.0.0.1
log:
  level: warn
`;
}

function table(measured: SystemResult[]): string[] {
  const rows: string[][] = [
    ['system', 'changes/s', 'catch-up s', 'CPU-s per M changes', 'CPU-s total', 'peak RSS MiB', 'read back'],
  ];
  for (const r of measured)
    rows.push([
      r.error ? `${LABELS[r.system]} (FAILED)` : LABELS[r.system],
      Math.round(r.changesPerSecond).toLocaleString('en-US'),
      r.catchUpSeconds.toFixed(2),
      r.cpuSecondsPerMillion.toFixed(1),
      r.cpuSecondsTotal.toFixed(1),
      (r.peakRssBytes / 2 ** 20).toFixed(0),
      `${r.complete ? 'complete' : 'INCOMPLETE'}: ${r.readBack.records} records, ${r.readBack.distinctChanges} distinct changes${r.readBack.unreadable > 0 ? `, ${r.readBack.unreadable} unreadable` : ''}`,
    ]);
  const short = (system: SystemName): string =>
    LABELS[system]
      .replace(`Debezium ${DEBEZIUM_VERSION} `, 'Debezium ')
      .replace('walpurge listener ', 'walpurge ');
  const isWalpurge = (r: SystemResult): boolean => WALPURGE_CLIENTS[r.system] !== undefined;
  for (const walpurge of measured.filter(isWalpurge))
    for (const other of measured.filter((r) => !isWalpurge(r))) {
      rows.push([
        `ratio ${short(walpurge.system)} / ${short(other.system)}`,
        (walpurge.changesPerSecond / other.changesPerSecond).toFixed(2),
        (walpurge.catchUpSeconds / other.catchUpSeconds).toFixed(2),
        (walpurge.cpuSecondsPerMillion / other.cpuSecondsPerMillion).toFixed(2),
        (walpurge.cpuSecondsTotal / other.cpuSecondsTotal).toFixed(2),
        (walpurge.peakRssBytes / other.peakRssBytes).toFixed(2),
        '',
      ]);
    }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map(
    (row) =>
      `| ${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`,
  );
}

/** Settings are printed once for all workloads: what differs per run (database, slot, files) is masked. */
function withoutRunNames(line: string): string {
  return line.replace(
    /^(engine (?:database\.(?:dbname|hostname|port|user|password)|offset\.storage\.file\.filename|slot\.name|publication\.name|table\.include\.list))=.*$/,
    '$1=<per run>',
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
