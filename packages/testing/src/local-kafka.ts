import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable, isExecutable } from './executables.js';
import { ensureKafkaJars, KAFKA_VERSION } from './kafka-jars.js';
import {
  scramFormatArgs,
  securedListeners,
  securitySettings,
  type KafkaSecurityOptions,
  type SecuredListeners,
} from './local-kafka-security.js';
import { defaultLog, prefixed, type LogFn } from './log.js';
import { freePort } from './ports.js';
import { indent, readTail, runToCompletion, spawnManaged } from './processes.js';
import { makeTempDir, type TempDir } from './temp-dirs.js';
import { waitForKafka } from './readiness.js';
import { describeError } from './wait-for.js';

export interface LocalKafkaOptions {
  /** Client (PLAINTEXT) listener port. */
  port?: number;
  controllerPort?: number;
  log?: LogFn;
  startTimeoutMs?: number;
  /** Kafka version to fetch and run; the jars are cached per version. */
  version?: string;
  cacheDir?: string;
  /** Replaces the default JVM flags (small heap, serial GC, C1 only: quick start on 2 cores). */
  javaOpts?: string[];
  /** Extra server.properties entries, overriding the defaults. */
  settings?: Record<string, string | number | boolean>;
  /** KRaft cluster id the storage is formatted with; nodes of one cluster share it. Default: a new one. */
  clusterId?: string;
  /** Secured listeners besides the PLAINTEXT one (which stays, for readiness and inter-broker). */
  security?: KafkaSecurityOptions;
}

export interface LocalKafka {
  brokers: string[];
  port: number;
  /** The broker's own log4j output; kept in the temp dir until `stop()`. */
  logFile: string;
  /** host:port of each secured listener, when `security` was given. */
  secured?: SecuredListeners;
  /**
   * Stops the broker (SIGTERM: a controlled shutdown) and starts it again on the same ports with the
   * same data: topics, offsets and committed consumer groups survive, as in a rolling restart.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_JAVA_OPTS = [
  '-Xms256m',
  '-Xmx512m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-XX:-UsePerfData',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
  '-Djava.net.preferIPv4Stack=true',
];
const TOOL_JAVA_OPTS = ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-XX:-UsePerfData'];

export async function startLocalKafka(opts: LocalKafkaOptions = {}): Promise<LocalKafka> {
  const log = prefixed(opts.log ?? defaultLog);
  const java = findJava();
  const libs = await ensureKafkaJars({
    version: opts.version ?? KAFKA_VERSION,
    cacheDir: opts.cacheDir,
    log,
  });
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const controllerPort = opts.controllerPort ?? (await freePort());
    try {
      return await startOnce(java, libs, port, controllerPort, opts);
    } catch (err) {
      const fixedPorts = opts.port !== undefined || opts.controllerPort !== undefined;
      if (!fixedPorts && attempt < 3 && /already in use/i.test(describeError(err))) continue;
      throw err;
    }
  }
}

async function startOnce(
  java: string,
  libs: string,
  port: number,
  controllerPort: number,
  opts: LocalKafkaOptions,
): Promise<LocalKafka> {
  const dir = makeTempDir('kafka');
  const secured = opts.security ? await securedListeners() : undefined;
  const logFile = join(dir.path, 'server.log');
  const consoleFile = join(dir.path, 'console.log');
  const serverProperties = join(dir.path, 'server.properties');
  const log4jProperties = join(dir.path, 'log4j.properties');
  mkdirSync(join(dir.path, 'logs'));
  writeFileSync(
    serverProperties,
    renderProperties(
      serverSettings(dir.path, port, controllerPort, {
        ...(opts.security && secured ? securitySettings(opts.security, port, controllerPort, secured) : {}),
        ...opts.settings,
      }),
    ),
  );
  writeFileSync(log4jProperties, log4jConfig(logFile));

  const classpath = ['-cp', join(libs, '*')];
  const logging = [
    `-Dlog4j.configuration=file:${log4jProperties}`,
    `-Dkafka.logs.dir=${join(dir.path, 'logs')}`,
  ];
  const tail = (): string => `${readTail(consoleFile, 15)}\n${readTail(logFile, 40)}`;

  try {
    await runToCompletion(
      'kafka-storage format',
      java,
      [
        ...TOOL_JAVA_OPTS,
        ...logging,
        ...classpath,
        'kafka.tools.StorageTool',
        'format',
        '-t',
        opts.clusterId ?? newClusterId(),
        '-c',
        serverProperties,
        ...(opts.security ? scramFormatArgs(opts.security) : []),
      ],
      { cwd: dir.path, logFile: consoleFile, timeoutMs: 120_000 },
    );
  } catch (err) {
    await dir.remove();
    throw err;
  }

  const launch = () =>
    spawnManaged(
      'kafka',
      java,
      [...(opts.javaOpts ?? DEFAULT_JAVA_OPTS), ...logging, ...classpath, 'kafka.Kafka', serverProperties],
      { cwd: dir.path, logFile: consoleFile, stopTimeoutMs: 10_000 },
    );
  let proc = launch();
  const brokers = [`127.0.0.1:${port}`];
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  try {
    await waitForKafka(brokers, timeoutMs, () => proc.exitStatus);
  } catch (err) {
    await proc.stop();
    const message = `local Kafka did not become ready: ${describeError(err)}\n${indent(tail())}`;
    await dir.remove();
    throw new Error(message, { cause: err });
  }
  const restart = async (): Promise<void> => {
    await proc.stop();
    proc = launch();
    try {
      await waitForKafka(brokers, timeoutMs, () => proc.exitStatus);
    } catch (err) {
      throw new Error(`local Kafka did not come back: ${describeError(err)}\n${indent(tail())}`, {
        cause: err,
      });
    }
  };

  return {
    brokers,
    port,
    logFile,
    ...(secured ? { secured } : {}),
    restart,
    stop: stopper(() => proc.stop(), dir),
  };
}

function stopper(stopProcess: () => Promise<void>, dir: TempDir): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= (async () => {
      await stopProcess();
      await dir.remove();
    })());
}

function serverSettings(
  dir: string,
  port: number,
  controllerPort: number,
  overrides: LocalKafkaOptions['settings'],
): Record<string, string | number | boolean> {
  return {
    // One JVM that is both the KRaft controller quorum and the only broker.
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': join(dir, 'data'),
    // A single broker cannot host more than one replica of anything.
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'offsets.topic.replication.factor': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    // Fewer internal partitions and no rebalance delay: the first consumer group join and the first
    // transaction are what tests wait on, and 50 partitions each would cost seconds.
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.num.partitions': 1,
    'group.initial.rebalance.delay.ms': 0,
    'auto.create.topics.enable': true,
    'delete.topic.enable': true,
    // Sized for a 2-core CI box and a 512 MB heap (the cleaner's default buffer alone is 128 MB).
    'num.network.threads': 2,
    'num.io.threads': 2,
    'background.threads': 2,
    'num.recovery.threads.per.data.dir': 1,
    'log.cleaner.threads': 1,
    'log.cleaner.dedupe.buffer.size': 16 * 1024 * 1024,
    ...overrides,
  };
}

function renderProperties(settings: Record<string, string | number | boolean>): string {
  const lines = Object.entries(settings).map(([key, value]) => `${key}=${String(value)}`);
  return `# generated by @walpurge/testing\n${lines.join('\n')}\n`;
}

function log4jConfig(logFile: string): string {
  return `# generated by @walpurge/testing: everything to one file, nothing to the console
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${logFile}
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
`;
}

/**
 * Kafka cluster ids are 16 random bytes in URL-safe base64 (22 characters). A leading '-' would
 * be read as an option by the storage tool's argument parser, as Kafka's own generator avoids too.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

// $JAVA_HOME first: it is how a machine with several JDKs says which one it means.
function findJava(): string {
  const javaHome = process.env['JAVA_HOME'];
  if (javaHome && isExecutable(join(javaHome, 'bin', 'java'))) return join(javaHome, 'bin', 'java');
  const java = findExecutable('java');
  if (!java) {
    throw new Error(
      'java not found (PATH or $JAVA_HOME/bin); install a JDK 17+ (apt-get install openjdk-17-jre-headless) ' +
        'or set WALPURGE_TEST_KAFKA_BROKERS',
    );
  }
  return java;
}
