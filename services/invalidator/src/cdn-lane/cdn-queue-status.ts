import type pg from 'pg';
import { z } from 'zod';
import { queueTableSql } from './postgres-cdn-queue.js';

/** CDN purges waiting in the inline transport's queue table, per provider. */
export interface CdnQueueStatus {
  table: string;
  /** False until the invalidator created the table (first start with a CDN configured). */
  exists: boolean;
  providers: Array<{ provider: string; pending: number; oldestAgeMs: number }>;
}

const Row = z.object({
  provider: z.string(),
  pending: z.coerce.number(),
  oldest_age_ms: z.coerce.number(),
});

export async function readCdnQueueStatus(client: pg.ClientBase, table: string): Promise<CdnQueueStatus> {
  const sql = queueTableSql(table);
  const { rows: found } = await client.query<{ found: boolean }>(
    'SELECT to_regclass($1) IS NOT NULL AS found',
    [sql],
  );
  if (!found[0]?.found) return { table, exists: false, providers: [] };
  const { rows } = await client.query(
    `SELECT provider, count(*) AS pending,
            (extract(epoch FROM now() - min(enqueued_at)) * 1000)::float8 AS oldest_age_ms
       FROM ${sql} GROUP BY provider ORDER BY provider`,
  );
  return {
    table,
    exists: true,
    providers: rows.map((raw) => {
      const row = Row.parse(raw);
      return { provider: row.provider, pending: row.pending, oldestAgeMs: Math.max(0, row.oldest_age_ms) };
    }),
  };
}
