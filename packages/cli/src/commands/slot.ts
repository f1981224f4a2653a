import { columnsReadByTable, databaseAddress } from '@walpurge/config';
import { ErrorCode, WalpurgeError, createLogger } from '@walpurge/core';
import { formatLsn } from '@walpurge/protocol';
import { ExitCode, UsageError, writeLine, type CliIo } from '../cli-io.js';
import { configOption, stringOption, type CommandSpec } from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { connectDatabase } from '../live/connect-database.js';
import { purgeAll } from '../purge/purge-all.js';
import { renderPurgeAllSummary } from '../purge/render-purge-all.js';
import { stopSignal } from '../purge/stop-signal.js';
import { resetSlot } from '../slot-reset/reset-slot.js';
import { tablesToPublish } from '@walpurge/listener';

/** Typed consent for what cannot be undone; --yes for scripts (never from the environment). */
async function confirmed(
  io: CliIo,
  options: { yes: boolean; question: string; answer: string; command: string; what: string; undone: string },
): Promise<boolean> {
  if (options.yes) return true;
  if (!io.prompt)
    throw new UsageError(
      `refusing to ${options.what} without confirmation: pass --yes (no terminal to ask on)`,
      options.command,
    );
  if ((await io.prompt(options.question)).trim() === options.answer) return true;
  writeLine(io.stderr, `not confirmed; ${options.undone}`);
  return false;
}

export const slotDropCommand: CommandSpec = {
  name: 'slot drop',
  summary:
    "Drop walpurge's replication slot (frees retained WAL; the next start refuses until `slot reset --purge-all`).",
  usage: 'walpurge slot drop [--config FILE] [--slot NAME] [--yes]',
  options: {
    config: configOption,
    slot: {
      type: 'string',
      description: 'Slot to drop; default: database.slot from the config.',
      env: 'WALPURGE_SLOT',
      valueName: 'NAME',
    },
    // Deliberately no environment variable: a dropped slot cannot be undone, so consent is per call.
    yes: { type: 'boolean', short: 'y', description: 'Do not ask for confirmation (for scripts).' },
  },
  details: `Dropping the slot forgets which changes walpurge has processed: changes committed while no slot
exists are never invalidated. The slot history (database.slotHistoryTable) keeps the slot's last
position, so the next start refuses to create a new slot silently; \`walpurge slot reset
--purge-all\` creates it and purges what may be stale. Without --yes you must type the slot name to
confirm; without a terminal to ask on, --yes is required. An active slot (walpurge still running)
is refused.`,
  async run({ io, options }) {
    const { config } = await loadCliConfig(options, io);
    if (!config.database) throw new UsageError('the config has no database section', 'slot drop');
    const slot = stringOption(options, 'slot') ?? config.database.slot;
    const question = `Drop replication slot '${slot}' on ${databaseAddress(config.database.url)}? Type its name to confirm: `;
    const yes = options['yes'] === true;
    const what = 'drop a slot';
    if (
      !(await confirmed(io, {
        yes,
        question,
        answer: slot,
        command: 'slot drop',
        what,
        undone: 'nothing dropped',
      }))
    )
      return ExitCode.Failure;
    const client = await connectDatabase(config.database);
    try {
      const found = await client.query<{ active: boolean; active_pid: number | null }>(
        'SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      const row = found.rows[0];
      if (!row) {
        writeLine(io.stderr, `slot '${slot}' does not exist; nothing dropped`);
        return ExitCode.Failure;
      }
      if (row.active) {
        throw new WalpurgeError(
          ErrorCode.SlotBusy,
          `slot '${slot}' is in use by backend pid ${row.active_pid ?? '?'}`,
          {
            hint: 'stop walpurge (the listener) first',
          },
        );
      }
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      writeLine(io.stdout, `dropped replication slot '${slot}'`);
      return ExitCode.Ok;
    } finally {
      await client.end().catch(() => {});
    }
  },
};

export const slotResetCommand: CommandSpec = {
  name: 'slot reset',
  summary:
    'Start over after a lost or re-created slot: create the slot, purge everything the rules derive, then let listeners stream.',
  usage: 'walpurge slot reset --purge-all [--config FILE] [--accept-unpurgeable] [--yes]',
  options: {
    config: configOption,
    'purge-all': {
      type: 'boolean',
      description:
        'Required: purge every entry the rules can derive (Redis keys, patterns, tags, namespaces; CDN).',
    },
    'accept-unpurgeable': {
      type: 'boolean',
      description:
        'Accept the new slot even when some templates cannot be purged wholesale (listed as NOT PURGED).',
    },
    yes: { type: 'boolean', short: 'y', description: 'Do not ask for confirmation (for scripts).' },
  },
  details: `When the slot history shows that changes were never read (the slot was dropped, invalidated,
lost in a failover, re-created by someone else, or the database was restored), listeners refuse to
stream and name the gap. This command is the way out, in this order: it creates the slot (dropping
it first if PostgreSQL invalidated it, or if database.failoverSlot asks for failover it lacks), so
every change from now on will be read; purges every rule's whole key space (Redis keys, patterns
and tag sets, namespace versions given a fresh value; CDN URLs, prefixes and
tags); and only then records the slot in the slot history, so listeners stream again. Stop every
listener first (an active slot is refused). If the purge fails, or some templates cannot be
purged wholesale (without --accept-unpurgeable), the history is left as it was and listeners keep
refusing; run it again. Without --yes you must type the slot name to confirm.`,
  async run({ io, options }) {
    if (options['purge-all'] !== true)
      throw new UsageError(
        'slot reset needs --purge-all: a new slot without a purge would leave every change in the gap stale',
        'slot reset',
      );
    const { config } = await loadCliConfig(options, io);
    const database = config.database;
    if (!database) throw new UsageError('the config has no database section', 'slot reset');
    const question = `Re-create replication slot '${database.slot}' on ${databaseAddress(database.url)} and purge every cache entry the rules derive? Type the slot name to confirm: `;
    const yes = options['yes'] === true;
    const what = 'reset a slot and purge every cache entry';
    const answer = database.slot;
    if (
      !(await confirmed(io, { yes, question, answer, command: 'slot reset', what, undone: 'nothing done' }))
    )
      return ExitCode.Failure;
    const logger = createLogger({
      level: 'warn',
      pretty: false,
      destination: { write: (text: string) => void io.stderr.write(text) },
    });
    const stop = stopSignal(io);
    try {
      const result = await resetSlot({
        database,
        tables: tablesToPublish(config),
        columnsRead: columnsReadByTable(config),
        acceptUnpurgeable: options['accept-unpurgeable'] === true,
        onProgress: (line) => writeLine(io.stderr, line),
        purgeAll: async () => {
          const summary = await purgeAll({
            config,
            logger,
            signal: stop.signal,
            onProgress: (line) => writeLine(io.stderr, line),
          });
          io.stdout.write(renderPurgeAllSummary(summary, config.redis?.keyPrefix));
          return summary;
        },
      });
      const gap = result.previous
        ? ` (the gap after ${formatLsn(result.previous.durableLsn)}, recorded ${result.previous.durableAt.toISOString()}, is purged)`
        : '';
      writeLine(
        io.stdout,
        `slot '${result.slot}' reset: ${result.created ? 'created' : 'kept'} at ${result.startLsn}${result.failover ? ' with failover' : ''}${gap}; listeners may start`,
      );
      return ExitCode.Ok;
    } finally {
      stop.dispose();
    }
  },
};
