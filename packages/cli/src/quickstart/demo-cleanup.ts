import type pg from 'pg';
import type { Redis } from 'ioredis';
import { errorMessage, sleep } from '@walpurge/core';
import { historyTableSql } from '@walpurge/listener';
import { DEMO_SCHEMA } from './demo-database.js';

/** What quickstart created in a database it did not start (an existing slot or publication is refused). */
export interface DemoLeftovers {
  /** The demo schema was missing and created here: it is dropped with all it holds. */
  createdSchema: boolean;
  slot: string;
  publication: string;
  historyTable: string;
}

/**
 * Drops exactly what quickstart created in a database it did not start, and reports (never hides)
 * what it could not drop. Objects that existed before the demo stay.
 */
export async function dropDemoObjects(
  db: pg.Client,
  leftovers: DemoLeftovers,
  warn: (line: string) => void,
): Promise<void> {
  const { createdSchema, slot, publication } = leftovers;
  const dropped = await dropSlotOnceReleased(db, slot).catch(() => false);
  if (!dropped)
    warn(
      `warning: the demo's replication slot ${slot} could not be dropped and retains WAL: drop it with SELECT pg_drop_replication_slot('${slot}')`,
    );
  else if (!createdSchema)
    // The history went with a dropped schema; in a kept one, the next demo run starts a fresh slot
    // instead of refusing the missing one.
    await db
      .query(`DELETE FROM ${historyTableSql(leftovers.historyTable)} WHERE slot_name = $1`, [slot])
      .catch(() => {});
  const statements = [
    `DROP PUBLICATION IF EXISTS "${publication}"`,
    ...(createdSchema ? [`DROP SCHEMA IF EXISTS ${DEMO_SCHEMA} CASCADE`] : []),
  ];
  for (const statement of statements) {
    await db.query(statement).catch((error: unknown) => {
      warn(`warning: ${statement} failed (${errorMessage(error)}): run it yourself`);
    });
  }
}

/** Removes the cache entries and tag sets the demo writer filled in a Redis it did not start. */
export async function removeDemoKeys(redis: Redis, keys: Iterable<string>): Promise<void> {
  const all = [...keys];
  for (let start = 0; start < all.length; start += 500) await redis.unlink(...all.slice(start, start + 500));
}

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
