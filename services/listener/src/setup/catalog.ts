import type { Client } from 'pg';
import type { PgTypeRow } from '../decode/value-converters.js';

/** Every type of the database, so arrays, domains and enums convert like their element/base type. */
export async function loadTypes(client: Client): Promise<PgTypeRow[]> {
  const { rows } = await client.query<PgTypeRow>(
    `SELECT oid::int AS oid, typname AS name, typtype AS type, typcategory AS category,
            typelem::int AS "elementOid", typbasetype::int AS "baseTypeOid", typdelim AS delimiter
       FROM pg_type`,
  );
  return rows;
}
