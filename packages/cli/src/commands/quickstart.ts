import { Redis } from 'ioredis';
import type pg from 'pg';
import { databaseAddress, parseConfigText, redisTlsOptions } from '@walpurge/config';
import { createLogger, sleep } from '@walpurge/core';
import { compileRules } from '@walpurge/rules';
import { readFile } from 'node:fs/promises';
import { ExitCode, UsageError, writeLine, type CliIo } from '../cli-io.js';
import { stringOption, type CommandSpec, type OptionValues } from '../command.js';
import { provideDemoStack, type DemoStack } from '../quickstart/local-stack.js';
import { demoFiles } from '../quickstart/demo-files.js';
import {
  DEMO_KEY_PREFIX,
  DEMO_SCHEMA,
  demoFootprint,
  describeFootprint,
  prepareDemoSchema,
} from '../quickstart/demo-database.js';
import { dropDemoObjects, removeDemoKeys, type DemoLeftovers } from '../quickstart/demo-cleanup.js';
import { DemoWriter } from '../quickstart/demo-writer.js';
import { InvalidationReport } from '../quickstart/invalidation-report.js';
import { startWalpurge, type RunningWalpurge } from '../run/start-walpurge.js';
import { connectDatabase } from '../live/connect-database.js';
import { httpPortOption, logLevelOption, parsePort } from './shared-options.js';

function parsePositive(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`--${name} must be a positive number of seconds (got '${text}')`, 'quickstart');
  return value;
}

/** Resolves when the user presses Ctrl-C (real process) or io.signal aborts (tests). */
function interruption(io: CliIo): { promise: Promise<void>; dispose(): void } {
  let dispose = (): void => {};
  const promise = new Promise<void>((resolve) => {
    if (io.signal?.aborted) return resolve();
    io.signal?.addEventListener('abort', () => resolve(), { once: true });
    if (io.handleSignals) {
      const onSignal = (): void => resolve();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      dispose = () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      };
    }
  });
  return { promise, dispose: () => dispose() };
}

/** How long walpurge may take to become ready before the demo gives up (exit 1). */
const READY_TIMEOUT_MS = 30_000;

/**
 * Consent before creating anything in a database quickstart did not start: --yes, or a typed yes on
 * a terminal; without a terminal, a usage error (exit 2) that says what would have been created.
 */
async function consentToCreate(
  io: CliIo,
  options: OptionValues,
  where: string,
  what: string[],
): Promise<boolean> {
  const listing = what.map((line) => `    ${line}`).join('\n');
  if (options['yes'] === true) return true;
  if (!io.prompt)
    throw new UsageError(
      `quickstart did not start the database at ${where}, and would create in it:\n${listing}\npass --yes to allow it (everything it creates is dropped when the demo stops)`,
      'quickstart',
    );
  writeLine(io.stdout, `  quickstart did not start the database at ${where}; it will create:\n${listing}`);
  const answer = await io.prompt('  and drop them when the demo stops. Go ahead? [y/N] ');
  return /^y(es)?$/i.test(answer.trim());
}

export const quickstartCommand: CommandSpec = {
  name: 'quickstart',
  summary:
    'See walpurge work: local PostgreSQL + Redis, demo schema, embedded mode, a writer, live invalidations.',
  usage: 'walpurge quickstart [--duration SECONDS] [--interval SECONDS] [--config FILE] [--yes]',
  options: {
    duration: {
      type: 'string',
      description: 'Stop after this many seconds (default: run until Ctrl-C).',
      env: 'WALPURGE_DURATION',
      valueName: 'SECONDS',
    },
    interval: {
      type: 'string',
      description: 'Pause between demo writes.',
      default: '0.5',
      env: 'WALPURGE_INTERVAL',
      valueName: 'SECONDS',
    },
    config: {
      type: 'string',
      short: 'c',
      description:
        'Rules and connections to use instead of examples/walpurge.yaml (transport is forced to inline).',
      valueName: 'FILE',
    },
    yes: {
      type: 'boolean',
      short: 'y',
      description:
        'Allow creating the demo schema, slot and publication in a database quickstart did not start (no prompt).',
    },
    'http-port': { ...httpPortOption, default: '0' },
    'log-level': { ...logLevelOption, default: 'error' },
  },
  details: `With no DATABASE_URL / REDIS_URL in the environment it starts a throw-away PostgreSQL (wal_level=logical)
and Redis from the binaries on this machine; with them set it uses those. It creates the demo
tables of examples/demo/schema.sql in their own schema, ${DEMO_SCHEMA} (walpurge's state tables go
there too), runs walpurge in embedded mode with the rules of examples/walpurge.yaml, and updates rows
(after caching the entries they map to) while it prints each invalidation with its commit→purge
latency. Ctrl-C (or --duration) stops everything it started.

In a database it did not start, it first lists what it would create (the schema, a replication slot,
a publication for the demo's tables only) and asks; without a terminal it needs --yes. A slot or
publication of that name that already exists is refused, never taken over. At the end it drops
exactly what it created, and removes the Redis keys its writer filled (under its own key prefix,
redis.keyPrefix + ${DEMO_KEY_PREFIX}); it never alters or writes a table outside ${DEMO_SCHEMA}. It exits 1 when walpurge stops on a fatal error or is not ready
within ${READY_TIMEOUT_MS / 1000} s.`,
  async run({ io, options }) {
    const duration = parsePositive(stringOption(options, 'duration'), 'duration');
    const interval = parsePositive(stringOption(options, 'interval'), 'interval') ?? 0.5;
    const httpPort = parsePort(options, 'quickstart') ?? 0;
    // Before anything is started: an install without its examples fails here, in one line.
    const demo = demoFiles();
    const say = (line = ''): void => writeLine(io.stdout, line);
    let quiet = false;
    // Service logs go to stderr so the terminal shows the demo; muted during teardown, when the
    // local servers going away is expected.
    const logger = createLogger({
      level: stringOption(options, 'log-level') ?? 'error',
      pretty: false,
      destination: { write: (text: string) => void (quiet ? undefined : io.stderr.write(text)) },
    });
    const stop = interruption(io);

    say('walpurge quickstart: preparing a demo stack…');
    const stack: DemoStack = await provideDemoStack(io.env, (line) => logger.debug(line));
    let running: RunningWalpurge | undefined;
    let db: pg.Client | undefined;
    let redis: Redis | undefined;
    let writer: DemoWriter | undefined;
    let leftovers: DemoLeftovers | undefined;
    let redisUrl: string | undefined;
    let demoPrefix = DEMO_KEY_PREFIX;
    try {
      for (const line of stack.started) say(`  started ${line}`);
      if (stack.started.length < 2)
        say(
          `  using ${io.env['DATABASE_URL'] ? `DATABASE_URL (${databaseAddress(stack.databaseUrl)})` : ''}${io.env['DATABASE_URL'] && io.env['REDIS_URL'] ? ' and ' : ''}${io.env['REDIS_URL'] ? 'REDIS_URL' : ''}`,
        );

      const configPath = stringOption(options, 'config') ?? demo.config;
      const loaded = parseConfigText(await readFile(configPath, 'utf8'), configPath, {
        env: {
          ...io.env,
          DATABASE_URL: stack.databaseUrl,
          REDIS_URL: stack.redisUrl,
          WALPURGE_TRANSPORT: 'inline',
          WALPURGE_DEMO_SCHEMA: DEMO_SCHEMA,
        },
      });
      if (!loaded.config.database || !loaded.config.redis)
        throw new UsageError(`${configPath} needs database and redis sections`, 'quickstart');
      // walpurge's own state tables live in the demo schema too, so nothing lands in the user's.
      const database = {
        ...loaded.config.database,
        slotHistoryTable: `${DEMO_SCHEMA}.walpurge_slot_history`,
        deadLetterTable: `${DEMO_SCHEMA}.walpurge_dead_letters`,
        cdnQueueTable: `${DEMO_SCHEMA}.walpurge_cdn_queue`,
      };
      // The demo's cache entries and tag sets get a prefix of their own, so neither its purges nor
      // its clean-up can touch a key (or a tag set) of the user's in a Redis it did not start.
      const redisConfig = {
        ...loaded.config.redis,
        keyPrefix: `${loaded.config.redis.keyPrefix}${DEMO_KEY_PREFIX}`,
      };
      const config = { ...loaded.config, database, redis: redisConfig, transport: 'inline' as const };
      redisUrl = redisConfig.url;
      demoPrefix = redisConfig.keyPrefix;

      db = await connectDatabase(database);
      if (database.url !== stack.startedDatabaseUrl) {
        const footprint = await demoFootprint(db, database.slot, database.publication);
        // Someone else's slot or publication (or one a killed demo left behind) is never taken over.
        const taken = [
          ...(footprint.slot ? [] : [`replication slot ${database.slot}`]),
          ...(footprint.publication ? [] : [`publication ${database.publication}`]),
        ];
        if (taken.length > 0)
          throw new UsageError(
            `${taken.join(' and ')} already exist${taken.length === 1 ? 's' : ''} in ${databaseAddress(database.url)}: quickstart uses only what it creates. Set another database.slot / database.publication with --config, or drop a leftover demo's: ${footprint.slot ? '' : `SELECT pg_drop_replication_slot('${database.slot}'); `}${footprint.publication ? '' : `DROP PUBLICATION ${database.publication};`}`.trim(),
            'quickstart',
          );
        const what = describeFootprint(footprint, database.slot, database.publication);
        if (!(await consentToCreate(io, options, databaseAddress(database.url), what))) {
          writeLine(io.stderr, 'not confirmed; nothing created');
          return ExitCode.Failure;
        }
        leftovers = {
          createdSchema: footprint.schema,
          slot: database.slot,
          publication: database.publication,
          historyTable: database.slotHistoryTable,
        };
      }
      await prepareDemoSchema(db);
      say(`  demo schema ${DEMO_SCHEMA} ready (examples/demo/schema.sql); rules: ${configPath}`);
      if (!config.cdn)
        say("  no cdn section: the rules' CDN entries are computed (see walpurge explain) but not sent");

      redis = new Redis(config.redis.url, { ...redisTlsOptions(config.redis), maxRetriesPerRequest: 3 });
      redis.on('error', () => {});
      const report = new InvalidationReport(
        say,
        compileRules(config.rules),
        redis,
        config.redis.keyPrefix,
        config.cdn !== undefined,
      );
      let reporting = Promise.resolve();
      running = await startWalpurge({
        config,
        role: 'all',
        httpPort,
        logger,
        onPurged: (events, purgedAt) => {
          reporting = reporting.then(() => report.purged(events, purgedAt)).catch(() => {});
        },
      });
      say(
        `  walpurge running in embedded mode (transport: inline); metrics on http://127.0.0.1:${running.opsPort}/metrics`,
      );
      let fatal: string | undefined;
      void running.fatal.then((error) => (fatal = error.message));
      const readyBy = Date.now() + READY_TIMEOUT_MS;
      while (!running.isReady() && fatal === undefined && Date.now() < readyBy) await sleep(50);
      if (!running.isReady()) {
        writeLine(
          io.stderr,
          fatal !== undefined
            ? `walpurge stopped: ${fatal}`
            : `walpurge was not ready within ${READY_TIMEOUT_MS / 1000} s (rerun with --log-level info to see why)`,
        );
        return ExitCode.Failure;
      }
      say('');
      say(
        duration
          ? `Updating demo rows for ${duration} s; each line is one invalidation:`
          : 'Updating demo rows; each line is one invalidation (Ctrl-C to stop):',
      );

      writer = new DemoWriter(db, redis, config.redis.keyPrefix);
      const deadline = duration ? Date.now() + duration * 1000 : Number.POSITIVE_INFINITY;
      let stopped = false;
      void stop.promise.then(() => (stopped = true));
      void running.fatal.then(() => (stopped = true));
      let writes = 0;
      while (!stopped && Date.now() < deadline) {
        await writer.next();
        writes += 1;
        if (writes % 12 === 0) {
          await reporting;
          say(`          ${report.summary()}`);
        }
        await Promise.race([
          sleep(Math.min(interval * 1000, Math.max(0, deadline - Date.now()))),
          stop.promise,
        ]);
      }
      // Let the last commits come through before tallying.
      const settleBy = Date.now() + 3_000;
      while (report.totals.events < writes && Date.now() < settleBy) await sleep(50);
      await reporting;
      quiet = true;
      say('');
      say(report.summary());
      if (fatal !== undefined) {
        writeLine(io.stderr, `walpurge stopped: ${fatal}`);
        return ExitCode.Failure;
      }
      return ExitCode.Ok;
    } finally {
      quiet = true;
      stop.dispose();
      say('cleaning up…');
      await running?.stop().catch(() => {});
      // In servers the demo started, everything goes with them; in the user's, only what it made.
      if (db && leftovers) await dropDemoObjects(db, leftovers, say);
      if (redis && writer && redisUrl !== stack.startedRedisUrl)
        await removeDemoKeys(redis, writer.filledKeys).catch(() => {
          say(
            `warning: the demo's cache keys could not be removed from the cache Redis (they start with ${demoPrefix})`,
          );
        });
      await db?.end().catch(() => {});
      redis?.disconnect();
      await stack.stop();
      say('done.');
    }
  },
};
