import { z } from 'zod';
import { PostgresIdentifier, milliseconds, qualifiedName } from './common.js';

export const DatabaseConfig = z.strictObject({
  url: z
    .string()
    .min(1)
    .describe('PostgreSQL connection URL (the role needs REPLICATION). Usually ${DATABASE_URL}.'),
  slot: PostgresIdentifier.default('walpurge').describe(
    'Logical replication slot walpurge reads from; created when missing.',
  ),
  publication: PostgresIdentifier.default('walpurge').describe(
    'Publication walpurge subscribes to; created when missing.',
  ),
  createPublication: z
    .boolean()
    .default(true)
    .describe(
      "Create the publication (for the rules' tables, or `tables`) when it does not exist. Never alters an existing one.",
    ),
  tables: z.array(z.string()).default([]).describe('Tables to publish; default: every table a rule names.'),
  statusIntervalMs: milliseconds
    .default(10_000)
    .describe('How often the listener reports its durable LSN to PostgreSQL even when idle.'),
  heartbeatIntervalMs: milliseconds
    .default(60_000)
    .describe(
      'Emit a pg_logical_emit_message heartbeat this often (0 = off) so a slot on a quiet database keeps advancing.',
    ),
  failoverSlot: z
    .boolean()
    .default(false)
    .describe(
      'PostgreSQL 17+: create the slot with failover enabled, so standbys with sync_replication_slots keep a copy and a promoted standby resumes from it. Older servers: ignored, `validate` warns.',
    ),
  slotHistoryTable: qualifiedName
    .default('walpurge_slot_history')
    .describe(
      "Table (created when missing) recording the slot's identity and last durable LSN, so a dropped, invalidated or re-created slot is refused at start instead of silently skipping changes.",
    ),
});
export type DatabaseConfig = z.infer<typeof DatabaseConfig>;
