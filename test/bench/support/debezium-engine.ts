import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { walpurgeCacheDir } from '@walpurge/testing';

export const DEBEZIUM_VERSION = '3.6.1.Final';

/** The Maven project running Debezium's embedded engine with a KafkaProducer sink. */
const projectDir = resolve(import.meta.dirname, '../debezium');
const MAIN_CLASS = 'dev.walpurge.bench.DebeziumKafkaBench';

function projectFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'target' ? [] : projectFiles(path);
    return [path];
  });
}

/**
 * The engine's classpath, built once with `mvn package` into the cache directory (not the repository),
 * under a name derived from the project's files so an edit rebuilds it.
 */
export function ensureDebeziumBench(log: (line: string) => void): string {
  const hash = createHash('sha256');
  for (const file of projectFiles(projectDir).sort())
    hash.update(file.slice(projectDir.length)).update(readFileSync(file));
  const dir = join(
    walpurgeCacheDir(),
    `debezium-bench-${DEBEZIUM_VERSION}-${hash.digest('hex').slice(0, 12)}`,
  );
  const classpathFile = join(dir, 'classpath.txt');
  const jar = join(dir, 'debezium-bench-1.jar');
  if (!existsSync(classpathFile) || !existsSync(jar)) {
    log(
      `building the Debezium ${DEBEZIUM_VERSION} runner with Maven into ${dir} (first run only; downloads from Maven Central, a minute or more)…`,
    );
    const staging = `${dir}.staging-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const built = spawnSync('mvn', ['-q', '-B', 'package', `-Dbench.buildDir=${staging}`], {
      cwd: projectDir,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (built.error)
      throw new Error(`mvn could not be started (is Maven installed?): ${built.error.message}`);
    if (built.status !== 0)
      throw new Error(`mvn package failed with exit code ${built.status} in ${projectDir}`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    log('Debezium runner built');
  }
  return `${jar}:${readFileSync(classpathFile, 'utf8').trim()}`;
}

export type DebeziumProfile = 'tuned' | 'defaults';

/** The JVM flags of each profile: tuned as the comparison's reference setup, defaults as the JVM's own. */
export function jvmFlags(profile: DebeziumProfile): string[] {
  return profile === 'tuned' ? ['-XX:+UseParallelGC', '-Xmx1g'] : [];
}

export interface DebeziumProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The settings it printed at start (engine, producer, JVM). */
  settings(): string[];
  alive(): boolean;
  /** Closes its stdin (its stop signal) and waits for the exit; SIGKILL after 60 s. */
  stop(): Promise<void>;
}

export interface DebeziumRun {
  classpath: string;
  profile: DebeziumProfile;
  databaseUrl: string;
  slot: string;
  publication: string;
  table: string;
  topic: string;
  brokers: string[];
  offsetsFile: string;
  logFile: string;
}

export function startDebezium(run: DebeziumRun): DebeziumProcess {
  const url = new URL(run.databaseUrl);
  const args = [
    `host=${url.hostname}`,
    `port=${url.port || '5432'}`,
    `user=${decodeURIComponent(url.username)}`,
    `password=${decodeURIComponent(url.password)}`,
    `dbname=${decodeURIComponent(url.pathname.slice(1))}`,
    `slot=${run.slot}`,
    `publication=${run.publication}`,
    `table=${run.table}`,
    `topic=${run.topic}`,
    `brokers=${run.brokers.join(',')}`,
    `offsets=${run.offsetsFile}`,
    `profile=${run.profile}`,
  ];
  const child = spawn('java', [...jvmFlags(run.profile), '-cp', run.classpath, MAIN_CLASS, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const log = createWriteStream(run.logFile);
  child.stderr.pipe(log);
  const printed: string[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    printed.push(...lines);
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  if (child.pid === undefined) throw new Error('java could not be started (is a JDK 17+ installed?)');
  return {
    child,
    pid: child.pid,
    settings: () => printed.filter((line) => /^(debezium|engine|producer) /.test(line)),
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      log.end();
    },
  };
}
