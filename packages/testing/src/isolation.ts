import { randomBytes } from 'node:crypto';
import { quoteIdent, serverMajor, withPgClient } from './postgres-client.js';
import { waitFor } from './wait-for.js';

/**
 * `wp_<prefix>_<12 hex>`: lowercase letters, digits and underscores only, at most 56 characters,
 * so one name works unquoted as a Postgres identifier (limit 63), a Kafka topic, a replication slot,
 * a publication and a Redis key prefix. The `wp_` start keeps it from beginning with a digit.
 */
export function uniqueName(prefix: string): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 40) || 'x';
  return `wp_${clean}_${randomBytes(6).toString('hex')}`;
}

export interface IsolatedDatabase {
  url: string;
  name: string;
  /** Idempotent. Terminates sessions and replication connections and drops slots first. */
  drop(): Promise<void>;
}

/**
 * A fresh database per suite on a shared server: cheaper than a server per suite, and slots,
 * publications and tables of one suite cannot leak into another's change stream.
 */
export async function createIsolatedDatabase(adminUrl: string, prefix = 'db'): Promise<IsolatedDatabase> {
  const name = uniqueName(prefix);
  await withPgClient(adminUrl, (client) => client.query(`CREATE DATABASE ${quoteIdent(name)}`));
  const url = withDatabase(adminUrl, name);
  let dropped: Promise<void> | undefined;
  return { url, name, drop: () => (dropped ??= dropIsolatedDatabase(adminUrl, url, name)) };
}

export function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/**
 * DROP DATABASE refuses while a replication slot exists in it, and a slot cannot be dropped while a
 * walsender holds it, nor (being logical) from another database. Hence the order: end the sessions,
 * drop the slots from inside the database, then drop the database itself.
 */
async function dropIsolatedDatabase(adminUrl: string, url: string, name: string): Promise<void> {
  const exists = await withPgClient(adminUrl, async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) return false;
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    return true;
  });
  if (!exists) return;

  await withPgClient(url, (client) =>
    waitFor(
      `replication slots in database ${name} to be dropped`,
      async () => {
        const { rows } = await client.query<{ slot_name: string; active_pid: number | null }>(
          'SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1',
          [name],
        );
        for (const slot of rows) {
          // Termination is asynchronous: a slot stays "active" until its walsender has exited.
          if (slot.active_pid !== null) {
            await client.query('SELECT pg_terminate_backend($1)', [slot.active_pid]);
          } else {
            await client.query('SELECT pg_drop_replication_slot($1)', [slot.slot_name]).catch(() => {});
          }
        }
        return rows.length === 0;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    ),
  );

  await withPgClient(adminUrl, async (client) => {
    // FORCE (PostgreSQL 13+) also ends sessions that connected after our terminate above.
    const force = (await serverMajor(client)) >= 13 ? ' WITH (FORCE)' : '';
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}${force}`);
  });
}
