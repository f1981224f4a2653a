import { z } from 'zod';
import { databaseSslProblems } from '../connections/pg-connection.js';
import { PostgresIdentifier, milliseconds, positiveInt, qualifiedName } from './common.js';
import { DatabaseSslConfig } from './database-ssl.js';

const DatabaseFields = z.strictObject({
  url: z
    .string()
    .min(1)
    .describe(
      'PostgreSQL connection URL (the role needs REPLICATION). Usually ${DATABASE_URL}. Its sslmode, sslrootcert, sslcert and sslkey are honoured as `ssl` says.',
    ),
  ssl: DatabaseSslConfig.optional().describe(
    'TLS to PostgreSQL (every connection: replication, side pools, the flusher, the CLI). Combines with the TLS parameters of `url`; a value set in both places must be the same.',
  ),
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
    .describe(
      "How often the listener reports its durable LSN to PostgreSQL, asking for a reply (so a live server is never silent longer). Must stay below the server's wal_sender_timeout.",
    ),
  deadAfterIntervals: z
    .number()
    .int()
    .min(2)
    .default(3)
    .describe(
      "Status intervals without any message from PostgreSQL (data or keepalive) after which the replication connection counts as dead (failover, network partition): the listener drops it and reconnects from the last durable LSN. Never less than the server's wal_sender_timeout. /readyz turns false, and the lag gauge reports the silence, after 1.5 silent intervals.",
    ),
  heartbeatIntervalMs: milliseconds
    .default(60_000)
    .describe(
      'Emit a pg_logical_emit_message heartbeat this often (0 = off) so a slot on a quiet database keeps advancing.',
    ),
  // Counted in bytes, not events: 20,000 rows of 200 kB each would be 4 GB.
  maxPendingBytes: positiveInt
    .default(64 * 1024 * 1024)
    .describe(
      'Memory budget of the listener: size of the decoded events not yet acknowledged by the sink (with Kafka, their record bytes; inline, the length of their JSON). Reading the replication stream pauses at it and resumes below half of it; the heap holds a few times this.',
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
  deadLetterTable: qualifiedName
    .default('walpurge_dead_letters')
    .describe(
      'Inline transport: table (created when missing) where events a purge target refused for good are stored (cause, target, error, table, LSN, rules, the event), before their LSN is acknowledged. `walpurge dlq list|redrive` read it.',
    ),
  cdnQueueTable: qualifiedName
    .default('walpurge_cdn_queue')
    .describe(
      'Inline transport: table (created when missing) holding CDN purges still to do, one row per event and CDN provider, written before the LSN is acknowledged. Keep it out of the publication.',
    ),
});

export const DatabaseConfig = DatabaseFields.superRefine((database, ctx) => {
  for (const [field, message] of databaseSslProblems(database))
    ctx.addIssue({ code: 'custom', path: field.split('.'), message });
});
export type DatabaseConfig = z.infer<typeof DatabaseConfig>;
