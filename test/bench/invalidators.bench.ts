/**
 * How the invalidator scales with processes and partitions (not part of the test suite): catch-up of
 * a backlog already in the Kafka change topic by 1, then 2 `walpurge run --role invalidator`
 * processes (compiled, as users run them) in one consumer group.
 *
 *   npm run bench:invalidators        (BENCH_* variables below change the parameters)
 *
 * Per run a fresh topic and consumer group (deleted afterwards, with the run's Redis keys):
 * BENCH_CHANGES (200,000) protocol-v1 update events are written straight to the topic as the
 * listener writes them (toKafkaMessage, murmur2 partitioner), each purging one Redis key through the
 * rule `bench:{id}`, and all those keys are set beforehand.
 * Then the processes start; the benchmark's own member of the group holds the partitions until all of
 * them have joined, so that none starts alone (support/group-gate.ts). Throughput is measured on the
 * offsets the group commits (an invalidator commits a chunk only after its purges succeeded): from
 * the first poll that sees a commit to the one that sees the last (support/consumer-group.ts).
 * Afterwards every pre-set key must be gone, or the benchmark fails. CPU comes from /proc/<pid>/stat
 * over that window, memory is each process's peak RSS (VmHWM).
 *
 * Runs: BENCH_PARTITIONS (6) partitions with 1 and 2 processes, then 1 partition with 1 and 2
 * processes (a partition is consumed by one member at a time: the second process idles).
 * BENCH_TIMEOUT_SECONDS (600) bounds each run; BENCH_NODE_ARGS go to the invalidators' node.
 * Uses WALPURGE_TEST_* services when set, else starts local ones (@walpurge/testing).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { InvalidatorConfig } from '@walpurge/config';
import { KAFKA_VERSION, deleteRedisKeys, startTestEnvironment, uniqueName } from '@walpurge/testing';
import { createBenchTopic } from './support/bench-topic.js';
import { writeChangeBacklog } from './support/change-backlog.js';
import { benchUpdate } from './support/change-events.js';
import { deleteGroup, watchGroupCatchUp, type GroupCatchUp } from './support/consumer-group.js';
import { openGroupGate } from './support/group-gate.js';
import { readProcessUsage, type ProcessUsage } from './support/process-usage.js';
import { countExistingKeys, writeKeys } from './support/redis-keys.js';
import { deleteTopics, envNumber, loadAverages, loadLine, machineLine } from './support/report.js';
import { buildWalpurge, startWalpurge } from './support/walpurge-process.js';

const CHANGES = envNumber('BENCH_CHANGES', 200_000);
const PARTITIONS = envNumber('BENCH_PARTITIONS', 6);
const TIMEOUT_SECONDS = envNumber('BENCH_TIMEOUT_SECONDS', 600);
const TABLE = 'bench';
const repoRoot = resolve(import.meta.dirname, '../..');

interface Run {
  processes: number;
  partitions: number;
}

interface RunResult extends Run {
  backlogSeconds: number;
  /** From starting the processes to the partitions handed to all of them. */
  joinSeconds?: number;
  catchUp?: GroupCatchUp;
  /** CPU of each process over the window. */
  cpuSeconds: number[];
  peakRssBytes: number[];
  /** 'joined the consumer group' lines per process: more than one is a rebalance during the run. */
  joins: number[];
  /** Warning and error lines in the processes' logs. */
  logProblems: number;
  /** Pre-set keys still in Redis after the run: each one a change that was not purged. */
  keysLeft: number;
  loadBefore: string;
  loadAfter: string;
  error?: string;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const loadAtStart = loadLine('at the start');
  buildWalpurge(log);
  const env = await startTestEnvironment({ postgres: false, log: () => {} });
  const { redisUrl, kafkaBrokers } = env.urls as { redisUrl: string; kafkaBrokers: string[] };
  const redis = new Redis(redisUrl);
  // Process logs and config files of the last run, kept for a look afterwards (test-results/ is not committed).
  const workDir = join(repoRoot, 'test-results', 'bench-invalidators-logs');
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });

  const defaults = InvalidatorConfig.parse({});
  const runs: Run[] = [
    { processes: 1, partitions: PARTITIONS },
    { processes: 2, partitions: PARTITIONS },
    ...(PARTITIONS === 1
      ? []
      : [
          { processes: 1, partitions: 1 },
          { processes: 2, partitions: 1 },
        ]),
  ];
  process.stdout.write(
    `${[
      'walpurge invalidators: catch-up of a backlog in the change topic by 1 and 2 processes of one consumer group',
      machineLine(),
      `services: Kafka ${KAFKA_VERSION} (${env.providers['kafka']}), Redis (${env.providers['redis']}), all on this machine with the invalidators and this benchmark`,
      loadAtStart,
      `settings: ${CHANGES.toLocaleString('en-US')} changes per run, each an UPDATE event purging one exact key (UNLINK); a fresh topic (replication factor 1) and consumer group per run; walpurge run --role invalidator --config <file>, compiled JavaScript, Node ${process.version}; invalidator defaults: ${defaults.partitionsConsumedConcurrently} partitions consumed concurrently per process, chunks of ${defaults.maxBatchEvents} events, coalescing window ${defaults.coalesceWindowMs} ms, ${defaults.redisBatchSize} keys per UNLINK`,
      "start: the benchmark's own member of the group holds the partitions until every process has joined, then hands them out as the processes' round robin would (none starts alone); window: from the first poll (every 50 ms) that sees a commit to the one that sees the last change committed; changes/s counts the changes committed within it; CPU: utime+stime of all the invalidator processes over it; RSS: peak (VmHWM) of each process",
      '',
      '| processes | partitions | changes/s | seconds | CPU-s per M changes | peak RSS MiB per process | load before → after |',
      '| --------: | ---------: | --------: | ------: | ------------------: | -----------------------: | ------------------- |',
    ].join('\n')}\n`,
  );

  const results: RunResult[] = [];
  try {
    for (const run of runs) {
      const result = await measure(run, kafkaBrokers, redis, redisUrl, workDir);
      results.push(result);
      // Printed as each run ends, so a later failure keeps what was measured.
      process.stdout.write(`${row(result)}\n`);
    }
  } finally {
    redis.disconnect();
    await env.stop();
  }
  const lines = ['', 'per run:'];
  for (const r of results) lines.push(`  ${details(r)}`);
  lines.push('', loadLine('at the end'), `process logs and config files: ${workDir}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  const failed = results.filter((r) => r.error !== undefined || r.keysLeft !== 0);
  if (failed.length > 0)
    throw new Error(
      `${failed.length} run(s) failed or left keys unpurged: ${failed.map((r) => `${r.processes} process(es) × ${r.partitions} partition(s): ${r.error ?? `${r.keysLeft} of ${CHANGES} keys left`}`).join('; ')}`,
    );
}

async function measure(
  run: Run,
  brokers: string[],
  redis: Redis,
  redisUrl: string,
  workDir: string,
): Promise<RunResult> {
  const name = uniqueName(`inv_${run.processes}p_${run.partitions}part`);
  const prefix = `${name}:`;
  const keyOf = (i: number): string => `${prefix}bench:${i + 1}`;
  const topics = [name, `${name}.dlq`, `${name}.cdn`];
  const label = `${run.processes} process(es) × ${run.partitions} partition(s)`;
  try {
    log(`${label}: writing ${CHANGES} keys and the backlog…`);
    await createBenchTopic(brokers, name, run.partitions);
    await writeKeys(redis, 0, CHANGES, keyOf);
    const backlogSeconds = await writeChangeBacklog(brokers, name, CHANGES, (i) => benchUpdate(TABLE, i + 1));
    const configFile = join(workDir, `${name}.yaml`);
    writeFileSync(configFile, invalidatorConfig(name, brokers, redisUrl, run.partitions));

    log(`${label}: catching up…`);
    const gate = await openGroupGate(brokers, name, name, run.processes);
    const loadBefore = loadAverages();
    const startedAt = performance.now();
    let joinSeconds: number | undefined;
    void gate.opened.then(() => (joinSeconds = (performance.now() - startedAt) / 1000));
    const logFiles = Array.from({ length: run.processes }, (_, i) => join(workDir, `${name}-${i + 1}.log`));
    const processes = logFiles.map((file) => startWalpurge('invalidator', configFile, file));
    const sample = (): Array<ProcessUsage | undefined> => processes.map((p) => readProcessUsage(p.pid));
    let atStart: Array<ProcessUsage | undefined> = [];
    let atEnd: Array<ProcessUsage | undefined> = [];
    let catchUp: GroupCatchUp | undefined;
    let error: string | undefined;
    try {
      catchUp = await watchGroupCatchUp({
        brokers,
        groupId: name,
        topic: name,
        expected: CHANGES,
        timeoutMs: TIMEOUT_SECONDS * 1000,
        alive: () => processes.every((p) => p.alive()),
        onStart: () => (atStart = sample()),
        onEnd: () => (atEnd = sample()),
      });
    } catch (caught) {
      // One run failing (stalled, exited, too slow) must not lose the others' figures.
      error = caught instanceof Error ? caught.message : String(caught);
      log(`${label} failed: ${error}`);
    } finally {
      await Promise.all(processes.map((p) => p.stop()));
      await gate.close();
    }
    const loadAfter = loadAverages();
    const logs = logFiles.map((file) => readFileSync(file, 'utf8').split('\n'));
    return {
      ...run,
      backlogSeconds,
      ...(joinSeconds === undefined ? {} : { joinSeconds }),
      ...(catchUp ? { catchUp } : {}),
      cpuSeconds: processes.map((_, i) => (atEnd[i]?.cpuSeconds ?? NaN) - (atStart[i]?.cpuSeconds ?? NaN)),
      peakRssBytes: processes.map((_, i) => atEnd[i]?.peakRssBytes ?? NaN),
      joins: logs.map((lines) => lines.filter((line) => line.includes('joined the consumer group')).length),
      logProblems: logs.flat().filter((line) => /"level":(40|50|60)\b/.test(line)).length,
      keysLeft: await countExistingKeys(redis, 0, CHANGES, keyOf),
      loadBefore,
      loadAfter,
      ...(error === undefined ? {} : { error }),
    };
  } finally {
    await deleteRedisKeys(redis, prefix);
    await deleteTopics(brokers, topics);
    await deleteGroup(brokers, name);
  }
}

/** Nothing tuned: the invalidator's defaults, one exact-key rule, per-run names for everything. */
function invalidatorConfig(name: string, brokers: string[], redisUrl: string, partitions: number): string {
  return stringify({
    transport: 'kafka',
    kafka: {
      brokers,
      topic: name,
      partitions,
      deadLetterTopic: `${name}.dlq`,
      cdnTopic: `${name}.cdn`,
      consumerGroup: name,
    },
    redis: { url: redisUrl, keyPrefix: `${name}:` },
    rules: [{ table: TABLE, on: ['update'], redis: { keys: ['bench:{id}'] } }],
    http: { port: 0, host: '127.0.0.1' },
    // info: the consumer group joins are logged at info, and counted (a rebalance shows there).
    log: { level: 'info' },
  });
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);

function row(r: RunResult): string {
  const changes = r.catchUp?.changes ?? NaN;
  const seconds = r.catchUp ? (r.catchUp.endedAt - r.catchUp.startedAt) / 1000 : NaN;
  const cpu = r.cpuSeconds.reduce((sum, s) => sum + s, 0);
  const cells = [
    String(r.processes).padStart(9),
    String(r.partitions).padStart(10),
    (r.error ? 'FAILED' : Math.round(changes / seconds).toLocaleString('en-US')).padStart(9),
    seconds.toFixed(2).padStart(7),
    ((cpu / changes) * 1e6).toFixed(1).padStart(19),
    r.peakRssBytes.map(mib).join(', ').padStart(24),
    `${r.loadBefore} → ${r.loadAfter}`,
  ];
  return `| ${cells.join(' | ')} |`;
}

function details(r: RunResult): string {
  const parts = [
    `${r.processes} process(es) × ${r.partitions} partition(s): backlog written in ${r.backlogSeconds.toFixed(1)} s`,
    `all processes in the group ${r.joinSeconds === undefined ? 'NEVER' : `${r.joinSeconds.toFixed(1)} s after their start`}`,
  ];
  if (r.catchUp)
    parts.push(
      `${r.catchUp.changes.toLocaleString('en-US')} changes in the window (${r.catchUp.before.toLocaleString('en-US')} committed before the first poll saw a commit)`,
    );
  parts.push(
    `CPU-s per process ${r.cpuSeconds.map((s) => s.toFixed(2)).join(', ')}`,
    `group joins per process ${r.joins.join(', ')} (more than one: a rebalance)`,
    `${r.logProblems} warning/error log lines`,
    `${r.keysLeft} of ${CHANGES.toLocaleString('en-US')} keys left${r.keysLeft > 0 ? ' (NOT PURGED)' : ''}`,
  );
  if (r.error) parts.push(`FAILED: ${r.error}`);
  return parts.join('; ');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
