import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { ExitCode, UsageError, writeLine } from '../cli-io.js';
import { configOption, stringOption, type CommandSpec } from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { connectDatabase, describeDatabase } from '../live/connect-database.js';

export const slotDropCommand: CommandSpec = {
  name: 'slot drop',
  summary: "Drop walpurge's replication slot (frees retained WAL; the next start begins at the current LSN).",
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
exists are never invalidated. Without --yes you must type the slot name to confirm; without a
terminal to ask on, --yes is required. An active slot (walpurge still running) is refused.`,
  async run({ io, options }) {
    const { config } = await loadCliConfig(options, io);
    if (!config.database) throw new UsageError('the config has no database section', 'slot drop');
    const slot = stringOption(options, 'slot') ?? config.database.slot;
    if (options['yes'] !== true) {
      if (!io.prompt)
        throw new UsageError(
          'refusing to drop a slot without confirmation: pass --yes (no terminal to ask on)',
          'slot drop',
        );
      const answer = await io.prompt(
        `Drop replication slot '${slot}' on ${describeDatabase(config.database.url)}? Type its name to confirm: `,
      );
      if (answer.trim() !== slot) {
        writeLine(io.stderr, 'not confirmed; nothing dropped');
        return ExitCode.Failure;
      }
    }
    const client = await connectDatabase(config.database.url);
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
