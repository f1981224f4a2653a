import type pg from 'pg';
import { z } from 'zod';

export interface ChangeRate {
  insertsPerSecond: number;
  updatesPerSecond: number;
  deletesPerSecond: number;
  /** Seconds the counters cover: since the database's statistics were reset, or the server started. */
  coveredSeconds: number;
}

const Row = z.object({
  name: z.string(),
  inserts: z.coerce.number(),
  updates: z.coerce.number(),
  deletes: z.coerce.number(),
  seconds: z.coerce.number(),
});

/**
 * Rows changed per second, per table, from the statistics PostgreSQL keeps anyway
 * (pg_stat_user_tables), divided by the time they cover (pg_stat_get_db_stat_reset_time, else the
 * server's start). A partitioned table sums its partitions. Averages over that whole time: bursts
 * are higher.
 */
export async function loadChangeRates(
  client: pg.ClientBase,
  tables: readonly string[],
): Promise<Map<string, ChangeRate>> {
  const result = await client.query(
    `SELECT t.name,
            COALESCE(sum(s.n_tup_ins), 0) AS inserts,
            COALESCE(sum(s.n_tup_upd), 0) AS updates,
            COALESCE(sum(s.n_tup_del), 0) AS deletes,
            EXTRACT(EPOCH FROM now() - COALESCE(
              (SELECT pg_stat_get_db_stat_reset_time(oid) FROM pg_database WHERE datname = current_database()),
              pg_postmaster_start_time())) AS seconds
       FROM unnest($1::text[]) AS t(name)
       -- pg_partition_tree lists nothing for a plain table: the table itself, plus its partitions if any.
       LEFT JOIN LATERAL (SELECT to_regclass(t.name) AS relid
                          UNION SELECT relid FROM pg_partition_tree(to_regclass(t.name))) AS p ON true
       LEFT JOIN pg_stat_user_tables AS s ON s.relid = p.relid
      GROUP BY t.name`,
    [tables],
  );
  const rates = new Map<string, ChangeRate>();
  for (const raw of result.rows) {
    const row = Row.parse(raw);
    const seconds = Math.max(1, row.seconds);
    rates.set(row.name, {
      insertsPerSecond: row.inserts / seconds,
      updatesPerSecond: row.updates / seconds,
      deletesPerSecond: row.deletes / seconds,
      coveredSeconds: seconds,
    });
  }
  return rates;
}
