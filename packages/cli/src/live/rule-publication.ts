import type pg from 'pg';
import type { ConfigProblem, DatabaseConfig } from '@walpurge/config';
import { parseTableName, publicationCoverage } from '@walpurge/listener';
import { qualifyTable } from './table-catalog.js';

type ProblemAt = (path: ReadonlyArray<PropertyKey>, message: string) => ConfigProblem;

/**
 * Rules whose table never reaches the listener under the rule's name, so they never match: a
 * partition (its changes are reported under its partitioned table), or, with database.tables set
 * and the publication still to be created, a table that list leaves out. Located at the rule.
 */
export async function rulePublicationProblems(
  client: pg.Client,
  database: DatabaseConfig,
  rules: ReadonlyArray<{ table: string }>,
  problemAt: ProblemAt,
  /** Receives what is allowed but leaves entries stale in some case (publish_via_partition_root). */
  warnings: ConfigProblem[],
): Promise<ConfigProblem[]> {
  const coverage = await publicationCoverage(
    client,
    database.publication,
    rules.map((rule) => parseTableName(rule.table)),
  );
  const configured = new Set((database.tables ?? []).map(qualifyTable));
  const problems: ConfigProblem[] = [];
  coverage.tables.forEach((table, index) => {
    const name = `${table.schema}.${table.table}`;
    if (table.partitionRoot) {
      const root = `${table.partitionRoot.schema}.${table.partitionRoot.table}`;
      problems.push(
        problemAt(
          ['rules', index, 'table'],
          `${name} is a partition of ${root}: walpurge reports a partition's changes under ${root}, so this rule would never match (fix: table: ${root})`,
        ),
      );
    } else if (table.exists && !coverage.exists && configured.size > 0 && !configured.has(name)) {
      problems.push(
        problemAt(
          ['rules', index, 'table'],
          `${name} is not in database.tables, so the publication walpurge creates will not carry its changes and this rule would never match (fix: add ${name} to database.tables)`,
        ),
      );
    }
  });
  if (coverage.viaRoot && coverage.tables.some((table) => table.partitioned || table.partitionRoot)) {
    warnings.push(
      problemAt(
        ['database', 'publication'],
        `publication '${database.publication}' has publish_via_partition_root = true: PostgreSQL does not publish a TRUNCATE of a single partition, so caches derived from a truncated partition will not be purged (fix: ALTER PUBLICATION ${database.publication} SET (publish_via_partition_root = false))`,
      ),
    );
  }
  return problems;
}
