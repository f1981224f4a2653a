import type pg from 'pg';
import type { ConfigProblem } from '@walpurge/config';
import { qualifyTable, type TableInfo } from './table-catalog.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

interface Leaf {
  parent: string;
  name: string;
  identity: string;
  /** Columns the WAL carries for old rows under its identity (primary key or identity index). */
  columns: string[];
}

/**
 * A partitioned table's REPLICA IDENTITY does nothing by itself: rows live in its partitions, each
 * with its own setting (ALTER TABLE parent REPLICA IDENTITY FULL reaches neither existing nor new
 * partitions). The rules are checked against the parent's setting, so every partition must carry at
 * least the old values the parent promises, or old-value keys of its rows are never purged; and a
 * partition without any identity makes PostgreSQL refuse its updates and deletes.
 */
export async function partitionIdentityProblems(
  client: pg.Client,
  rules: ReadonlyArray<{ table: string }>,
  catalog: ReadonlyMap<string, TableInfo>,
  problemAt: ProblemAt,
): Promise<ConfigProblem[]> {
  const parents = [...catalog.keys()];
  if (parents.length === 0) return [];
  const { rows } = await client.query<Leaf>(
    `WITH RECURSIVE down(root, relid) AS (
       SELECT c.oid, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'p' AND (n.nspname || '.' || c.relname) = ANY ($1::text[])
       UNION ALL
       SELECT down.root, i.inhrelid FROM down JOIN pg_inherits i ON i.inhparent = down.relid
         JOIN pg_class c ON c.oid = i.inhrelid AND c.relispartition)
     SELECT pn.nspname || '.' || p.relname AS parent, n.nspname || '.' || c.relname AS name,
            c.relreplident::text AS identity,
            array(SELECT a.attname::text FROM pg_index i
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                   WHERE i.indrelid = c.oid
                     AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))
                   ORDER BY a.attnum) AS columns
       FROM down JOIN pg_class c ON c.oid = down.relid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class p ON p.oid = down.root JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE c.relkind = 'r'
      ORDER BY 1, 2`,
    [parents],
  );
  const problems: ConfigProblem[] = [];
  for (const leaf of rows) {
    const parent = catalog.get(leaf.parent);
    const index = rules.findIndex((rule) => qualifyTable(rule.table) === leaf.parent);
    if (!parent || index < 0) continue;
    const at = ['rules', index, 'table'];
    if (leaf.identity !== 'f' && leaf.columns.length === 0) {
      problems.push(
        problemAt(
          at,
          `partition ${leaf.name} of ${leaf.parent} has no replica identity (no primary key, REPLICA IDENTITY NOTHING or its index is gone): PostgreSQL refuses its updates and deletes once published (fix: add a primary key, or ALTER TABLE ${leaf.name} REPLICA IDENTITY FULL)`,
        ),
      );
    } else if (parent.replicaIdentity === 'full' && leaf.identity !== 'f') {
      problems.push(
        problemAt(
          at,
          `${leaf.parent} has REPLICA IDENTITY FULL but its partition ${leaf.name} does not (a partitioned table's setting reaches no partition): old values of its rows carry only ${leaf.columns.join(', ')} (fix: ALTER TABLE ${leaf.name} REPLICA IDENTITY FULL)`,
        ),
      );
    } else if (
      leaf.identity !== 'f' &&
      !parent.identityColumns.every((column) => leaf.columns.includes(column))
    ) {
      problems.push(
        problemAt(
          at,
          `partition ${leaf.name} of ${leaf.parent} sends old values of ${leaf.columns.join(', ')}, not of ${parent.identityColumns.join(', ')} like ${leaf.parent} promises (fix: give ${leaf.name} the same replica identity, e.g. ALTER TABLE ${leaf.name} REPLICA IDENTITY FULL)`,
        ),
      );
    }
  }
  return problems;
}
