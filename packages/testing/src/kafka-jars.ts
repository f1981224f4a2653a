import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { copyRuntimeClasspath, ensureCachedDirectory } from './maven-cache.js';
import type { LogFn } from './log.js';

export const KAFKA_VERSION = '3.9.1';
export const SCALA_VERSION = '2.13';
// Kafka 3.x logs through slf4j onto log4j 1 (reload4j), but its published pom leaves both the
// binding and reload4j itself to the distribution. We add the versions the 3.9 tarball ships, so the
// broker logs as usual and reads the log4j config we write.
const LOGGING_JARS = [
  { groupId: 'org.slf4j', artifactId: 'slf4j-reload4j', version: '1.7.36' },
  { groupId: 'ch.qos.reload4j', artifactId: 'reload4j', version: '1.2.25' },
];

export interface KafkaJarsOptions {
  version?: string;
  /** Defaults to $WALPURGE_CACHE_DIR, else ~/.cache/walpurge. */
  cacheDir?: string;
  log?: LogFn;
}

/**
 * The broker's runtime classpath (a directory of jars), fetched from Maven Central with `mvn` once
 * per machine and reused by every later run (concurrent runs: see ensureCachedDirectory).
 */
export async function ensureKafkaJars(opts: KafkaJarsOptions = {}): Promise<string> {
  const version = opts.version ?? KAFKA_VERSION;
  const started = Date.now();
  let fetched = false;
  const dest = await ensureCachedDirectory({
    cacheDir: opts.cacheDir,
    name: `kafka-${version}`,
    label: 'kafka',
    log: opts.log,
    fill: async (staging) => {
      opts.log?.(
        `kafka: fetching org.apache.kafka:kafka_${SCALA_VERSION}:${version} and dependencies with mvn`,
      );
      await fetchWithMaven(version, staging);
      fetched = true;
    },
  });
  const libs = join(dest, 'libs');
  if (fetched) opts.log?.(`kafka: fetched ${readdirSync(libs).length} jars in ${Date.now() - started} ms`);
  return libs;
}

async function fetchWithMaven(version: string, staging: string): Promise<void> {
  await copyRuntimeClasspath({
    artifactId: 'kafka-broker-runtime',
    purpose: 'the runtime classpath of a Kafka broker',
    dependencies: [
      { groupId: 'org.apache.kafka', artifactId: `kafka_${SCALA_VERSION}`, version },
      ...LOGGING_JARS,
    ],
    staging,
    why: 'the Kafka jars (or set WALPURGE_TEST_KAFKA_BROKERS)',
  });
  const jar = `kafka_${SCALA_VERSION}-${version}.jar`;
  if (!existsSync(join(staging, 'libs', jar)))
    throw new Error(`mvn finished but ${jar} is missing from ${staging}/libs`);
}
