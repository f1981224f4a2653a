import { z } from 'zod';
import { PostgresIdentifier, milliseconds, positiveInt, qualifiedName } from './common.js';
import { RedisTlsConfig, redisTlsProblem } from './tls.js';

/**
 * Defaults the flusher shares with the code that must agree with it without reading its section:
 * the write-behind client (key layout, version column) and the invalidator (which recognises the
 * flusher's commits by origin and version even when deployed without a flusher section).
 */
export const WRITE_BEHIND_DEFAULTS = {
  keyPrefix: 'walpurge:wb:',
  queueName: 'flush',
  versionColumn: '_walpurge_version',
  replicationOrigin: 'walpurge_write_behind',
} as const;

const FlusherFields = z.strictObject({
  queueRedisUrl: z
    .string()
    .min(1)
    .describe(
      'Redis holding the write-behind queue and pending writes (redis:// or rediss:// for TLS). Must keep data (maxmemory-policy noeviction, appendonly yes); never the LRU cache Redis.',
    ),
  queueRedisTls: RedisTlsConfig.optional().describe(
    'TLS to the queue Redis, as `redis.tls`. Needs a rediss:// `queueRedisUrl`.',
  ),
  allowUnsafeRedis: z
    .boolean()
    .default(false)
    .describe(
      'Start even when the queue Redis may evict keys or has no AOF (pending writes can then be lost). For experiments only.',
    ),
  acceptDurability: z
    .discriminatedUnion('mode', [
      z.strictObject({
        mode: z
          .literal('primary')
          .describe(
            'Accepted once the queue Redis primary holds the write (its AOF fsyncs within a second): a failover to a replica that had not caught up, or a crash in that second, loses it.',
          ),
      }),
      z.strictObject({
        mode: z
          .enum(['replica', 'aof'])
          .describe(
            'replica: WAIT until `replicas` replicas hold the write (survives a failover to one of them). aof: WAITAOF until the primary’s AOF and `replicas` replicas’ AOFs fsynced it (survives a crash; Redis ≥ 7.2).',
          ),
        replicas: z
          .number()
          .int()
          .min(0)
          .default(1)
          .describe('Replicas that must confirm (at least 1 for mode replica; may be 0 for mode aof).'),
        timeoutMs: milliseconds
          .default(1_000)
          .describe(
            'Longest a write waits for the confirmation; then writeBehind throws WP_WRITE_BEHIND_NOT_DURABLE (retriable: the write is on the primary and cached, and will be flushed unless the primary fails).',
          ),
      }),
    ])
    .refine((value) => value.mode !== 'replica' || value.replicas >= 1, {
      message: 'mode replica needs replicas >= 1',
    })
    .default({ mode: 'primary' })
    .describe(
      'What a writeBehind waits for before it returns. The cost is measured by the flusher benchmark (test/bench/flusher.bench.ts).',
    ),
  keyPrefix: z
    .string()
    .min(1)
    .default(WRITE_BEHIND_DEFAULTS.keyPrefix)
    .describe('Prefix of every key the write-behind queue and pending entries use in the queue Redis.'),
  queueName: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default(WRITE_BEHIND_DEFAULTS.queueName)
    .describe('BullMQ queue name (under keyPrefix).'),
  versionColumn: PostgresIdentifier.default(WRITE_BEHIND_DEFAULTS.versionColumn).describe(
    'bigint column every write-behind table must have; an older write never overwrites a newer one (INSERT … ON CONFLICT … WHERE version <).',
  ),
  tables: z
    .array(qualifiedName)
    .default([])
    .describe(
      'Tables written through write-behind; checked at start-up (primary key, version column). Others are checked on first write.',
    ),
  batchSize: positiveInt.default(200).describe('Rows written to PostgreSQL in one transaction at most.'),
  batchDelayMs: milliseconds
    .default(20)
    .describe('How long a batch waits for more rows after its first one.'),
  concurrency: positiveInt
    .optional()
    .describe(
      'Flush jobs held at once; default 2 × batchSize so one batch fills while the previous commits.',
    ),
  retryInitialMs: milliseconds
    .default(200)
    .describe(
      'First delay when a batch write fails with a retriable error; doubles up to retryMaxMs. An unreachable PostgreSQL is retried without limit; other retriable errors up to maxBatchRetries.',
    ),
  retryMaxMs: milliseconds
    .default(30_000)
    .describe('Longest delay between retries of a batch while PostgreSQL is unreachable.'),
  maxBatchRetries: positiveInt
    .default(5)
    .describe(
      'Attempts of a batch failing with a retriable SQL error that a row can cause (serialization failure, deadlock, an unknown error) before it is split in halves; a single row still failing then fails alone with its reason. Errors of the server, not a row (out of resources 53, statement cancelled 57014, lock not available 55P03, system error 58) are capped the same way, but when both halves (or a row alone) still fail with one, nothing fails: the batch is retried with backoff for as long as it takes, like connection loss, a read-only database (25006), a rejected login (class 28) or a session that cannot be opened.',
    ),
  foreignKeyRetryMs: milliseconds
    .default(60_000)
    .describe(
      'How long a row refused by a foreign key (SQLSTATE 23503, e.g. a child flushed before its parent) is retried before it fails; write-behind has no order across rows.',
    ),
  maxAttempts: positiveInt
    .default(10)
    .describe('Attempts for unexpected (non-database) errors before a job is failed and kept for redrive.'),
  maxStalledCount: positiveInt
    .default(20)
    .describe(
      'How often a job may be recovered from a crashed worker before it is failed (kept for redrive).',
    ),
  lockDurationMs: milliseconds
    .default(30_000)
    .describe(
      "How long a job stays locked to a worker without renewal; a crashed flusher's jobs are picked up again after about this long.",
    ),
  replicationOrigin: PostgresIdentifier.default(WRITE_BEHIND_DEFAULTS.replicationOrigin).describe(
    "Replication origin that marks the flusher's commits, so the invalidator can tell its own echo (source.origin) apart. Replicas fall back to <name>_2, <name>_3 …",
  ),
  markOrigin: z
    .boolean()
    .default(true)
    .describe(
      'Mark flusher transactions with the replication origin (needs superuser or EXECUTE on pg_replication_origin_session_setup and pg_replication_origin_xact_setup).',
    ),
  tombstoneTable: qualifiedName
    .default('walpurge_write_behind_tombstones')
    .describe(
      "Table (created when missing) remembering deleted rows' versions, so a late older write cannot resurrect a deleted row.",
    ),
  tombstoneRetentionMs: milliseconds
    .default(86_400_000)
    .describe(
      'How long tombstones are kept at least; one is kept longer while an older write of any row is still pending or failed (it could still be redriven).',
    ),
  failedRetentionMs: milliseconds
    .default(604_800_000)
    .describe(
      "How long a failed flush job is kept once it no longer stands for an unwritten value (the row was written or has a newer job since). A failed job that is still a row's only record of an accepted write is kept until redriven.",
    ),
  reconcileIntervalMs: milliseconds
    .default(30_000)
    .describe('How often pending writes without a queued job (crash between two steps) are re-queued.'),
  drainTimeoutMs: milliseconds
    .default(15_000)
    .describe(
      'On shutdown, how long the batch in flight may keep retrying an unreachable database (or waiting for an unreachable queue Redis) before it is abandoned; unfinished jobs are re-run by another flusher after lockDurationMs.',
    ),
  metricsIntervalMs: milliseconds
    .default(5_000)
    .describe('How often queue depth and oldest pending age are refreshed.'),
});

/** The write-behind flusher: BullMQ queue on a data-keeping Redis → batched, version-guarded upserts. */
export const FlusherConfig = FlusherFields.superRefine((flusher, ctx) => {
  const problem = redisTlsProblem(flusher.queueRedisUrl, flusher.queueRedisTls);
  if (problem) ctx.addIssue({ code: 'custom', path: ['queueRedisTls'], message: problem });
});
export type FlusherConfig = z.infer<typeof FlusherConfig>;
export type FlusherConfigInput = z.input<typeof FlusherConfig>;
