import type pg from 'pg';
import { readDemoSchema } from './demo-files.js';

/**
 * The schema every demo object lives in: its tables, and walpurge's own state tables while the demo
 * runs. A database the user pointed quickstart at keeps its own `users` or `products` untouched.
 */
export const DEMO_SCHEMA = 'walpurge_demo';

/** Appended to the configured `redis.keyPrefix`: the demo's entries and tag sets are its own. */
export const DEMO_KEY_PREFIX = 'walpurge_demo:';

/** What quickstart would create in a database: shown before asking, dropped (only these) after. */
export interface DemoFootprint {
  /** The demo schema is missing: quickstart creates it, and drops it (with all it holds) at the end. */
  schema: boolean;
  slot: boolean;
  publication: boolean;
}

export async function demoFootprint(
  db: pg.Client,
  slot: string,
  publication: string,
): Promise<DemoFootprint> {
  const { rows } = await db.query<{ schema: boolean; slot: boolean; publication: boolean }>(
    `SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
            NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2) AS slot,
            NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $3) AS publication`,
    [DEMO_SCHEMA, slot, publication],
  );
  const row = rows[0];
  if (!row) throw new Error('the footprint query returned no row');
  return row;
}

export function describeFootprint(footprint: DemoFootprint, slot: string, publication: string): string[] {
  return [
    footprint.schema
      ? `schema ${DEMO_SCHEMA} (the demo's tables and walpurge's state tables)`
      : `tables in the existing schema ${DEMO_SCHEMA} (kept afterwards)`,
    `logical replication slot ${slot}`,
    `publication ${publication} (for the demo's tables only)`,
  ];
}

/**
 * Creates the demo tables and rows in the demo schema, and leaves the session's search_path there,
 * so the demo writer's unqualified statements touch nothing else.
 */
export async function prepareDemoSchema(db: pg.Client): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${DEMO_SCHEMA}`);
  await db.query(`SET search_path TO ${DEMO_SCHEMA}`);
  await db.query(await readDemoSchema());
}
