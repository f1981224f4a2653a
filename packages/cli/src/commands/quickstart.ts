import { Redis } from 'ioredis';
import type pg from 'pg';
import { parseConfigText } from '@walpurge/config';
import { createLogger, sleep } from '@walpurge/core';
import { historyTableSql } from '@walpurge/listener';
import { compileRules } from '@walpurge/rules';
import { readFile } from 'node:fs/promises';
import { ExitCode, UsageError, writeLine, type CliIo } from '../cli-io.js';
import { stringOption, type CommandSpec } from '../command.js';
import { provideDemoStack, type DemoStack } from '../quickstart/local-stack.js';
import { exampleConfigPath, readDemoSchema } from '../quickstart/demo-files.js';
import { DemoWriter } from '../quickstart/demo-writer.js';
import { InvalidationReport } from '../quickstart/invalidation-report.js';
import { startWalpurge, type RunningWalpurge } from '../run/start-walpurge.js';
import { connectDatabase, describeDatabase } from '../live/connect-database.js';
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

export const quickstartCommand: CommandSpec = {
  name: 'quickstart',
  summary:
    'See walpurge work: local PostgreSQL + Redis, demo schema, embedded mode, a writer, live invalidations.',
  usage: 'walpurge quickstart [--duration SECONDS] [--interval SECONDS] [--config FILE]',
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
    'http-port': { ...httpPortOption, default: '0' },
    'log-level': { ...logLevelOption, default: 'error' },
  },
  details: `With no DATABASE_URL / REDIS_URL in the environment it starts a throw-away PostgreSQL (wal_level=logical)
and Redis from the binaries on this machine; with them set it uses those. It creates the demo
tables of examples/demo/schema.sql, runs walpurge in embedded mode with the rules of
examples/walpurge.yaml, and updates rows (after caching the entries they map to) while it prints
each invalidation with its commit→purge latency. Ctrl-C (or --duration) stops everything it started.`,
  async run({ io, options }) {
    const duration = parsePositive(stringOption(options, 'duration'), 'duration');
    const interval = parsePositive(stringOption(options, 'interval'), 'interval') ?? 0.5;
    const httpPort = parsePort(options, 'quickstart') ?? 0;
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
    const slotCreatedHere: { url?: string; slot?: string; historyTable?: string } = {};
    try {
      for (const line of stack.started) say(`  started ${line}`);
      if (stack.started.length < 2)
        say(
          `  using ${io.env['DATABASE_URL'] ? `DATABASE_URL (${describeDatabase(stack.databaseUrl)})` : ''}${io.env['DATABASE_URL'] && io.env['REDIS_URL'] ? ' and ' : ''}${io.env['REDIS_URL'] ? 'REDIS_URL' : ''}`,
        );

      const configPath = stringOption(options, 'config') ?? exampleConfigPath;
      const loaded = parseConfigText(await readFile(configPath, 'utf8'), configPath, {
        env: {
          ...io.env,
          DATABASE_URL: stack.databaseUrl,
          REDIS_URL: stack.redisUrl,
          WALPURGE_TRANSPORT: 'inline',
        },
      });
      const config = { ...loaded.config, transport: 'inline' as const };
      if (!config.database || !config.redis)
        throw new UsageError(`${configPath} needs database and redis sections`, 'quickstart');

      db = await connectDatabase(config.database.url);
      await db.query(await readDemoSchema());
      const existing = await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [
        config.database.slot,
      ]);
      if (existing.rowCount === 0)
        Object.assign(slotCreatedHere, {
          url: config.database.url,
          slot: config.database.slot,
          historyTable: config.database.slotHistoryTable,
        });
      say(`  demo schema ready (examples/demo/schema.sql); rules: ${configPath}`);
      if (!config.cdn)
        say("  no cdn section: the rules' CDN entries are computed (see walpurge explain) but not sent");

      redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3 });
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
      const readyBy = Date.now() + 30_000;
      while (!running.isReady() && Date.now() < readyBy) await sleep(50);
      say('');
      say(
        duration
          ? `Updating demo rows for ${duration} s; each line is one invalidation:`
          : 'Updating demo rows; each line is one invalidation (Ctrl-C to stop):',
      );

      const writer = new DemoWriter(db, redis, config.redis.keyPrefix);
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
      return ExitCode.Ok;
    } finally {
      quiet = true;
      stop.dispose();
      say('cleaning up…');
      await running?.stop().catch(() => {});
      if (db && slotCreatedHere.slot && stack.started.every((line) => !line.startsWith('PostgreSQL'))) {
        // Do not leave a slot retaining WAL in the user's own database. The demo's slot history goes
        // with it: the next demo run starts a fresh slot instead of refusing the missing one.
        const demoSlot = slotCreatedHere.slot;
        const historyTable = historyTableSql(slotCreatedHere.historyTable ?? 'walpurge_slot_history');
        const dropped = await dropSlotOnceReleased(db, demoSlot).catch(() => false);
        if (dropped)
          await db.query(`DELETE FROM ${historyTable} WHERE slot_name = $1`, [demoSlot]).catch(() => {});
        else
          say(
            `warning: the demo's replication slot ${demoSlot} could not be dropped and retains WAL: drop it with SELECT pg_drop_replication_slot('${demoSlot}')`,
          );
      }
      await db?.end().catch(() => {});
      redis?.disconnect();
      await stack.stop();
      say('done.');
    }
  },
};

/**
 * Drops the demo's slot once the server has released it: the listener's stop closes its connection,
 * but the walsender serving it can hold the slot a moment longer, and a slot left behind would
 * retain WAL in the user's database. True when it is gone.
 */
async function dropSlotOnceReleased(db: pg.Client, slot: string, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query<{ active: boolean }>(
      'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    const found = rows[0];
    if (!found) return true;
    if (!found.active) {
      const dropped = await db.query(
        'SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active',
        [slot],
      );
      if (dropped.rowCount === 1) return true;
    }
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}
