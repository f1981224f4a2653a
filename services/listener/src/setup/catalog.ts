import type { Client } from 'pg';
import type { PgTypeRow } from '../decode/value-converters.js';

/** Every type of the database, so arrays, domains and enums convert like their element/base type. */
export async function loadTypes(client: Client): Promise<PgTypeRow[]> {
  // OIDs as text: ::int turns those above 2^31 negative, and they would match no column's type OID.
  const { rows } = await client.query<
    Omit<PgTypeRow, 'oid' | 'elementOid' | 'baseTypeOid'> & {
      oid: string;
      elementOid: string;
      baseTypeOid: string;
    }
  >(
    `SELECT oid::text AS oid, typname AS name, typtype AS type, typcategory AS category,
            typelem::text AS "elementOid", typbasetype::text AS "baseTypeOid", typdelim AS delimiter
       FROM pg_type`,
  );
  return rows.map((row) => ({
    ...row,
    oid: Number(row.oid),
    elementOid: Number(row.elementOid),
    baseTypeOid: Number(row.baseTypeOid),
  }));
}
