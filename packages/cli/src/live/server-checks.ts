import type pg from 'pg';
import type { ConfigProblem, DatabaseConfig } from '@walpurge/config';
import {
  checkStatusInterval,
  partialPublication,
  publicationCoverage,
  readWalSenderTimeoutMs,
  standbyServer,
} from '@walpurge/listener';
import type { TableInfo } from './table-catalog.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

/**
 * A standby at database.url: walpurge needs the primary (the listener waits for a promotion). The
 * other server checks describe a server walpurge will not use (and some, reading the WAL position,
 * fail in recovery), so validate skips them.
 */
export async function standbyProblem(
  client: pg.Client,
  problemAt: ProblemAt,
): Promise<ConfigProblem | undefined> {
  const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
  if (rows[0]?.standby !== true) return undefined;
  const standby = standbyServer();
  return problemAt(['database', 'url'], `${standby.message} (fix: ${standby.hint ?? ''})`);
}

/**
 * What the listener needs from the server and its role: logical WAL, the REPLICATION attribute, a
 * free slot (unless ours exists) and a publication it may use or create. Problems are located at
 * `database.*` so the user sees which setting they concern.
 */
export async function checkServer(
  client: pg.Client,
  database: DatabaseConfig,
  tables: ReadonlyMap<string, TableInfo>,
  problemAt: ProblemAt,
  /** The columns walpurge reads (rules, flusher version column), by `schema.table` (columnsReadByTable). */
  columnsRead: ReadonlyMap<string, readonly string[]>,
): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  const settings = await client.query<{
    wal_level: string;
    max_slots: string;
    used_slots: string;
    our_slot: boolean;
  }>(
    `SELECT current_setting('wal_level') AS wal_level,
            current_setting('max_replication_slots') AS max_slots,
            (SELECT count(*) FROM pg_replication_slots)::text AS used_slots,
            EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS our_slot`,
    [database.slot],
  );
  const server = settings.rows[0];
  if (server && server.wal_level !== 'logical') {
    problems.push(
      problemAt(
        ['database', 'url'],
        `wal_level is '${server.wal_level}', walpurge needs 'logical' (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)`,
      ),
    );
  }
  if (server && !server.our_slot && Number(server.used_slots) >= Number(server.max_slots)) {
    problems.push(
      problemAt(
        ['database', 'slot'],
        `slot '${database.slot}' does not exist and all ${server.max_slots} replication slots are in use (raise max_replication_slots)`,
      ),
    );
  }

  const interval = checkStatusInterval(database.statusIntervalMs, await readWalSenderTimeoutMs(client));
  if (interval.problem)
    problems.push(problemAt(['database', 'statusIntervalMs'], `${interval.problem} (fix: ${interval.fix})`));

  const role = await client.query<{
    name: string;
    replication: boolean;
    superuser: boolean;
    can_create: boolean;
  }>(
    `SELECT rolname AS name, rolreplication AS replication, rolsuper AS superuser,
            has_database_privilege(current_database(), 'CREATE') AS can_create
       FROM pg_roles WHERE rolname = current_user`,
  );
  const me = role.rows[0];
  if (me && !me.replication && !me.superuser) {
    problems.push(
      problemAt(
        ['database', 'url'],
        `role '${me.name}' lacks the REPLICATION attribute (fix: ALTER ROLE ${me.name} REPLICATION)`,
      ),
    );
  }

  // Membership through pg_publication_rel and partition ancestors: pg_publication_tables lists a
  // partitioned member as its partitions (or its root), which a name check would call missing.
  const publication = await publicationCoverage(
    client,
    database.publication,
    [...tables.values()].map((info) => ({ schema: info.schema, table: info.table })),
  );
  if (publication.exists) {
    const missing = publication.tables
      .filter((table) => !table.published && !table.partitionRoot)
      .map((table) => `${table.schema}.${table.table}`);
    if (missing.length > 0) {
      problems.push(
        problemAt(
          ['database', 'publication'],
          `publication '${database.publication}' does not include ${missing.join(', ')} (fix: ALTER PUBLICATION ${database.publication} ADD TABLE ${missing.join(', ')})`,
        ),
      );
    }
    for (const table of publication.tables) {
      const partial = partialPublication(database.publication, table, columnsRead);
      if (partial)
        problems.push(problemAt(['database', 'publication'], `${partial.message} (fix: ${partial.fix})`));
    }
  } else if (!database.createPublication) {
    problems.push(
      problemAt(
        ['database', 'publication'],
        `publication '${database.publication}' does not exist and createPublication is false`,
      ),
    );
  } else if (me && !me.superuser) {
    const notOwned = [...tables.values()]
      .filter((info) => !info.ownedByCurrentRole)
      .map((info) => `${info.schema}.${info.table}`);
    if (!me.can_create) {
      problems.push(
        problemAt(
          ['database', 'publication'],
          `role '${me.name}' may not create publication '${database.publication}' (needs CREATE on the database)`,
        ),
      );
    } else if (notOwned.length > 0) {
      problems.push(
        problemAt(
          ['database', 'publication'],
          `role '${me.name}' may not create publication '${database.publication}': it does not own ${notOwned.join(', ')} (create the publication as the owner, or grant ownership)`,
        ),
      );
    }
  }
  return problems;
}
