import type { ConfigProblem, Rule } from '@walpurge/config';
import { qualifyTable } from './table-name.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

interface Partition {
  parent: string;
  parent_identity: string;
  parent_columns: string[];
  name: string;
  identity: string;
  columns: string[];
}

/** Old-value columns under a relation's REPLICA IDENTITY: primary key (DEFAULT) or identity index (INDEX). */
const IDENTITY_COLUMNS = (relation: string): string => `
  array(SELECT a.attname::text FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = ${relation}.oid
           AND ((${relation}.relreplident = 'd' AND i.indisprimary) OR (${relation}.relreplident = 'i' AND i.indisreplident))
         ORDER BY a.attnum)`;

const PARTITIONS_SQL = `
WITH RECURSIVE down(root, relid) AS (
  SELECT c.oid, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'p' AND (n.nspname || '.' || c.relname) = ANY ($1::text[])
  UNION ALL
  SELECT down.root, i.inhrelid FROM down JOIN pg_inherits i ON i.inhparent = down.relid
    JOIN pg_class c ON c.oid = i.inhrelid AND c.relispartition)
SELECT pn.nspname || '.' || p.relname AS parent, p.relreplident::text AS parent_identity,
       ${IDENTITY_COLUMNS('p')} AS parent_columns,
       n.nspname || '.' || c.relname AS name, c.relreplident::text AS identity,
       ${IDENTITY_COLUMNS('c')} AS columns
  FROM down JOIN pg_class c ON c.oid = down.relid JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class p ON p.oid = down.root JOIN pg_namespace pn ON pn.oid = p.relnamespace
 WHERE c.relkind = 'r'
 ORDER BY 1, 4`;

/**
 * A partitioned table's REPLICA IDENTITY does nothing by itself: rows live in its partitions, each
 * with its own setting (ALTER TABLE parent REPLICA IDENTITY FULL reaches neither existing nor new
 * partitions). Rules are checked against the parent's setting, so every partition must send at least
 * the old values the parent promises, or old-value entries of its rows are never purged; and a
 * partition without any identity makes PostgreSQL refuse its updates and deletes once published.
 * Problems are located at the first rule naming the partitioned table.
 */
export async function partitionIdentityProblems(
  rules: ReadonlyArray<Pick<Rule, 'table'>>,
  client: Queryable,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  const tables = [...new Set(rules.map((rule) => qualifyTable(rule.table)))];
  if (tables.length === 0) return [];
  const { rows } = await client.query(PARTITIONS_SQL, [tables]);
  const problems: ConfigProblem[] = [];
  for (const leaf of rows as Partition[]) {
    const index = rules.findIndex((rule) => qualifyTable(rule.table) === leaf.parent);
    const at = ['rules', index, 'table'];
    if (leaf.identity !== 'f' && leaf.columns.length === 0) {
      problems.push(
        problemAt(
          at,
          `partition ${leaf.name} of ${leaf.parent} has no replica identity (no primary key, REPLICA IDENTITY NOTHING or its index is gone): PostgreSQL refuses its updates and deletes once published (fix: add a primary key, or ALTER TABLE ${leaf.name} REPLICA IDENTITY FULL)`,
        ),
      );
    } else if (leaf.parent_identity === 'f' && leaf.identity !== 'f') {
      problems.push(
        problemAt(
          at,
          `${leaf.parent} has REPLICA IDENTITY FULL but its partition ${leaf.name} does not (a partitioned table's setting reaches no partition): old values of its rows carry only ${leaf.columns.join(', ')} (fix: ALTER TABLE ${leaf.name} REPLICA IDENTITY FULL)`,
        ),
      );
    } else if (
      leaf.identity !== 'f' &&
      !leaf.parent_columns.every((column) => leaf.columns.includes(column))
    ) {
      problems.push(
        problemAt(
          at,
          `partition ${leaf.name} of ${leaf.parent} sends old values of ${leaf.columns.join(', ')}, not of ${leaf.parent_columns.join(', ')} like ${leaf.parent} promises (fix: give ${leaf.name} the same replica identity, e.g. ALTER TABLE ${leaf.name} REPLICA IDENTITY FULL)`,
        ),
      );
    }
  }
  return problems;
}
